"""Joining new tasks to the shared model in a round (RoundConfig.new_tasks): heads, data, test sets, comparison."""

from __future__ import annotations

import json

import pytest
import torch

from mtl_core.data.examples import Example
from mtl_core.data.workspace_tasks import add_task
from mtl_core.eval.compare import compare_answers, regressions
from mtl_core.model.checkpoint import load_checkpoint
from mtl_core.model.new_heads import add_heads
from mtl_core.model.registry import Registry
from mtl_core.rounds.config import RoundConfig
from mtl_core.rounds.finetune import run_round
from mtl_core.rounds.join import HOLDOUT_MIN, extend_task_file, held_out, joinable_tasks, version_tasks
from mtl_core.rounds.round_data import Correction, build_round_data
from mtl_core.serve.predictor import Predictor
from mtl_core.store import add_annotation, add_texts
from mtl_core.tasks import TaskSpec
from tests.helpers.toy import private_copy, train_toy_base

FAST = dict(steps=30, batch_size=8, encoder_lr=1e-3, head_lr=3e-3, dev_size=20, min_replay=8, log_every=10)
URGENT = [f"please call me back about order {i} right now" for i in range(15)]
CALM = [f"no rush on the order {i}, whenever suits you" for i in range(15)]


@pytest.fixture(scope="module")
def toy_base(tmp_path_factory):
    """A workspace whose active v0001 was trained (briefly) on the toy tasks."""
    root = tmp_path_factory.mktemp("toyjoin")
    return train_toy_base(root, steps=30, max_dev=20), root


@pytest.fixture
def ws(toy_base, tmp_path, monkeypatch):
    src, root = toy_base
    return (*private_copy(src, tmp_path, monkeypatch), str(root))


def _label(sessions, task, texts, values):
    with sessions() as s:
        ids = add_texts(s, texts, source=f"task:{task}")
        for i, v in zip(ids, values):
            add_annotation(s, i, task, v, "ann")


def _add(home, spec: TaskSpec) -> None:
    add_task(spec, home, version_tasks(home, "v0001"))


# ---------------------------------------------------------------------------------- rounds


def test_store_only_task_joins_with_a_trained_head_and_a_held_out_test_set(ws):
    home, sessions, root = ws
    _add(home, TaskSpec(name="urgency", kind="classification", labels=["calm", "urgent"]))
    assert [t.name for t in joinable_tasks(home, "v0001")] == ["urgency"]
    _label(sessions, "urgency", URGENT + CALM, ["urgent"] * 15 + ["calm"] * 15)
    out = run_round(home, "v0001", RoundConfig(**FAST, new_tasks=["urgency"]), sessions=sessions, data_dir=root)
    assert out.joined == ["urgency"]
    tf = version_tasks(home, "v0001")
    spec = TaskSpec(name="urgency", kind="classification", labels=["calm", "urgent"])
    corrections = [Correction(i, i, "urgency", t, "urgent" if t in URGENT else "calm", "ann")
                   for i, t in enumerate(URGENT + CALM)]
    tests = held_out(spec, corrections)
    assert 0 < len(tests) < 30 and len(tests) == len(held_out(spec, corrections))  # deterministic
    test = out.comparison["test"]
    row = test["tasks"]["urgency"]
    assert row["old"] is None and row["delta"] is None and row["new_task"] and row["n"] == len(tests)
    assert test["new_tasks"] == ["urgency"] and "urgency" not in test["regressions"]
    assert {"polarity", "score", "things"} <= set(test["tasks"]) and test["tasks"]["polarity"]["old"] is not None
    assert out.counts["urgency"]["corrections"] == 30 - len(tests)  # held-out texts are never trained on
    assert out.skipped["in_test_split"] == len(tests)
    assert out.counts["polarity"]["replay"] > 0  # the old tasks are replayed for the new one
    info = Registry(home).get(out.version)
    assert info.extra["joined"] == ["urgency"] and "urgency" not in info.extra["base_metrics"]
    assert "joins urgency" in info.note
    path = Registry(home).path_of(out.version)
    model, _, task_file, _ = load_checkpoint(path)
    assert [t.name for t in task_file.tasks] == [t.name for t in tf.tasks] + ["urgency"]
    assert "urgency" in model.heads and set(model.applicability.rules) == set(model.tasks)
    (pred,) = Predictor.from_dir(path, device="cpu", version=out.version).predict("call me back right now")
    answer = pred.tasks["urgency"]
    assert answer.label in ("calm", "urgent") and not answer.fewshot
    # a later round from the new version keeps testing the task on the same held-out labels, old vs new now
    again = run_round(home, out.version, RoundConfig(**{**FAST, "steps": 10}), sessions=sessions, data_dir=root)
    row = again.comparison["test"]["tasks"]["urgency"]
    assert row["old"] is not None and row["n"] == len(tests) and again.joined == []


