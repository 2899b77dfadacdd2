"""MMoE soft sharing (model/mmoe.py): shapes, gates, the model hooks, checkpoints, new/renamed tasks, training."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict

import pytest
import torch

from mtl_core.model.checkpoint import load_checkpoint, save_checkpoint
from mtl_core.model.encoding import encode_texts
from mtl_core.model.mmoe import MixtureOfExperts
from mtl_core.model.modeling import ModelConfig
from mtl_core.model.new_heads import add_heads
from mtl_core.model.registry import Registry
from mtl_core.model.task_edit import edit_model, edited_task_file
from mtl_core.model.testing import make_tiny_checkpoint
from mtl_core.tasks import TaskFile, TaskSpec
from mtl_core.train import loop
from mtl_core.train.loop import TrainConfig
from mtl_core.train.pipeline import train_new_version
from mtl_core.train.step import _param_split
from tests.helpers.toy import make_tiny_encoder_dir, write_toy_tasks

TEXTS = ["a quiet film", "what is the tallest mountain in the world ?", "call now to claim your prize !!"]


def _sentence(model) -> list[str]:
    return [n for n, t in model.tasks.items() if t.kind != "token_classification"]


def _logits(model, tok) -> dict[str, torch.Tensor]:
    enc = encode_texts(tok, TEXTS, 64)
    with torch.inference_mode():
        return model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits


@pytest.fixture(scope="module")
def mmoe_ckpt(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("mmoe") / "ckpt", seed=1, mmoe_experts=4)


def test_shapes_and_gates_sum_to_one():
    torch.manual_seed(0)
    moe = MixtureOfExperts(8, 3, ["a", "b"])
    x = torch.randn(5, 8)
    assert moe.expert_outputs(x).shape == (5, 3, 8)
    gate = moe.gate(x, "a")
    assert gate.shape == (5, 3) and (gate >= 0).all()
    torch.testing.assert_close(gate.sum(-1), torch.ones(5))
    assert moe(x, "a").shape == (5, 8)
    assert not torch.allclose(moe(x, "a"), moe(x, "b"))  # each task mixes the experts its own way
    mixed = torch.einsum("be,beh->bh", gate, moe.expert_outputs(x))
    torch.testing.assert_close(moe(x, "a"), x + mixed)  # residual to the pooled input
    assert moe(x, "new") is x  # no gate: the plain pooled vector
    moe.add_task("new")
    assert moe(x, "new").shape == (5, 8) and set(moe.gates) == {"a", "b", "new"}


@pytest.mark.parametrize("n", [-1, 1, 17])
def test_config_rejects_bad_expert_counts(n):
    with pytest.raises(ValueError, match="mmoe_experts"):
        ModelConfig(mmoe_experts=n)


def test_config_default_is_off():
    assert ModelConfig().mmoe_experts == 0 and ModelConfig(mmoe_experts=16).mmoe_experts == 16


def test_predict_end_to_end_and_round_trip(mmoe_ckpt, tmp_path):
    from mtl_core.serve.predictor import Predictor

    model, tok, task_file, _ = load_checkpoint(mmoe_ckpt)
    assert model.config.mmoe_experts == 4 and set(model.mmoe.gates) == set(_sentence(model))
    (p,) = Predictor.from_dir(mmoe_ckpt, device="cpu", version="t").predict(["the film was superb"])
    assert set(p.tasks) == set(model.task_names)
    before = _logits(model, tok)
    assert model._fused.fused is None  # the fused fast path would bypass the MMoE: it is off
    enc = encode_texts(tok, TEXTS, 64)
    with torch.enable_grad():  # the per-head (training) path gives the same answers
        ref = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits
    for name in before:
        torch.testing.assert_close(before[name], ref[name].detach())
    save_checkpoint(model, tok, task_file, tmp_path / "again")
    again, _, _, _ = load_checkpoint(tmp_path / "again")
    for key, value in model.mmoe.state_dict().items():
        assert torch.equal(value, again.mmoe.state_dict()[key]), key
    after = _logits(again, tok)
    assert all(torch.equal(before[n], after[n]) for n in before)


def test_sentence_heads_read_the_mixture_token_heads_do_not(mmoe_ckpt):
    model, tok, _, _ = load_checkpoint(mmoe_ckpt)
    before = _logits(model, tok)
    with torch.no_grad():
        model.mmoe.experts.weight.add_(torch.randn_like(model.mmoe.experts.weight))  # (a constant would cancel:
        # the tiny encoder's layer-normed states sum to ~0 over H)
    after = _logits(model, tok)
    for name, spec in model.tasks.items():
        changed = not torch.allclose(before[name], after[name])
        assert changed == (spec.kind != "token_classification"), name


def test_a_checkpoint_saved_without_the_field_loads_with_mmoe_off(tiny_checkpoint, tmp_path):
    ckpt = shutil.copytree(tiny_checkpoint, tmp_path / "old")
    cfg = json.loads((ckpt / "model_config.json").read_text())
    cfg.pop("mmoe_experts", None)
    (ckpt / "model_config.json").write_text(json.dumps(cfg))
    model, tok, _, _ = load_checkpoint(ckpt)
    assert model.config.mmoe_experts == 0 and model.mmoe is None
    assert not any(k.startswith("mmoe.") for k in model.state_dict())
    _logits(model, tok)
    assert model._fused.fused is not None  # without MMoE the fused path is still taken


def test_a_joined_task_gets_a_gate(mmoe_ckpt, tmp_path):
    model, tok, task_file, _ = load_checkpoint(mmoe_ckpt)
    new = [TaskSpec(name="joined", kind="classification", labels=["x", "y"]),
           TaskSpec(name="joined_ner", kind="token_classification", labels=["thing"])]
    add_heads(model, new, seed=0)
    assert "joined" in model.mmoe.gates and "joined_ner" not in model.mmoe.gates
    assert _logits(model, tok)["joined"].shape == (len(TEXTS), 2)
    joined = TaskFile(tasks=list(task_file.tasks) + new, contradictions=task_file.contradictions)
    save_checkpoint(model, tok, joined, tmp_path / "joined")
    again, _, _, _ = load_checkpoint(tmp_path / "joined")  # a gate missing or extra would fail to load
    assert set(again.mmoe.gates) == set(_sentence(again)) | {"joined"}


def test_removed_and_renamed_tasks_take_their_gates_along(mmoe_ckpt, tmp_path):
    model, tok, task_file, _ = load_checkpoint(mmoe_ckpt)
    old, gone = _sentence(model)[:2]
    edited = edited_task_file(task_file, [gone], {old: "renamed"})
    weight = model.mmoe.gates[old].weight.clone()
    edit_model(model, [gone], {old: "renamed"}, edited)
    assert torch.equal(model.mmoe.gates["renamed"].weight, weight) and {old, gone}.isdisjoint(model.mmoe.gates)
    save_checkpoint(model, tok, edited, tmp_path / "edited")
    again, _, _, _ = load_checkpoint(tmp_path / "edited")
    assert set(again.mmoe.gates) == set(_sentence(again))


def test_param_split_experts_with_every_sentence_task_gates_with_their_own(mmoe_ckpt):
    model, _, _, _ = load_checkpoint(mmoe_ckpt)
    model.train()
    shared, per_task = _param_split(model, model.task_names)
    experts = {id(p) for p in model.mmoe.experts.parameters()}
    assert not experts & {id(p) for p in shared}  # not the aggregated encoder parameters
    for name, params in per_task.items():
        ids = {id(p) for p in params}
        sentence = model.tasks[name].kind != "token_classification"
        assert (experts <= ids) == sentence
        for gate, module in model.mmoe.gates.items():
            assert ({id(p) for p in module.parameters()} <= ids) == (gate == name)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    return write_toy_tasks(root), make_tiny_encoder_dir(root / "enc")


@pytest.mark.parametrize("overrides", [{}, {"batching": "all", "aggregator": "pcgrad"}], ids=["sum", "pcgrad"])
def test_training_runs_and_the_gates_get_gradients(toy, tmp_path, monkeypatch, overrides):
    grads, optimizer = defaultdict(float), loop._optimizer

    def spy(model, weighting, cfg):  # the sum of |grad| of every MMoE parameter, just before each step
        opt = optimizer(model, weighting, cfg)

        def record(*_):
            for name, p in model.mmoe.named_parameters():
                grads[name] += 0.0 if p.grad is None else float(p.grad.abs().sum())

        opt.register_step_pre_hook(record)
        return opt

    monkeypatch.setattr(loop, "_optimizer", spy)
    task_file, enc = toy
    cfg = TrainConfig(**{"steps": 12, "batch_size": 12, "eval_every": 12, "head_lr": 3e-3, "encoder_lr": 1e-3,
                         "freeze_layers": 0, "freeze_embeddings": False, "max_dev": 20, **overrides})
    info, report = train_new_version(task_file, ModelConfig(encoder=str(enc), max_length=32, mmoe_experts=4), cfg,
                                     home=tmp_path, progress=False)
    assert set(report["test"]["tasks"]) == {"polarity", "score", "things"}
    assert {n.split(".")[1] for n in grads if n.startswith("gates.")} == {"polarity", "score"}  # no token gate
    assert all(v > 0 for v in grads.values()), dict(grads)  # every gate and the experts learnt
    model, _, _, _ = load_checkpoint(Registry(tmp_path).path_of(info.id))
    assert model.config.mmoe_experts == 4 and set(model.mmoe.gates) == {"polarity", "score"}


def test_the_onnx_export_runs_the_mmoe(mmoe_ckpt, tmp_path):
    for module in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(module)
    from mtl_core.serve.export import export_model

    model, tok, task_file, _ = load_checkpoint(mmoe_ckpt)
    info = export_model(model, tok, task_file, tmp_path / "onnx", version="t")  # checked against PyTorch inside
    assert set(info["max_abs_diff"]) == set(model.task_names) and max(info["max_abs_diff"].values()) < 1e-4
