"""Private upper layers for some tasks only (model/private_layers.py, `ModelConfig.private_tasks`): the listed
tasks branch off the full shared encoder after layer K; the others read its top. Structure, the function it
computes, checkpoints, predict, new tasks, training."""

from __future__ import annotations

import pytest
import torch

from mtl_core.model.checkpoint import load_checkpoint, save_checkpoint
from mtl_core.model.encoding import encode_texts
from mtl_core.model.modeling import ModelConfig, MultiTaskModel, encoder_from_config, tiny_encoder_config
from mtl_core.model.new_heads import add_heads
from mtl_core.model.testing import make_tiny_checkpoint
from mtl_core.tasks import TaskSpec, load_task_file
from mtl_core.train.step import _param_split

TEXTS = ["Barack Obama flew to Paris", "what is the tallest mountain ?", "call now to claim your prize !!"]


def _model(seed: int = 0, **cfg) -> MultiTaskModel:
    torch.manual_seed(seed)
    return MultiTaskModel(encoder_from_config(tiny_encoder_config()), load_task_file().tasks,
                          ModelConfig(max_length=64, **cfg)).eval()


def _logits(model, tok) -> dict[str, torch.Tensor]:
    enc = encode_texts(tok, TEXTS, 64)
    with torch.inference_mode():
        return model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    from mtl_core.model.modeling import default_encoder_dir

    return AutoTokenizer.from_pretrained(default_encoder_dir())


def test_config_needs_shared_layers_and_a_task():
    with pytest.raises(ValueError, match="private_tasks"):
        ModelConfig(private_tasks=["ner"])
    with pytest.raises(ValueError, match="private_tasks"):
        ModelConfig(shared_layers=1, private_tasks=[])
    assert ModelConfig().private_tasks is None


def test_only_listed_tasks_branch_and_the_encoder_keeps_every_layer():
    model = _model(shared_layers=1, private_tasks=["ner"])
    assert set(model.private) == {"ner"} and model.branch_from == 1
    assert len(model.encoder.encoder.layer) == 2 and len(model.private["ner"]) == 1
    every = _model(shared_layers=1)  # every task private: the encoder is cut to K layers
    assert set(every.private) == set(every.tasks) and every.branch_from is None
    assert len(every.encoder.encoder.layer) == 1


def test_at_initialisation_the_branch_computes_what_the_shared_top_does(tok):
    """The private copy starts as the shared upper layers: every task's answer equals the fully shared model's
    with the same weights; after the copy changes, only the branching task's answer moves."""
    shared = _model(seed=3)
    branch = _model(seed=3, shared_layers=1, private_tasks=["ner"])
    before = _logits(shared, tok)
    got = _logits(branch, tok)
    for name in before:
        torch.testing.assert_close(got[name], before[name], atol=1e-5, rtol=1e-4)
    # the sentence tasks read the shared top: inference keeps fusing their heads; NER alone is not fused
    assert branch._fused.fused is not None and "ner" not in branch._fused.fused.names
    with torch.no_grad():
        for p in branch.private["ner"].parameters():
            p.add_(0.05 * torch.randn_like(p))
    after = _logits(branch, tok)
    for name in before:
        assert torch.allclose(after[name], before[name], atol=1e-5) == (name != "ner"), name


def test_represent_matches_forward_for_the_branching_task(tok):
    model = _model(shared_layers=1, private_tasks=["ner"])
    with torch.no_grad():
        for p in model.private["ner"].parameters():
            p.add_(0.05 * torch.randn_like(p))
    enc = encode_texts(tok, TEXTS, 64)
    with torch.inference_mode():
        full = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits
        for name in ("ner", "topic"):
            _, logits = model.represent(enc.input_ids, enc.attention_mask, name)
            torch.testing.assert_close(logits, full[name], atol=1e-5, rtol=1e-4)


