"""A few checks on the real bundled MiniLM (random heads): shapes and invariants at full size."""

import numpy as np
import pytest
from transformers import AutoTokenizer

from mtl_core.model.checkpoint import save_checkpoint
from mtl_core.model.modeling import ModelConfig, build_model, default_encoder_dir
from mtl_core.serve.predictor import Predictor
from mtl_core.tasks import load_task_file

pytestmark = pytest.mark.integration

TEXTS = ["Obama met Taylor Swift in New York.", "What is the capital of France?", "URGENT! You won a prize, call now"]


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    task_file = load_task_file()
    model = build_model(task_file.tasks, ModelConfig())
    tok = AutoTokenizer.from_pretrained(default_encoder_dir())
    path = save_checkpoint(model, tok, task_file, tmp_path_factory.mktemp("real"))
    return Predictor(model, tok, task_file), path


def test_real_encoder_attention_is_layers_heads_t_t(real):
    predictor, _ = real
    for p in predictor.predict(TEXTS, with_attention=True):
        assert p.attentions.shape == (6, 12, len(p.tokens), len(p.tokens))
        np.testing.assert_allclose(p.attentions.sum(-1), 1.0, atol=1e-4)
        for s in p.tasks["ner"].spans:
            assert p.text[s.start:s.end] == s.text


def test_real_checkpoint_round_trip(real):
    predictor, path = real
    again = Predictor.from_dir(path)
    for a, b in zip(predictor.predict(TEXTS), again.predict(TEXTS)):
        assert a.tasks["sentiment_score"].value == pytest.approx(b.tasks["sentiment_score"].value, abs=1e-5)
        assert a.tasks["question_type"].probs == pytest.approx(b.tasks["question_type"].probs, abs=1e-5)


def test_real_fused_heads_match_the_per_head_path(real):
    """At full size (384 hidden, five sentence heads) the fused inference path gives the per-head logits."""
    import torch

    predictor, _ = real
    batch = predictor.encode(TEXTS)
    fused = predictor.logits(batch).logits
    assert predictor.model._fused.fused is not None
    with torch.enable_grad():
        per_head = predictor.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                       shape_ids=batch.shape_ids).logits
    for name, value in fused.items():
        torch.testing.assert_close(value, per_head[name].detach(), rtol=0, atol=1e-5, msg=name)
