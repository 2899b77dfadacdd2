"""run_lab end to end on the toy tasks with the tiny encoder (6 steps a run: about a second per lab), the baseline
cache, a failing strategy, cancellation, the worker's lab_job, and the recipe that a lab strategy becomes."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from mtl_core.lab import experiment
from mtl_core.lab.config import LabConfig
from mtl_core.lab.experiment import _BaselineCache, lab_job, plan, run_lab
from mtl_core.lab.results import BASELINE, LabResult, metric_name
from mtl_core.lab.runner import LabData
from mtl_core.progress import Cancelled
from tests.helpers.reporting import RecordingReporter
from tests.helpers.toy import make_tiny_encoder_dir, write_toy_tasks

TASKS = ["polarity", "score", "things"]
STRATS = ["equal", "pcgrad", "famo"]
STEPS = 6


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    return root, write_toy_tasks(root), make_tiny_encoder_dir(root / "enc")


def _cfg(toy, strategies=STRATS, **kw) -> LabConfig:
    _, task_file, enc = toy
    return LabConfig(strategies=list(strategies), seeds=1, budget="custom", steps=STEPS, task_file=str(task_file),
                     encoder=str(enc), **kw)


@pytest.fixture(scope="module")
def first(toy):
    """The first lab in the module's workspace (trains the baselines and caches them)."""
    root = toy[0]
    reporter = RecordingReporter()
    result = run_lab(_cfg(toy), root / "home", reporter, tb_folder=root / "tb")
    return result, reporter, root / "home", root / "tb"


def _spy(monkeypatch, fail: str | None = None) -> list:
    """Record (strategy, seed, tasks) of every run_one call; `fail`: that strategy raises instead."""
    calls, real = [], experiment.run_one

    def fake(strategy, seed, budget, data, reporter, tasks=None, *args, **kwargs):
        calls.append((strategy.name, seed, tasks))
        if strategy.name == fail:
            raise RuntimeError("boom")
        return real(strategy, seed, budget, data, reporter, tasks, *args, **kwargs)

    monkeypatch.setattr(experiment, "run_one", fake)
    return calls


def test_runs_and_table(first, toy):
    result = first[0]
    assert result.tasks == TASKS
    assert [r.strategy for r in result.runs] == [*STRATS, BASELINE]  # the three baselines merged into one
    assert all(r.status == "done" and r.seed == 0 for r in result.runs)
    base = result.runs[-1]
    assert set(base.test) == set(TASKS) and base.metric == {"polarity": "macro_f1", "score": "pearson",
                                                          "things": "f1"}
    for r in result.runs[:-1]:
        assert set(r.test) == set(TASKS) and r.step_s > 0 and r.samples_per_s > 0
    assert {row.strategy for row in result.table} == {*STRATS, BASELINE}
    assert result.table[-1].strategy == BASELINE and result.table[-1].delta_m is None
    assert all(row.delta_m is not None for row in result.table[:-1])
    assert result.best in STRATS and result.best == result.table[0].strategy and result.beats_equal
    assert result.config == asdict(_cfg(toy)) and result.budget["steps"] == STEPS
    assert result.budget["name"] == "custom" and result.budget["probe_every"] == 1


def test_conflict_and_affinity_from_the_equal_run(first):
    result = first[0]
    c = result.conflict
    assert c["run"] == "equal/s0"
    assert c["steps"] == list(range(1, STEPS + 1))  # custom budget: a probe every max(1, 6 // 6) steps
    assert set(c["pairs"]) == {"polarity|score", "polarity|things", "score|things"}
    assert all(len(v) == STEPS and all(-1.0001 <= x <= 1.0001 for x in v) for v in c["pairs"].values())
    assert len(c["fraction"]) == STEPS and all(f in (0, 1 / 3, 2 / 3, 1) for f in c["fraction"])
    assert set(c["by_run"]) == {"equal/s0", "pcgrad/s0", "famo/s0"}  # baselines have no pairs to probe
    a = result.affinity
    assert a["run"] == "equal/s0" and a["tasks"] == TASKS
    assert len(a["matrix"]) == 3 and all(len(row) == 3 for row in a["matrix"])
    assert set(a["groups"]) == {"2"}  # 3 groups of 3 tasks would be no grouping
    groups = a["groups"]["2"]["groups"]
    assert len(groups) == 2 and sorted(t for g in groups for t in g) == sorted(TASKS)