def test_checkpoint_round_trip_and_predict(tmp_path, tok):
    from mtl_core.serve.predictor import Predictor

    ck = make_tiny_checkpoint(tmp_path / "ck", seed=2, shared_layers=1, private_tasks=["ner"])
    model, _, task_file, _ = load_checkpoint(ck)
    assert model.config.private_tasks == ["ner"] and set(model.private) == {"ner"}
    with torch.no_grad():
        for p in model.private["ner"].parameters():
            p.add_(0.05 * torch.randn_like(p))
    before = _logits(model, tok)
    save_checkpoint(model, tok, task_file, tmp_path / "again")
    again, _, _, _ = load_checkpoint(tmp_path / "again")
    assert len(again.encoder.encoder.layer) == 2
    after = _logits(again, tok)
    assert all(torch.equal(before[n], after[n]) for n in before)
    (p,) = Predictor.from_dir(tmp_path / "again", device="cpu", version="t").predict([TEXTS[0]], with_attention=True)
    assert set(p.tasks) == set(model.task_names) and len(p.attentions) == 2  # attention of every shared layer


def test_a_new_task_reads_the_shared_top_and_the_branch_is_a_task_parameter():
    model = _model(shared_layers=1, private_tasks=["ner"])
    add_heads(model, [TaskSpec(name="joined", kind="classification", labels=["x", "y"])])
    assert set(model.private) == {"ner"}
    shared, per_task = _param_split(model, ["ner", "topic"])
    branch = {id(p) for p in model.private["ner"].parameters()}
    assert branch <= {id(p) for p in per_task["ner"]}
    assert not branch & {id(p) for p in shared} and not branch & {id(p) for p in per_task["topic"]}


def test_training_rejects_an_unknown_private_task(tmp_path):
    from mtl_core.serve.predictor import load_active_predictor
    from mtl_core.train.loop import TrainConfig
    from mtl_core.train.pipeline import train_new_version
    from tests.helpers.toy import make_tiny_encoder_dir, write_toy_tasks

    task_file, enc = write_toy_tasks(tmp_path), make_tiny_encoder_dir(tmp_path / "enc")
    cfg = ModelConfig(encoder=str(enc), max_length=32, shared_layers=1, private_tasks=["nope"])
    with pytest.raises(ValueError, match=r"\['nope'\] are not tasks"):
        train_new_version(task_file, cfg, TrainConfig(steps=2, eval_every=2), home=tmp_path / "ws", progress=False)
    _, report = train_new_version(task_file, ModelConfig(encoder=str(enc), max_length=32, shared_layers=1,
                                                         private_tasks=["things"]),
                                  TrainConfig(steps=6, batch_size=8, eval_every=6, freeze_layers=0),
                                  home=tmp_path / "ws", progress=False)
    assert report["stopped"] == "completed"
    model = load_active_predictor(tmp_path / "ws").model
    assert set(model.private) == {"things"} and model.branch_from == 1


def test_rename_and_remove_keep_the_checkpoint_loadable(tmp_path, tok):
    from mtl_core.model.task_edit import edit_model, edited_task_file

    ck = make_tiny_checkpoint(tmp_path / "ck", seed=4, shared_layers=1, private_tasks=["ner"])
    model, _, task_file, _ = load_checkpoint(ck)
    with torch.no_grad():
        for p in model.private["ner"].parameters():
            p.add_(0.05 * torch.randn_like(p))
    before = _logits(model, tok)
    renamed = edited_task_file(task_file, [], {"ner": "entities"})
    edit_model(model, [], {"ner": "entities"}, renamed)
    save_checkpoint(model, tok, renamed, tmp_path / "renamed")
    again, _, _, _ = load_checkpoint(tmp_path / "renamed")
    assert again.config.private_tasks == ["entities"] and set(again.private) == {"entities"}
    torch.testing.assert_close(_logits(again, tok)["entities"], before["ner"])
    removed = edited_task_file(renamed, ["entities"], {})
    edit_model(again, ["entities"], {}, removed)
    save_checkpoint(again, tok, removed, tmp_path / "removed")
    shared, _, _, _ = load_checkpoint(tmp_path / "removed")
    assert shared.config.private_tasks is None and shared.config.shared_layers is None and not len(shared.private)
    after = _logits(shared, tok)
    for name in after:  # the other tasks answer as before (now through the fused heads: float rounding only)
        torch.testing.assert_close(after[name], before[name], atol=1e-5, rtol=1e-4)
