"""train/keep_general.py: the relational term is zero while the encoder is unchanged, grows as it drifts, trains
only the student, stays out of the checkpoint, and reaches the training step."""

from __future__ import annotations

import pytest
import torch

from mtl_core.model.modeling import ModelConfig, build_model
from mtl_core.serve.predictor import load_active_predictor
from mtl_core.tasks import load_task_file
from mtl_core.train.keep_general import keep_general_for
from mtl_core.train.loop import TrainConfig
from mtl_core.train.pipeline import train_new_version
from tests.helpers.toy import make_tiny_encoder_dir, write_toy_tasks


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_keep")
    return write_toy_tasks(root), make_tiny_encoder_dir(root / "enc")


def _model(toy):
    task_file, enc = toy
    torch.manual_seed(0)
    return build_model(load_task_file(task_file).tasks, ModelConfig(encoder=str(enc), max_length=32)).eval()


def _states(model, texts):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model.config.encoder)
    b = tok(texts, padding=True, return_tensors="pt")
    out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], output_hidden_states=True)
    return out.hidden_states, b["attention_mask"]


TEXTS = ["the film was great", "a dreadful boring film", "i met Obama in Paris", "number 7 indeed"]


def test_zero_while_unchanged_then_grows_with_drift_and_trains_only_the_student(toy):
    model = _model(toy)
    keep = keep_general_for(model, 10.0, freeze_layers=0, device="cpu")
    with torch.no_grad():
        assert keep.from_layer == 0 and float(keep.loss(*_states(model, TEXTS))) == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():  # the student's last layer drifts; the teacher's copy does not
        last = model.encoder.encoder.layer[-1].attention.output.dense.weight
        last.add_(torch.randn_like(last) * 0.5)
    loss = keep.loss(*_states(model, TEXTS))
    assert float(loss.detach()) > 1e-4
    loss.backward()
    assert last.grad is not None and last.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in keep.teacher.parameters())
    heavier = keep_general_for(model, 20.0, 0, "cpu")  # the weight scales the term linearly
    heavier.teacher.load_state_dict(keep.teacher.state_dict())
    assert float(heavier.loss(*_states(model, TEXTS)).detach()) == pytest.approx(2 * float(loss.detach()), rel=1e-4)


def test_off_by_default_one_row_has_no_pairs_and_the_checkpoint_is_unchanged(toy):
    model = _model(toy)
    n_keys = len(model.state_dict())
    assert keep_general_for(model, 0.0, 2, "cpu") is None
    keep = keep_general_for(model, 5.0, 1, "cpu")
    assert keep.from_layer == 1 and len(model.state_dict()) == n_keys  # the teacher is not a submodule
    with torch.no_grad():
        assert float(keep.loss(*_states(model, TEXTS[:1]))) == 0.0
    with pytest.raises(ValueError, match="no trainable encoder layer"):
        keep_general_for(model, 5.0, len(model.encoder.encoder.layer), "cpu")


def test_config_checks_and_the_workspace_recipe_carries_it(tmp_path):
    from mtl_core.train.recipe import load_recipe, write_recipe

    with pytest.raises(ValueError, match="keep_general"):
        TrainConfig(keep_general=-1)
    with pytest.raises(ValueError, match="keep_general"):
        write_recipe(tmp_path, {"keep_general": 5000}, {}, "test")
    write_recipe(tmp_path, {"keep_general": 10}, {}, "test")  # what the first-run training starts from
    assert TrainConfig(**load_recipe(tmp_path)["train"]).keep_general == 10
    with pytest.raises(ValueError, match="aggregator"):
        TrainConfig(keep_general=1.0, aggregator="upgrad", batching="all")


def test_training_with_it_keeps_the_encoder_closer_to_where_it_started(toy, tmp_path):
    """Same seed and steps: with the term on, the last layer's text-to-text similarities move less."""
    task_file, enc = toy
    sims = {}
    for weight in (0.0, 100.0):
        cfg = TrainConfig(steps=40, batch_size=16, eval_every=40, head_lr=3e-3, encoder_lr=3e-3, freeze_layers=1,
                          keep_general=weight)
        home = tmp_path / f"w{weight}"
        train_new_version(task_file, ModelConfig(encoder=str(enc), max_length=32), cfg, home=home, progress=False)
        model = load_active_predictor(home).model
        drift = []
        for m in (model, _model(toy)):
            with torch.no_grad():
                states, mask = _states(m, TEXTS)
            pooled = (states[-1] * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
            unit = torch.nn.functional.normalize(pooled, dim=-1)
            drift.append(unit @ unit.T)
        sims[weight] = float(((drift[0] - drift[1]) ** 2).mean())
    assert sims[100.0] < sims[0.0]