def test_dataset_and_span_tasks_join_together(ws, tmp_path):
    home, sessions, root = ws
    rows = [{"text": f"the parcel {i} arrived {'late' if i % 2 else 'early'}", "label": -1.0 if i % 2 else 1.0}
            for i in range(60)]
    data = tmp_path / "delay.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    _add(home, TaskSpec(name="delay", kind="regression", value_range=(-1.0, 1.0),
                        source=_source({"loader": "jsonl", "path": str(data)})))
    _add(home, TaskSpec(name="tools", kind="token_classification", labels=["tool"]))
    texts = [f"she used a Hammer on day {i}" for i in range(8)]
    _label(sessions, "tools", texts, [[{"start": 11, "end": 17, "label": "tool"}]] * 8)
    out = run_round(home, "v0001", RoundConfig(**FAST, new_tasks=["tools", "delay"]), sessions=sessions,
                    data_dir=root)
    assert sorted(out.joined) == ["delay", "tools"]
    test = out.comparison["test"]["tasks"]
    assert test["delay"]["old"] is None and test["delay"]["n"] > 0 and test["delay"]["metric"]
    assert "tools" not in test  # 8 labels, below HOLDOUT_MIN: all of them train, none tested
    assert out.counts["tools"]["corrections"] == 8 and out.counts["delay"]["replay"] > 30  # all of its train split
    model, _, task_file, _ = load_checkpoint(Registry(home).path_of(out.version))
    assert {"delay", "tools"} <= set(model.heads) and task_file.by_name("delay").source is not None
    assert type(model.heads["tools"]).__name__ == "TokenHead"


def _source(raw: dict):
    from mtl_core.tasks import SourceSpec

    raw = dict(raw)
    return SourceSpec(loader=raw.pop("loader"), options=raw)


def test_joining_needs_a_new_workspace_task_with_data(ws):
    home, sessions, root = ws
    with pytest.raises(ValueError, match="already has a head"):
        run_round(home, "v0001", RoundConfig(**FAST, new_tasks=["polarity"]), sessions=sessions, data_dir=root)
    with pytest.raises(ValueError, match="not in the workspace"):
        run_round(home, "v0001", RoundConfig(**FAST, new_tasks=["nope"]), sessions=sessions, data_dir=root)
    _add(home, TaskSpec(name="urgency", kind="classification", labels=["calm", "urgent"]))
    with pytest.raises(ValueError, match="nothing to train on"):
        run_round(home, "v0001", RoundConfig(**FAST, new_tasks=["urgency"]), sessions=sessions, data_dir=root)
    assert [v.id for v in Registry(home).versions()] == ["v0001"]


# ---------------------------------------------------------------------------------- pieces


def test_round_config_new_tasks():
    assert RoundConfig().new_tasks is None and RoundConfig(new_tasks=[]).new_tasks is None
    assert RoundConfig(new_tasks=["a", "a", "b"]).new_tasks == ["a", "b"]
    with pytest.raises(ValueError, match="new_tasks"):
        RoundConfig(new_tasks="urgency")


def test_build_round_data_joined_task_uses_all_of_its_data_undistilled():
    old = TaskSpec(name="old", kind="classification", labels=["a", "b"])
    new = TaskSpec(name="new", kind="classification", labels=["x", "y"])
    from mtl_core.tasks import TaskFile

    tf = TaskFile(tasks=[old, new])
    prepared = {"old": {"train": [Example(f"o{i}", label="ab"[i % 2]) for i in range(50)], "dev": [], "test": []},
                "new": {"train": [Example(f"n{i}", label="xy"[i % 2]) for i in range(40)],
                        "dev": [Example("nd", label="x")], "test": [Example("nt", label="y")]}}
    corr = [Correction(1, 1, "new", "n3", "x", "a"), Correction(2, 2, "new", "nt", "x", "a")]
    data = build_round_data(tf, prepared, corr, replay_ratio=1, upsample=1, min_replay=8, joined=("new",))
    assert data.skipped["in_test_split"] == 1
    n = data.prepared["new"]
    assert len(n["train"]) == 40 and not any(n["distill"])  # 1 label + the 39 other train examples
    assert data.prepared["old"]["distill"] and all(data.prepared["old"]["distill"])
    # a joined task with a dataset but no labels still makes a round: the old tasks are replayed for it
    data = build_round_data(tf, prepared, [], joined=("new",), min_replay=8)
    assert data.counts["new"]["replay"] == 40 and data.counts["old"]["replay"] >= 8
    assert build_round_data(tf, prepared, []).counts == {}  # without it: nothing, as before


def test_held_out_needs_enough_labels_and_is_stable():
    spec = TaskSpec(name="t", kind="classification", labels=["a", "b"])
    many = [Correction(i, i, "t", f"text number {i}", "ab"[i % 2], "x") for i in range(200)]
    out = held_out(spec, many)
    assert 20 <= len(out) <= 60 and out == held_out(spec, list(many))
    assert held_out(spec, many[:HOLDOUT_MIN - 1]) == []
    assert held_out(spec, [Correction(1, 1, "other", "x", "a", "u")] * 30) == []