def test_tensorboard_progress_and_metric_names(first):
    result, reporter, _, tb = first
    assert result.tensorboard == str(tb)
    runs = {"equal_s0", "pcgrad_s0", "famo_s0", "single_task_polarity_s0", "single_task_score_s0",
            "single_task_things_s0"}
    assert {p.name for p in tb.iterdir()} == runs
    for sub in runs:
        assert [p.name for p in (tb / sub).iterdir() if p.name.startswith("events.out.tfevents.")]
    total = 6 * STEPS  # 3 strategies + 3 single-task baselines
    steps = [p[0] for p in reporter.progresses]
    assert steps == sorted(steps) and reporter.progresses[-1][:2] == (total, total)
    assert reporter.progresses[0] == (0, None, "preparing data")
    names = {m[1] for m in reporter.metrics}
    for run in ("equal/s0", "pcgrad/s0", "famo/s0"):
        assert {metric_name(run, n) for n in ("train_loss", "dev", "dev_average", "cos", "conflict")} <= names
    assert metric_name("equal/s0", "affinity") in names and metric_name("pcgrad/s0", "affinity") not in names
    for task in TASKS:
        assert metric_name(f"single_task/s0/{task}", "train_loss") in names
    assert all(":" in n for n in names)
    assert any("done, test polarity" in line for line in reporter.lines)


def test_second_lab_reads_the_baselines_from_the_cache(first, toy, monkeypatch):
    result, _, home, _ = first
    calls = _spy(monkeypatch)
    reporter = RecordingReporter()
    again = run_lab(_cfg(toy), home, reporter, tb_folder=toy[0] / "tb2")
    assert calls == [(s, 0, None) for s in STRATS]  # no single-task training
    assert not any("single_task" in (p[2] or "") for p in reporter.progresses)
    assert reporter.progresses[-1][:2] == (3 * STEPS, 3 * STEPS)
    assert again.runs[-1].strategy == BASELINE and again.runs[-1].test == result.runs[-1].test
    assert [row.strategy for row in again.table][-1] == BASELINE
    assert {p.name for p in (toy[0] / "tb2").iterdir()} == {"equal_s0", "pcgrad_s0", "famo_s0"}
    # a different budget is a different cache
    calls.clear()
    run_lab(LabConfig(**{**asdict(_cfg(toy, ["equal"])), "steps": 2}), home, RecordingReporter(),
            tb_folder=toy[0] / "tb3")
    assert sorted(t[0] for _, _, t in calls if t) == TASKS


def test_a_failing_strategy_is_recorded_and_the_lab_completes(first, toy, monkeypatch):
    home = first[2]
    calls = _spy(monkeypatch, fail="famo")
    reporter = RecordingReporter()
    result = run_lab(_cfg(toy, ["equal", "famo"]), home, reporter, tb_folder=toy[0] / "tb_fail")
    assert [c[0] for c in calls] == ["equal", "famo"]
    famo = next(r for r in result.runs if r.strategy == "famo")
    assert famo.status == "failed" and famo.error == "RuntimeError: boom" and famo.test == {}
    assert next(r for r in result.runs if r.strategy == "equal").status == "done"
    assert {row.strategy for row in result.table} == {"equal", BASELINE}
    assert result.best == "equal"
    assert any("famo" in line and "failed: RuntimeError: boom" in line for line in reporter.lines)
    assert {p.name for p in (toy[0] / "tb_fail").iterdir()} == {"equal_s0"}
    assert LabResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


@pytest.mark.parametrize("cancel_at", [1, 3 * STEPS + 2])  # in the first strategy; in the first baseline
def test_cancel_stops_the_lab(toy, tmp_path, cancel_at):
    home = tmp_path / "home"
    with pytest.raises(Cancelled):
        run_lab(_cfg(toy), home, RecordingReporter(cancel_at_step=cancel_at), tb_folder=tmp_path / "tb")
    assert not list((home / "lab" / "baselines").rglob("*.json"))  # a cancelled baseline is not cached


