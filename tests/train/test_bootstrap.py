"""The first-run job "train_default" (mtl_core/train/bootstrap.py) on toy tasks with a tiny encoder, recipes
shrunk to a few steps: quick model first and active at once, the default one only if it wins on dev, cancel."""

from __future__ import annotations

import os

import pytest

from mtl_core.model.registry import Registry
from mtl_core.ops import worker
from mtl_core.progress import Cancelled
from mtl_core.store.db import open_store
from mtl_core.train import bootstrap
from tests.helpers import ROOT
from tests.helpers.jobs import wait_for_job
from tests.helpers.reporting import RecordingReporter
from tests.helpers.toy import make_tiny_encoder_dir, write_toy_tasks
from tests.helpers.workspace import register_copy

QUICK_STEPS, DEFAULT_STEPS = 4, 6


@pytest.fixture(scope="module")
def params(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("toy")
    task_file, enc = write_toy_tasks(root, n=60), make_tiny_encoder_dir(root / "enc")
    return {"task_file": str(task_file), "model": {"encoder": str(enc), "max_length": 32},
            "train": {"freeze_layers": 0, "freeze_embeddings": False, "log_every": 2, "max_dev": 20},
            "quick": {"steps": QUICK_STEPS, "batch_size": 4, "eval_every": QUICK_STEPS},
            "default": {"steps": DEFAULT_STEPS, "batch_size": 8, "eval_every": 3}}


class FakeJob(RecordingReporter):
    """A JobRun in this process: records what it is told, notes the active model when each phase starts and
    cancels once a progress message matches `cancel_on`."""

    def __init__(self, home, params: dict, cancel_on: str | None = None):
        super().__init__()
        self.job_id, self.kind, self.params, self.home, self.sessions = 1, bootstrap.JOB_KIND, params, home, None
        self.cancel_on = cancel_on
        self.active_at_start: dict[str, str | None] = {}

    def progress(self, step, total=None, message=None):
        super().progress(step, total, message)
        self.active_at_start.setdefault((message or "").split(":")[0], Registry(self.home).active)

    def check_cancelled(self):
        if self.cancel_on and any(self.cancel_on in (m or "") for _, _, m in self.progresses):
            raise Cancelled()


def _scores(monkeypatch, quick: float, default: float) -> None:
    """Dev averages by registration order (v0001 is the quick model), instead of evaluating the tiny models."""
    monkeypatch.setattr(bootstrap, "dev_average", lambda home, v, *a, **k: quick if v == "v0001" else default)


def test_quick_model_first_then_the_default_one_when_it_wins(tmp_path, params, monkeypatch):
    _scores(monkeypatch, quick=0.5, default=0.7)
    job = FakeJob(tmp_path, params)
    result = bootstrap.train_default_job(job)
    reg = Registry(tmp_path)
    assert [(v.id, v.note) for v in reg.versions()] == [("v0001", bootstrap.QUICK_NOTE), ("v0002", bootstrap.DEFAULT_NOTE)]
    assert reg.active == "v0002" and result["active"] == "v0002" and "beats" in result["decision"]
    assert result["dev_average"] == {"v0001": 0.5, "v0002": 0.7} and job.lines[-1] == result["decision"]
    assert job.active_at_start["default model"] == "v0001"  # the quick model answered while phase 2 trained
    # one bar over both phases: never backwards, ends full, phase 2 weighted by its steps x batch size
    steps = [s for s, _, _ in job.progresses]
    totals = {t for _, t, _ in job.progresses}
    assert steps == sorted(steps) and totals == {steps[-1]}
    quick_end = next(s for s, _, m in job.progresses if m.startswith("quick model: v0001 registered"))
    assert quick_end == QUICK_STEPS * 4 + bootstrap.TAIL_UNITS
    messages = [m for _, _, m in job.progresses]
    assert any(m.startswith(f"quick model: step 2/{QUICK_STEPS} · ") for m in messages)
    assert any(m.startswith(f"default model: step 2/{DEFAULT_STEPS} · ") for m in messages)
    # the curves: phase 2's steps continue phase 1's, with a marker where it starts
    quick_steps = {s for s, n, _, _ in job.metrics if n == "train_loss" and s <= QUICK_STEPS}
    default_steps = {s for s, n, _, _ in job.metrics if n == "train_loss" and s > QUICK_STEPS}
    assert quick_steps == {2, 4} and default_steps == {QUICK_STEPS + 2, QUICK_STEPS + 4, QUICK_STEPS + 6}
    assert (QUICK_STEPS, bootstrap.PHASE_METRIC, 2.0, None) in job.metrics
    assert {s for s, n, _, _ in job.metrics if n == "dev_average"} == {QUICK_STEPS, QUICK_STEPS + 3, QUICK_STEPS + 6}


def test_default_model_that_loses_on_dev_stays_inactive(tmp_path, params, monkeypatch):
    _scores(monkeypatch, quick=0.7, default=0.7)  # a tie is no win
    result = bootstrap.train_default_job(FakeJob(tmp_path, params))
    assert Registry(tmp_path).active == "v0001" and len(Registry(tmp_path).versions()) == 2
    assert result["active"] == "v0001" and "stays active" in result["decision"]


def test_both_models_are_scored_on_the_same_dev_examples(tmp_path, params, monkeypatch):
    seen = []
    real = bootstrap.dev_average

    def spy(home, version, prepared, cap, device=None):
        seen.append((version, cap, {t: len(s["dev"]) for t, s in prepared.items()}))
        return real(home, version, prepared, cap, device)

    monkeypatch.setattr(bootstrap, "dev_average", spy)
    result = bootstrap.train_default_job(FakeJob(tmp_path, params))
    assert [v for v, _, _ in seen] == ["v0001", "v0002"] and seen[0][1:] == seen[1][1:] and seen[0][1] == 20
    scores = result["dev_average"]
    assert all(-1.0 <= s <= 1.0 for s in scores.values())  # a Pearson r (regression) is in the average
    assert result["active"] == ("v0002" if scores["v0002"] > scores["v0001"] else "v0001") == Registry(tmp_path).active


def test_a_workspace_with_a_model_trains_nothing(tmp_path, params, tiny_checkpoint):
    register_copy(tmp_path, tiny_checkpoint)
    job = FakeJob(tmp_path, params)
    result = bootstrap.train_default_job(job)
    assert result["skipped"].startswith("v0001 is already active") and len(Registry(tmp_path).versions()) == 1
    assert job.lines == [result["skipped"]] and not job.metrics


def test_cancel_in_phase_2_keeps_the_quick_model_active(tmp_path, params):
    job = FakeJob(tmp_path, params, cancel_on="default model: step 2/")
    with pytest.raises(Cancelled):
        bootstrap.train_default_job(job)
    reg = Registry(tmp_path)
    assert [v.id for v in reg.versions()] == ["v0001"] and reg.active == "v0001"
    assert not reg.orphans() and "default model: cancelled, nothing registered" in job.lines


def test_cancel_in_phase_1_registers_nothing(tmp_path, params):
    job = FakeJob(tmp_path, params, cancel_on="quick model: step 2/")
    with pytest.raises(Cancelled):
        bootstrap.train_default_job(job)
    assert Registry(tmp_path).versions() == [] and Registry(tmp_path).active is None


def test_another_version_activated_meanwhile_is_left_active(tmp_path, params, monkeypatch, tiny_checkpoint):
    _scores(monkeypatch, quick=0.5, default=0.9)
    job = FakeJob(tmp_path, params)
    original = job.progress

    def progress(step, total=None, message=None):  # someone promotes their own model during phase 2
        if (message or "").startswith("default model: step 2/"):
            register_copy(tmp_path, tiny_checkpoint, note="mine", activate=True)
        original(step, total, message)

    job.progress = progress
    result = bootstrap.train_default_job(job)
    assert Registry(tmp_path).active == "v0002" and result["default"] == "v0003"
    assert "registered inactive" in result["decision"]


def test_recipes_follow_the_quick_flag_and_the_defaults():
    quick, default = bootstrap.recipes({})
    assert (quick.steps, quick.batch_size, quick.sampling) == (300, 16, "round_robin")
    assert (default.steps, default.batch_size) == (2000, 32)


def test_the_worker_runs_it_as_a_builtin_job(tmp_path, params, monkeypatch):
    monkeypatch.setenv("MTL_STUDIO_HOME", str(tmp_path))
    monkeypatch.delenv("MTL_STUDIO_DATABASE_URL", raising=False)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    assert worker.BUILTIN_HANDLERS[bootstrap.JOB_KIND] == "mtl_core.train.bootstrap:train_default_job"
    engine, sessions = open_store(tmp_path)
    job = wait_for_job(sessions, worker.launch(bootstrap.JOB_KIND, params, tmp_path, sessions),
                       lambda j: j.status in ("done", "failed", "cancelled"), timeout=300)
    engine.dispose()
    assert job.status == "done", job.log
    assert job.progress == 1.0 and job.result["active"] == Registry(tmp_path).active
    assert [v.note for v in Registry(tmp_path).versions()] == [bootstrap.QUICK_NOTE, bootstrap.DEFAULT_NOTE]


def test_pace_counts_from_the_first_step_not_the_data_preparation():
    from mtl_core.train.bootstrap import Pace

    now = [100.0]  # 100 s of reading and tokenising before the first step: not in the estimate
    pace = Pace(clock=lambda: now[0])
    assert pace.time_left(16, 1000) is None  # the first step: no pace yet
    now[0] = 102.0
    assert pace.time_left(48, 1000) is None  # under 5 s of steps: too early to say
    now[0] = 110.0
    assert pace.time_left(176, 1000) == 10.0 / 160 * 824
