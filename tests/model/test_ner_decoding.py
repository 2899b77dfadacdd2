"""Valid BIO by construction (bio_viterbi), word shapes from the original text, the optional CRF."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from mtl_core.model.bio_viterbi import NEG, transition_mask, viterbi
from mtl_core.model.crf import crf_loss, word_rows
from mtl_core.model.features import IGNORE
from mtl_core.model.word_shape import FLAGS, N_SHAPES, shape_ids, word_shape

TAGS = ["O", "B-person", "I-person", "B-geo-loc", "I-geo-loc"]


def _valid(tags: list[str]) -> bool:
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            return False
        if tag.startswith("B-") and prev != "O" and prev[2:] == tag[2:]:
            return False
        prev = tag
    return True


def _logp(rows: list[list[float]]) -> np.ndarray:
    p = np.asarray(rows, dtype=float)
    return np.log(p / p.sum(1, keepdims=True))


def test_a_name_is_never_split_in_two_entities_of_one_type():
    # "Barack Obama flew": per-word argmax says B-person B-person O (what the old decoder returned)
    scores = _logp([[0.05, 0.9, 0.03, 0.01, 0.01], [0.05, 0.6, 0.33, 0.01, 0.01], [0.9, 0.05, 0.03, 0.01, 0.01]])
    assert [TAGS[k] for k in scores.argmax(1)] == ["B-person", "B-person", "O"]
    assert [TAGS[k] for k in viterbi(scores, TAGS)] == ["B-person", "I-person", "O"]


def test_orphan_inside_tag_becomes_a_start_or_outside():
    scores = _logp([[0.6, 0.1, 0.1, 0.1, 0.1], [0.3, 0.05, 0.55, 0.05, 0.05]])  # O, I-person
    assert _valid([TAGS[k] for k in viterbi(scores, TAGS)])


def test_viterbi_is_the_best_valid_sequence_by_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(30):
        scores = np.log(rng.dirichlet(np.ones(len(TAGS)), size=4))
        best = max((seq for seq in itertools.product(range(len(TAGS)), repeat=4) if _valid([TAGS[k] for k in seq])),
                   key=lambda seq: sum(scores[w, k] for w, k in enumerate(seq)))
        assert tuple(viterbi(scores, TAGS)) == best


def test_learnt_scores_are_added_to_the_constraints():
    scores = _logp([[0.4, 0.6, 0.0001, 0.0001, 0.0001]])  # one word; B-person wins on emissions alone
    start = np.array([5.0, 0, 0, 0, 0])
    assert TAGS[viterbi(scores, TAGS, start_scores=start)[0]] == "O"
    _, trans = transition_mask(TAGS)
    assert trans[TAGS.index("O"), TAGS.index("I-person")] == NEG
    assert trans[TAGS.index("B-person"), TAGS.index("I-person")] == 0
    assert trans[TAGS.index("I-geo-loc"), TAGS.index("B-person")] == 0


def test_word_shapes_read_the_original_case():
    text = "Barack OBAMA @cnn #news http://x.co 2day !! paris"
    offsets = [(0, 0), (0, 6), (7, 12), (13, 14), (14, 17), (18, 19), (19, 23), (24, 35), (36, 40), (41, 43), (44, 49),
               (0, 0)]
    ids = shape_ids(text, offsets)
    assert ids[0] == ids[-1] == 0  # specials
    flags = lambda i: {f for b, f in enumerate(FLAGS) if (ids[i] - 1) >> b & 1}  # noqa: E731
    assert flags(1) == {"init_cap", "first_word"}
    assert flags(2) == {"init_cap", "all_caps"}
    assert ids[3] == ids[4] and "mention" in flags(3)  # "@" and "cnn" pieces share their word's shape
    assert "hashtag" in flags(5) and "url" in flags(7) and "has_digit" in flags(8)
    assert flags(9) == {"no_letter"} and flags(10) == set()
    assert all(0 <= i < N_SHAPES for i in ids)
    assert word_shape("Paris", False) != word_shape("paris", False)


def test_word_rows_pack_the_labelled_pieces():
    logits = torch.arange(2 * 5 * 3, dtype=torch.float).view(2, 5, 3)
    labels = torch.tensor([[IGNORE, 1, IGNORE, 2, IGNORE], [IGNORE, IGNORE, IGNORE, IGNORE, IGNORE]])
    em, tags, mask = word_rows(logits, labels)
    assert em.shape == (1, 2, 3) and tags.tolist() == [[1, 2]] and mask.tolist() == [[True, True]]
    assert torch.equal(em[0, 0], logits[0, 1]) and torch.equal(em[0, 1], logits[0, 3])


def test_crf_loss_trains_the_transitions():
    pytest.importorskip("torchcrf")
    from mtl_core.model.crf import make_crf

    torch.manual_seed(0)
    crf = make_crf(3)
    logits = torch.zeros(4, 6, 3, requires_grad=True)
    labels = torch.tensor([[IGNORE, 1, 2, 0, IGNORE, IGNORE]] * 4)
    loss = crf_loss(crf, logits, labels)
    assert torch.isfinite(loss)
    loss.backward()
    assert crf.transitions.grad is not None and crf.transitions.grad.abs().sum() > 0


def test_model_with_shapes_and_crf_round_trips(tmp_path):
    pytest.importorskip("torchcrf")
    from mtl_core.model.checkpoint import load_checkpoint
    from mtl_core.model.testing import make_tiny_checkpoint
    from mtl_core.serve.predictor import Predictor

    path = make_tiny_checkpoint(tmp_path / "ck", word_shape=8, crf=True)
    model, _, _, _ = load_checkpoint(path)
    assert model.config.crf and model.heads["ner"].shape.embedding_dim == 8
    assert set(model.crf_scores("ner")) == {"transitions", "start_scores", "end_scores"}
    pred = Predictor.from_dir(path, device="cpu").predict(["Barack Obama flew to Paris"])[0]
    word_tags = [t for t, (s, e) in zip(pred.tasks["ner"].tags, pred.offsets) if e > s]
    assert _valid(word_tags)


def test_checkpoint_saved_before_word_shapes_loads_without_them(tmp_path):
    from mtl_core.model.checkpoint import load_checkpoint
    from mtl_core.model.testing import make_tiny_checkpoint

    path = make_tiny_checkpoint(tmp_path / "old", word_shape=0)
    cfg = json.loads((path / "model_config.json").read_text())
    del cfg["word_shape"], cfg["crf"]  # as written by older versions
    (path / "model_config.json").write_text(json.dumps(cfg))
    model, _, _, _ = load_checkpoint(path)
    assert model.config.word_shape == 0 and model.heads["ner"].shape is None