def test_cancel_is_honoured_at_the_next_step_not_the_next_logged_one(toy, tmp_path):
    """The loop checks only at logged steps (every steps/15); a lab run checks after every step."""
    home = tmp_path / "home"
    reporter = RecordingReporter(cancel_at_step=5)
    with pytest.raises(Cancelled):
        run_lab(LabConfig(**{**asdict(_cfg(toy, ["equal"])), "steps": 60}), home, reporter, tb_folder=tmp_path / "tb")
    assert reporter.last_step == 5  # logged steps are 4, 8, ...: the loop alone would have gone on to 8


def test_cancel_raised_inside_a_run_is_not_recorded_as_a_failure(toy, tmp_path, monkeypatch):
    def cancelled(*args, **kwargs):
        raise Cancelled()

    monkeypatch.setattr(experiment, "run_one", cancelled)
    reporter = RecordingReporter()
    with pytest.raises(Cancelled):
        run_lab(_cfg(toy), tmp_path / "home", reporter, tb_folder=tmp_path / "tb")
    assert not any("failed" in line for line in reporter.lines)


class _Ctx(RecordingReporter):
    def __init__(self, home: Path, params: dict):
        super().__init__()
        self.home, self.params, self.job_id, self.kind, self.sessions = home, params, 7, "lab", None


def test_lab_job(first, toy):
    home = first[2]
    lab = asdict(_cfg(toy, ["equal", "pcgrad"]))
    ctx = _Ctx(home, {"lab": lab})
    out = lab_job(ctx)
    json.dumps(out)  # the job's result is plain JSON
    result = LabResult.from_dict(out)
    assert [r.strategy for r in result.runs] == ["equal", "pcgrad", BASELINE]
    assert result.tensorboard == str(home.resolve() / "lab" / "tensorboard" / "job7")
    assert {p.name for p in Path(result.tensorboard).iterdir()} == {"equal_s0", "pcgrad_s0"}
    assert ctx.progresses[-1] == (1, 1, f"done: best {result.best}")
    with pytest.raises(ValueError, match="seeds"):
        lab_job(_Ctx(home, {"lab": {**lab, "seeds": 0}}))


def test_plan_leaves_out_cached_baselines(toy):
    from mtl_core.tasks import load_task_file

    data = LabData(load_task_file(toy[1]), {}, None, "fp")
    cfg = LabConfig(**{**asdict(_cfg(toy, ["equal", "pcgrad"])), "seeds": 2})
    runs = plan(cfg, data, {("score", 0): object()})
    assert [(s.name, seed, t) for s, seed, t in runs] == [
        ("equal", 0, None), ("equal", 1, None), ("pcgrad", 0, None), ("pcgrad", 1, None),
        (BASELINE, 0, ["polarity"]), (BASELINE, 0, ["things"]),
        (BASELINE, 1, ["polarity"]), (BASELINE, 1, ["score"]), (BASELINE, 1, ["things"])]


def test_baseline_cache_keys_and_broken_files(tmp_path, first):
    from mtl_core.lab.config import BUDGETS

    quick, default = BUDGETS["quick"], BUDGETS["default"]
    a = _BaselineCache(tmp_path, quick, "fp1")
    assert a.folder != _BaselineCache(tmp_path, default, "fp1").folder
    assert a.folder != _BaselineCache(tmp_path, quick, "fp2").folder
    assert a.folder == _BaselineCache(tmp_path, quick, "fp1").folder
    run = first[0].runs[0]
    assert a.get("t", 0) is None
    a.put("t", 0, run)
    assert a.get("t", 0) == run and a.get("t", 1) is None and a.get("u", 0) is None
    a._path("t", 0).write_text("{broken")
    assert a.get("t", 0) is None
    a._path("t", 0).write_text(json.dumps({"strategy": "x"}))  # missing fields
    assert a.get("t", 0) is None


