"""The training pipeline end to end on toy tasks with a tiny encoder (seconds, CPU)."""

import random

import pytest
import torch

from mtl_core.model.modeling import ModelConfig
from mtl_core.model.registry import Registry
from mtl_core.progress import Reporter
from mtl_core.serve.predictor import load_active_predictor
from mtl_core.tasks import load_task_file
from mtl_core.train.loop import TrainConfig
from mtl_core.train.pipeline import train_new_version
from mtl_core.train.weighting import LossWeighting, TaskSampler
from tests.helpers.reporting import RecordingReporter
from tests.helpers.toy import make_tiny_encoder_dir, write_toy_tasks


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    return write_toy_tasks(root), make_tiny_encoder_dir(root / "enc")


def _run(toy, home, **overrides):
    task_file, enc = toy
    cfg = TrainConfig(**{"steps": 60, "batch_size": 16, "eval_every": 30, "head_lr": 3e-3, "encoder_lr": 1e-3,
                         "freeze_layers": 0, "freeze_embeddings": False, **overrides})
    return train_new_version(task_file, ModelConfig(encoder=str(enc), max_length=32), cfg, home=home, progress=False)


def test_training_learns_registers_and_reloads(toy, tmp_path):
    reporter = RecordingReporter()
    task_file, enc = toy
    cfg = TrainConfig(steps=150, batch_size=16, eval_every=75, head_lr=3e-3, encoder_lr=3e-3, freeze_layers=0,
                      freeze_embeddings=False)
    info, report = train_new_version(task_file, ModelConfig(encoder=str(enc), max_length=32), cfg,
                                     home=tmp_path, progress=False, reporter=reporter)
    assert Registry(tmp_path).active == info.id
    tasks = report["test"]["tasks"]
    assert set(tasks) == {"polarity", "score", "things"}
    assert {"accuracy", "macro_f1"} <= set(tasks["polarity"]) and {"pearson", "spearman", "mae"} <= set(tasks["score"])
    assert {"precision", "recall", "f1"} <= set(tasks["things"])
    assert tasks["polarity"]["accuracy"] > 0.8  # the toy task is trivially learnable
    assert {name for _, name, _, _ in reporter.metrics} == {"train_loss", "dev", "dev_average"}
    assert reporter.progresses[-1][:2] == (150, 150) and reporter.metrics[-1][:2] == (150, "dev_average")
    assert isinstance(reporter, Reporter)
    assert set(report["timings"]) >= {"data", "train_train", "train_evaluate", "final_eval", "save", "total"}
    pred = load_active_predictor(tmp_path)
    (p,) = pred.predict(["the film number 7 was superb indeed"])
    assert p.tasks["polarity"].label == "pos"
    assert set(p.applies) == {"polarity", "score", "things"} and "applicability" in report["timings"]


def test_same_config_same_metrics(toy, tmp_path):
    _, a = _run(toy, tmp_path / "a", steps=20, eval_every=20)
    _, b = _run(toy, tmp_path / "b", steps=20, eval_every=20)
    assert a["test"]["tasks"] == b["test"]["tasks"]


@pytest.mark.parametrize("weighting", ["static", "uncertainty", "dwa"])
@pytest.mark.parametrize("batching", ["per_task", "mixed"])
def test_weightings_and_batching_run(toy, tmp_path, weighting, batching):
    _, report = _run(toy, tmp_path, steps=12, eval_every=12, loss_weighting=weighting, batching=batching)
    assert report["history"][-1]["step"] == 12


def test_private_upper_layers_and_freezing(toy, tmp_path):
    task_file, enc = toy
    cfg = TrainConfig(steps=10, batch_size=8, eval_every=10, freeze_layers=1)
    info, _ = train_new_version(task_file, ModelConfig(encoder=str(enc), max_length=32, shared_layers=1), cfg,
                                home=tmp_path, progress=False)
    pred = load_active_predictor(tmp_path)
    assert set(pred.model.private) == {"polarity", "score", "things"}
    assert len(pred.model.encoder.encoder.layer) == 1


def test_cancel_keeps_best_and_reports(toy, tmp_path):
    task_file, enc = toy
    cfg = TrainConfig(steps=60, batch_size=16, eval_every=20, freeze_layers=0)
    _, report = train_new_version(task_file, ModelConfig(encoder=str(enc), max_length=32), cfg, home=tmp_path,
                                  progress=False, reporter=RecordingReporter(cancel_at_step=40))
    assert report["stopped"] == "cancelled" and report["best_step"] == 20


def test_cancel_between_logged_steps_stops_at_the_next_step(toy, tmp_path):
    """Cancel is checked after every step, not only at logged ones (every 50 steps by default: minutes on a
    busy CPU, while the page says "cancelling")."""
    task_file, enc = toy
    cfg = TrainConfig(steps=60, batch_size=8, eval_every=60, log_every=50, freeze_layers=0)
    reporter = RecordingReporter(cancel_at_step=7)
    _, report = train_new_version(task_file, ModelConfig(encoder=str(enc), max_length=32), cfg, home=tmp_path,
                                  progress=False, reporter=reporter)
    assert report["stopped"] == "cancelled"
    assert max(step for step, total, _ in reporter.progresses if total == 60) == 7


def test_sampler_distributions():
    sizes = {"big": 900, "small": 100}
    draw = lambda how, t=2.0: [TaskSampler(sizes, how, t, random.Random(0)).next() for _ in range(1)]  # noqa: E731
    assert draw("round_robin") == ["big"]
    s = TaskSampler(sizes, "proportional", 1.0, random.Random(0))
    assert s.probs == pytest.approx([0.9, 0.1])
    t = TaskSampler(sizes, "temperature", 2.0, random.Random(0))
    assert t.probs == pytest.approx([0.75, 0.25])  # sqrt(900):sqrt(100) = 3:1
    rr = TaskSampler(sizes, "round_robin", 1.0, random.Random(0))
    assert [rr.next() for _ in range(4)] == ["big", "small", "big", "small"]


def test_uncertainty_weighting_is_learnable_and_dwa_reweights():
    tasks = load_task_file().tasks[:2]
    unc = LossWeighting("uncertainty", tasks)
    loss = unc("sentiment", torch.tensor(2.0))
    loss.backward()
    assert unc.log_vars["sentiment"].grad is not None
    dwa = LossWeighting("dwa", tasks, dwa_window=1)
    for a, b in [(1.0, 1.0), (1.0, 0.5), (1.0, 0.25)]:  # sentiment flat, score falling fast
        dwa("sentiment", torch.tensor(a))
        dwa("sentiment_score", torch.tensor(b))
    w = dwa.current()
    assert w["sentiment"] > w["sentiment_score"] and sum(w.values()) == pytest.approx(2.0)


def test_bad_train_config_names_the_field():
    with pytest.raises(ValueError, match="sampling"):
        TrainConfig(sampling="random")
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="pooling"):
        ModelConfig(pooling="max")
