"""Near-duplicates for bulk labels: cosine over the shared encoder's pooled vectors (Predictor.embed)."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_core.review.similar import near_duplicates


def test_near_duplicates_by_cosine_most_similar_first():
    anchor = np.array([1.0, 0.0])
    others = np.array([[0.0, 1.0], [2.0, 0.0], [1.0, 0.2], [0.0, 0.0], [-1.0, 0.0]])
    hits = near_duplicates(anchor, others, threshold=0.95)
    assert [i for i, _ in hits] == [1, 2]  # length does not matter, a zero vector matches nothing
    assert hits[0][1] == pytest.approx(1.0) and hits[1][1] == pytest.approx(1 / np.sqrt(1.04))
    assert near_duplicates(anchor, others[:0]) == []
    with pytest.raises(ValueError):
        near_duplicates(anchor, others, threshold=0.0)


def test_predictor_embed_gives_unit_vectors_equal_for_the_same_tokens(tiny_predictor):
    texts = ["The film was great fun", "The film was great fun ", "Shares fell sharply"]
    vectors = tiny_predictor.embed(texts)
    assert vectors.shape == (3, tiny_predictor.model.encoder.config.hidden_size)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert [i for i, _ in near_duplicates(vectors[0], vectors[1:], threshold=0.999)] == [0]