# --- recipes ------------------------------------------------------------------------------------------------------


def test_save_recipe_and_with_recipe(tmp_path):
    from mtl_core.lab.recipe import load_recipe, save_recipe
    from mtl_core.train.recipe import recipe_path, with_recipe

    home = tmp_path / "ws"
    assert load_recipe(home) is None
    assert with_recipe(home, {"steps": 5}, {}) == ({"steps": 5}, {})
    save_recipe(home, "pcgrad")
    assert load_recipe(home) == {"source": "pcgrad", "train": {"batching": "all", "aggregator": "pcgrad"},
                                 "model": {}}
    train, model = with_recipe(home, {"steps": 10, "aggregator": "upgrad"}, {"max_length": 64})
    assert train == {"batching": "all", "aggregator": "upgrad", "steps": 10}  # explicit options win
    assert model == {"max_length": 64}
    save_recipe(home, "shared_4")
    assert with_recipe(home, {}, {"shared_layers": 2}) == ({"batching": "all"}, {"shared_layers": 2})
    assert with_recipe(home, {}, {})[1] == {"shared_layers": 4}
    assert not [p for p in recipe_path(home).parent.iterdir() if p.name.startswith(".recipe-")]
    with pytest.raises(ValueError, match="no strategy called 'nope'"):
        save_recipe(home, "nope")
    assert load_recipe(home)["source"] == "shared_4"  # unchanged by the refused one


def test_keep_general_strategy_is_a_recipe_for_your_own_tasks(tmp_path):
    from mtl_core.lab.recipe import save_recipe
    from mtl_core.train.loop import TrainConfig
    from mtl_core.train.recipe import with_recipe

    save_recipe(tmp_path, "keep_general")
    train, _ = with_recipe(tmp_path, {}, {})
    assert TrainConfig(**train).keep_general == 20.0 and train["sampling"] == "temperature"


@pytest.mark.parametrize("text", ["{not json", "[]", '{"train": [], "model": {}}', '{"train": {}, "model": 3}'])
def test_broken_recipe_names_the_file(tmp_path, text):
    from mtl_core.train.recipe import load_recipe, recipe_path, with_recipe

    home = tmp_path / "ws"
    path = recipe_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    with pytest.raises(ValueError, match="training recipe") as err:
        load_recipe(home)
    assert str(path) in str(err.value)
    with pytest.raises(ValueError, match="unreadable"):
        with_recipe(home, {}, {})


def test_write_recipe_refuses_configs_that_do_not_build(tmp_path):
    from mtl_core.train.recipe import recipe_path, write_recipe

    with pytest.raises(ValueError, match="sampling"):
        write_recipe(tmp_path, {"sampling": "random"}, {}, source="x")
    with pytest.raises(TypeError):
        write_recipe(tmp_path, {"no_such_field": 1}, {}, source="x")
    assert not recipe_path(tmp_path).exists()


def test_lab_train_job_validates_before_training(tmp_path):
    from mtl_core.lab.recipe import lab_train_job

    with pytest.raises(ValueError, match="no strategy called"):
        lab_train_job(_Ctx(tmp_path, {"strategy": "nope"}))
    with pytest.raises(ValueError, match="budget must be"):
        lab_train_job(_Ctx(tmp_path, {"strategy": "equal", "budget": "huge"}))


def test_lab_train_job_says_when_cancel_stopped_it(tmp_path, monkeypatch):
    """Cancel stops train() early and it registers the weights so far: the job's result must say so."""
    from types import SimpleNamespace

    from mtl_core.lab import recipe
    from mtl_core.train import pipeline

    def trained(**kw):
        assert kw["activate"] is False and kw["train_config"].keep_general == 20.0
        return SimpleNamespace(id="v0003"), {"test": {"average": 0.4}, "stopped": "cancelled", "best_step": 38}

    monkeypatch.setattr(pipeline, "train_new_version", trained)
    out = recipe.lab_train_job(_Ctx(tmp_path, {"strategy": "keep_general", "budget": "quick"}))
    assert (out["version"], out["stopped"], out["best_step"]) == ("v0003", "cancelled", 38)
