"""Per-task LoRA adapters (the lab's "lora_per_task"): each task trains its own adapter, the encoder stays put."""

from __future__ import annotations

import pytest
import torch

from mtl_core.lab.adapters import PerTaskAdapters, adapter_parameters, with_task_adapters
from mtl_core.lab.config import STRATEGIES
from mtl_core.model.modeling import ModelConfig, build_model
from mtl_core.tasks import load_task_file
from tests.helpers.toy import make_tiny_encoder_dir, write_toy_tasks


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return load_task_file(write_toy_tasks(root)), make_tiny_encoder_dir(root / "enc")


def _model(toy):
    task_file, enc = toy
    torch.manual_seed(0)
    return with_task_adapters(build_model(task_file.tasks, ModelConfig(encoder=str(enc), max_length=32)), rank=4)


def test_a_step_on_one_task_moves_only_its_adapter_and_head(toy):
    model = _model(toy).train()
    assert isinstance(model, PerTaskAdapters)
    base = {n: p.detach().clone() for n, p in model.encoder.named_parameters() if "lora_" not in n}
    assert not any(p.requires_grad for n, p in model.encoder.named_parameters() if "lora_" not in n)
    ids = torch.randint(1000, 2000, (4, 10))
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), tasks=["polarity"])
    out.logits["polarity"].sum().backward()
    got = {t: any(p.grad is not None and p.grad.abs().sum() > 0 for p in adapter_parameters(model, t))
           for t in model.task_names}
    assert got == {"polarity": True, "score": False, "things": False}
    assert all(p.grad is None for n, p in model.encoder.named_parameters() if "lora_" not in n)
    assert all(torch.equal(p, base[n]) for n, p in model.encoder.named_parameters() if n in base)


def test_several_tasks_run_the_encoder_once_each_with_their_adapter(toy):
    model = _model(toy).eval()
    with torch.no_grad():
        for p in adapter_parameters(model, "score"):
            p.add_(0.5)  # only score's adapter differs from the identity start (lora_B = 0)
        ids = torch.randint(1000, 2000, (2, 8))
        mask = torch.ones_like(ids)
        both = model(input_ids=ids, attention_mask=mask, tasks=["polarity", "score"]).logits
        alone = {t: model(input_ids=ids, attention_mask=mask, tasks=[t]).logits[t] for t in ("polarity", "score")}
    assert set(both) == {"polarity", "score"}
    for t in both:
        torch.testing.assert_close(both[t], alone[t])


def test_lab_only_strategy_cannot_become_a_recipe(tmp_path):
    from mtl_core.lab.recipe import save_recipe

    assert STRATEGIES["lora_per_task"].adapters
    with pytest.raises(ValueError, match="only in the lab"):
        save_recipe(tmp_path, "lora_per_task")


def test_lab_run_with_adapters(toy, tmp_path):
    from mtl_core.lab.config import LabConfig
    from mtl_core.lab.experiment import run_lab

    task_file, enc = toy
    path = tmp_path / "tasks"
    path.mkdir()
    cfg = LabConfig(strategies=["lora_per_task"], budget="custom", steps=6, task_file=str(write_toy_tasks(path)),
                    encoder=str(enc))
    result = run_lab(cfg, tmp_path / "ws")
    run = next(r for r in result.runs if r.strategy == "lora_per_task")
    assert run.status == "done" and set(run.test) == {"polarity", "score", "things"}
    assert "lora_per_task/s0" not in (result.conflict.get("by_run") or {})  # no shared gradients to compare