def test_extend_task_file_brings_the_joined_rules(ws):
    home, *_ = ws
    base = version_tasks(home, "v0001")
    _add(home, TaskSpec(name="urgency", kind="classification", labels=["calm", "urgent"]))
    same, none = extend_task_file(home, base, None)
    assert same is base and none == []
    ext, joined = extend_task_file(home, base, ["urgency"])
    assert [t.name for t in joined] == ["urgency"] and ext.tasks[-1].name == "urgency"
    assert [r.name for r in ext.contradictions] == [r.name for r in base.contradictions]


def test_add_heads_keeps_existing_weights_and_is_seeded(tiny_checkpoint):
    model, *_ = load_checkpoint(tiny_checkpoint)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    specs = [TaskSpec(name="urgency", kind="classification", labels=["calm", "urgent", "now"]),
             TaskSpec(name="tools", kind="token_classification", labels=["tool"]),
             TaskSpec(name="delay", kind="regression")]
    add_heads(model, specs, seed=3)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.heads["urgency"].net[4].out_features == 3 and model.heads["delay"].net[4].out_features == 1
    other, *_ = load_checkpoint(tiny_checkpoint)
    add_heads(other, specs, seed=3)
    assert torch.equal(other.heads["urgency"].net[1].weight, model.heads["urgency"].net[1].weight)
    with pytest.raises(ValueError, match="already has a head"):
        add_heads(model, specs[:1])
    model.eval()
    with torch.no_grad():
        out = model(input_ids=torch.tensor([[101, 2000, 102]]), tasks=["urgency", "sentiment"])
    assert out.logits["urgency"].shape == (1, 3)


def test_compare_answers_shows_a_new_task_without_old_metric():
    mood = TaskSpec(name="mood", kind="classification", labels=["neg", "pos"])
    urg = TaskSpec(name="urg", kind="classification", labels=["calm", "urgent"])
    exs = [Example(f"t{i}", label=lab) for i, lab in enumerate(["pos", "neg"])]
    uex = [Example(f"u{i}", label=lab) for i, lab in enumerate(["calm", "urgent"])]
    out = compare_answers({"mood": mood, "urg": urg}, {"mood": exs, "urg": uex}, {"mood": ["pos", "pos"]},
                          {"mood": ["pos", "neg"], "urg": ["calm", "calm"]}, "test")
    assert out["tasks"]["urg"] == {"metric": out["tasks"]["urg"]["metric"], "old": None, "delta": None, "n": 2,
                                   "new": pytest.approx(out["tasks"]["urg"]["new"]), "new_task": True}
    assert out["tasks"]["mood"]["delta"] > 0 and out["new_tasks"] == ["urg"] and "urg" not in out["counts"]
    assert regressions(out) == [] and regressions({"a": {"delta": None}, "b": {"delta": -0.5}}) == ["b"]


def test_round_command_joins_with_new_tasks(ws, capsys):
    from mtl_core.cli.main import main

    home, sessions, root = ws
    _add(home, TaskSpec(name="urgency", kind="classification", labels=["calm", "urgent"]))
    _label(sessions, "urgency", URGENT + CALM, ["urgent"] * 15 + ["calm"] * 15)
    argv = ["--home", str(home), "round", "--new-tasks", "urgency", "--steps", "10", "--batch-size", "8",
            "--dev-size", "20", "--min-replay", "8", "--data-dir", root]
    assert main(argv) == 0
    assert "urgency new -> " in capsys.readouterr().out
    assert Registry(home).get("v0002").extra["joined"] == ["urgency"]


@pytest.mark.distributed
def test_joining_round_on_two_processes(ws, monkeypatch):
    """Every rank adds the same new head (seeded) and trains it in step; rank 0 registers the version."""
    import os

    from mtl_core.ops import worker
    from mtl_core.store import create_job, get_job
    from tests.helpers import ROOT

    home, sessions, root = ws
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    _add(home, TaskSpec(name="urgency", kind="classification", labels=["calm", "urgent"]))
    _label(sessions, "urgency", URGENT + CALM, ["urgent"] * 15 + ["calm"] * 15)
    params = {**FAST, "steps": 10, "new_tasks": ["urgency"], "nproc": 2, "base_version": "v0001", "data_dir": root}
    with sessions() as s:
        job_id = create_job(s, "train_round", params=params).id
    assert worker.run_job(job_id, home) == "done"
    with sessions() as s:
        job = get_job(s, job_id)
    assert job.result["joined"] == ["urgency"] and "2 processes" in job.log
    assert job.result["comparison"]["test"]["tasks"]["urgency"]["old"] is None
