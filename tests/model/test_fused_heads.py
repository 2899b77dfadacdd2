"""The fused inference path of the sentence heads gives the per-head answers and follows weight changes."""

from __future__ import annotations

import pytest
import torch

from mtl_core.model.checkpoint import load_checkpoint
from mtl_core.model.edit_memory import EditMemory
from mtl_core.model.encoding import encode_texts
from mtl_core.model.modeling import pool
from mtl_core.model.testing import make_tiny_checkpoint

TEXTS = ["a quiet film", "what is the tallest mountain in the world ?", "call now to claim your prize !!",
         "Jürgen met 北京 friends 🎉 at noon"]


def _batch(tok):
    enc = encode_texts(tok, TEXTS, 64)
    return enc.input_ids, enc.attention_mask


def _per_head(model, ids, mask):
    """Reference: the training path (one head at a time), with autograd on so the fused path is off."""
    with torch.enable_grad():
        out = model(input_ids=ids, attention_mask=mask)
    return {k: v.detach() for k, v in out.logits.items()}


def _fused(model, ids, mask):
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask)
    assert model._fused.fused is not None, "the fused path was not taken"
    return out.logits


def _assert_close(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].shape == b[name].shape, name
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-5, msg=name)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_fused_heads_match_the_per_head_path(tmp_path, pooling):
    model, tok, _, _ = load_checkpoint(make_tiny_checkpoint(tmp_path / "c", pooling=pooling, seed=3))
    model.eval()
    ids, mask = _batch(tok)
    _assert_close(_fused(model, ids, mask), _per_head(model, ids, mask))
    # a subset of tasks, in the caller's order
    with torch.inference_mode():
        some = model(input_ids=ids, attention_mask=mask, tasks=["spam", "ner", "topic"]).logits
    assert list(some) == ["spam", "ner", "topic"]
    torch.testing.assert_close(some["topic"], _per_head(model, ids, mask)["topic"], rtol=0, atol=1e-5)


def test_fused_heads_follow_in_place_updates_and_loaded_weights(tiny_checkpoint, tmp_path):
    model, tok, _, _ = load_checkpoint(tiny_checkpoint)
    model.eval()
    ids, mask = _batch(tok)
    before = _fused(model, ids, mask)
    with torch.no_grad():  # an optimizer step is an in-place update like this one
        model.heads["topic"].net[4].bias.add_(5.0)
        model.heads["spam"].net[1].weight.mul_(-1.0)
    after = _fused(model, ids, mask)
    _assert_close(after, _per_head(model, ids, mask))
    assert not torch.allclose(after["topic"], before["topic"])
    assert not torch.allclose(after["spam"], before["spam"])

    other, _, _, _ = load_checkpoint(make_tiny_checkpoint(tmp_path / "other", seed=7))
    model.load_state_dict(other.state_dict())
    _assert_close(_fused(model, ids, mask), _per_head(other.eval(), ids, mask))


def test_training_mode_uses_the_per_head_path_and_gets_gradients(tiny_checkpoint):
    model, tok, _, _ = load_checkpoint(tiny_checkpoint)
    ids, mask = _batch(tok)
    model.train()
    out = model(input_ids=ids, attention_mask=mask)
    sum(v.float().sum() for v in out.logits.values()).backward()
    assert model._fused.fused is None
    assert all(model.heads[n].net[1].weight.grad is not None for n in ("sentiment", "topic", "spam"))


def test_edit_memory_applies_on_the_fused_path(tiny_checkpoint):
    model, tok, _, _ = load_checkpoint(tiny_checkpoint)
    model.eval()
    ids, mask = _batch(tok)
    spec = model.tasks["question_type"]
    with torch.inference_mode():
        states = model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        key = pool(states, mask, model.config.pooling)[1:2].clone()
    before = _per_head(model, ids, mask)["question_type"].argmax(-1)
    target = (int(before[1]) + 1) % spec.n_outputs
    model.memory["question_type"] = EditMemory(key, torch.tensor([1e-3]), torch.tensor([target]), spec.kind,
                                               spec.n_outputs)
    fused = _fused(model, ids, mask)["question_type"].argmax(-1)
    assert int(fused[1]) == target
    assert torch.equal(fused[[0, 2, 3]], before[[0, 2, 3]])
    _assert_close(_fused(model, ids, mask), _per_head(model, ids, mask))
