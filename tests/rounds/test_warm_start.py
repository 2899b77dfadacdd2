"""A joined task's head is fitted on the frozen encoder before the round (LP-FT): its loss falls, nothing
else moves."""

from __future__ import annotations

import torch

from mtl_core.data.examples import Example
from mtl_core.model.checkpoint import load_checkpoint
from mtl_core.model.new_heads import add_heads
from mtl_core.model.runner import ModelRunner
from mtl_core.rounds.warm_start import warm_start_heads
from mtl_core.tasks import TaskSpec


def test_probe_fits_the_new_head_only(tiny_checkpoint):
    model, tok, _, _ = load_checkpoint(tiny_checkpoint)
    spec = TaskSpec(name="urgency", kind="classification", labels=["low", "high"])
    score = TaskSpec(name="price", kind="regression", value_range=(0.0, 1.0))
    ner = TaskSpec(name="things", kind="token_classification", labels=["thing"])
    add_heads(model, [spec, score, ner], seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("heads.urgency")
              and not k.startswith("heads.price")}
    exs = [Example(f"{w} server outage number {i}", "high") for i, w in enumerate(["big", "huge", "major"])]
    exs += [Example(f"{w} lunch menu item {i}", "low") for i, w in enumerate(["small", "tiny", "minor"])]
    runner = ModelRunner.of(model, tok, "cpu")
    stats = warm_start_heads(runner, [spec, score, ner], {"urgency": exs, "price": [Example("cheap", 0.1)]})
    assert set(stats) == {"urgency", "price"}  # token heads keep their random start
    assert stats["urgency"]["examples"] == 6 and stats["urgency"]["loss_after"] < stats["urgency"]["loss_before"] / 5
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())  # encoder and other heads untouched
    assert not model.training
