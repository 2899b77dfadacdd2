"""Few-shot heads: fitting, probabilities, files per version, and the Predictor answering a new task."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_core.serve import fewshot
from mtl_core.serve.fewshot import FewShotConfig, FewShotError, fit_head


def _blobs(k: int, seed: int = 0, d: int = 16):
    """Two well-separated classes, k points each."""
    rng = np.random.default_rng(seed)
    centres = np.eye(d, dtype=np.float32)[:2] * 5
    x = np.concatenate([centres[c] + rng.normal(size=(k, d)) for c in (0, 1)]).astype(np.float32)
    return x, ["a"] * k + ["b"] * k


@pytest.mark.parametrize("method", fewshot.METHODS)
def test_head_separates_separable_classes(method):
    x, y = _blobs(8)
    head = fit_head("t", ["a", "b"], x, y, "v1", FewShotConfig(method=method))
    xt, yt = _blobs(20, seed=1)
    probs = head.proba(xt)
    assert probs.shape == (40, 2) and np.allclose(probs.sum(1), 1)
    assert (np.array(head.labels)[probs.argmax(1)] == np.array(yt)).mean() > 0.95
    assert head.cv_accuracy is not None and head.cv_accuracy > 0.9
    assert head.per_class == {"a": 8, "b": 8} and head.n_labels == 16


def test_binary_logreg_matches_sklearn_probabilities():
    from sklearn.linear_model import LogisticRegression

    x, y = _blobs(6, seed=3)
    head = fit_head("t", ["a", "b"], x, y, "v1")
    ref = LogisticRegression(C=fewshot.LOGREG_C, max_iter=2000).fit(fewshot.normalise(x), y)
    assert np.allclose(head.proba(x), ref.predict_proba(fewshot.normalise(x)), atol=1e-4)


def test_too_few_labels_says_which_class_is_short():
    x, _ = _blobs(3)
    with pytest.raises(FewShotError, match=r"b \(1\)"):
        fit_head("t", ["a", "b"], x[:4], ["a", "a", "a", "b"], "v1")


def test_cv_accuracy_is_none_below_two_per_class():
    x, y = _blobs(1)
    head = fit_head("t", ["a", "b"], x, y, "v1", FewShotConfig(min_per_class=1))
    assert head.cv_accuracy is None


def test_heads_saved_per_version(tmp_path):
    x, y = _blobs(4)
    fewshot.save_head(fit_head("t", ["a", "b"], x, y, "v1"), tmp_path)
    stamp = fewshot.heads_stamp(tmp_path)
    assert set(fewshot.load_heads(tmp_path, "v1")) == {"t"}
    assert fewshot.load_heads(tmp_path, "v2") == {}  # another encoder: its features mean something else
    (fewshot.heads_dir(tmp_path) / "broken.json").write_text("{not json")
    assert set(fewshot.load_heads(tmp_path, "v1")) == {"t"}
    fewshot.delete_head("t", tmp_path)
    assert fewshot.heads_stamp(tmp_path) != stamp and fewshot.load_heads(tmp_path, "v1") == {}


@pytest.mark.parametrize("representation", fewshot.REPRESENTATIONS)
def test_predictor_answers_a_new_task_in_the_same_forward(tiny_predictor, tmp_path, representation):
    texts = ["great film, loved it", "awful plot and acting", "a joy to watch", "boring and bad"]
    x = tiny_predictor.features(texts, representation)
    head = fit_head("mood", ["bad", "good"], x, ["good", "bad", "good", "bad"], "tiny",
                    FewShotConfig(representation=representation))
    fewshot.save_head(head, tmp_path)
    tiny_predictor.refresh_fewshot(tmp_path, {"mood", *tiny_predictor.task_names})
    try:
        preds = tiny_predictor.predict(texts)
        for pred, row in zip(preds, head.proba(x)):
            answer = pred.tasks["mood"]
            assert answer.fewshot and answer.estimated_accuracy == head.cv_accuracy
            assert answer.label == head.labels[int(row.argmax())]
            assert abs(answer.probs["good"] - row[1]) < 1e-4  # same features as the fit: same probabilities
            assert set(pred.tasks) == {"mood", *tiny_predictor.task_names}
    finally:
        tiny_predictor.refresh_fewshot(tmp_path / "none", set())
    assert "mood" not in tiny_predictor.predict(texts[:1])[0].tasks


def test_multilabel_head_one_sigmoid_per_label():
    from mtl_core.types import MultiLabelPrediction

    rng = np.random.default_rng(0)
    d = 16
    a, b = np.eye(d, dtype=np.float32)[0] * 4, np.eye(d, dtype=np.float32)[1] * 4

    def sample(k):  # texts with label a, with b, with both, with none
        xs, ys = [], []
        for chosen, centre in ((["a"], a), (["b"], b), (["a", "b"], a + b), ([], np.zeros(d, np.float32))):
            xs.append(centre + 0.3 * rng.normal(size=(k, d)) + 0.5)
            ys += [chosen] * k
        return np.concatenate(xs).astype(np.float32), ys

    x, y = sample(6)
    head = fit_head("t", ["a", "b"], x, y, "v1", kind="multilabel_classification")
    assert head.kind == "multilabel_classification" and head.per_class == {"a": 12, "b": 12}
    assert head.cv_accuracy is not None and head.cv_accuracy > 0.9
    xt, yt = sample(10)
    probs = head.proba(xt)
    assert probs.shape == (40, 2) and not np.allclose(probs.sum(1), 1)  # independent, not a softmax
    preds = fewshot.answers(head, xt)
    assert all(isinstance(p, MultiLabelPrediction) and p.fewshot for p in preds)
    assert np.mean([p.labels == g for p, g in zip(preds, yt)]) > 0.9
    with pytest.raises(FewShotError, match=r"b \(1\)"):
        fit_head("t", ["a", "b"], x[:7], y[:7], "v1", kind="multilabel_classification")


def test_default_representation_joins_every_layer_and_older_heads_keep_theirs(tiny_predictor):
    """The default ("all_layers", chosen on dev splits) pools the embeddings and every layer the encoder has; a
    head fitted on "layers" (2, 4, 6) before keeps its width, so the Predictor still answers it."""
    assert FewShotConfig().representation == "all_layers"
    texts = ["great film", "awful plot"]
    n_states = tiny_predictor.model.encoder.config.num_hidden_layers + 1  # embeddings + each layer
    hidden = tiny_predictor.model.encoder.config.hidden_size
    every = tiny_predictor.features(texts, "all_layers")
    some = tiny_predictor.features(texts, "layers")
    assert every.shape == (2, min(n_states, len(fewshot.ALL_LAYERS)) * hidden)
    assert some.shape == (2, len([i for i in fewshot.LAYERS if i < n_states]) * hidden)
    assert np.allclose(np.linalg.norm(every, axis=1), np.sqrt(every.shape[1] // hidden), atol=1e-3)
