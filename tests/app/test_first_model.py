"""The first run: with no model the app starts training one in the background (app/shared/bootstrap_service.py),
once, and the Predict page follows it live (app/predict/bootstrap_view.py); no page breaks meanwhile."""

from __future__ import annotations

import os
import threading

import pytest
from streamlit.testing.v1 import AppTest

from app.shared import bootstrap_service as boot
from mtl_core.ops import worker
from mtl_core.store import add_job_metric, create_job, finish_job, list_jobs, start_job, update_job_progress
from mtl_core.store.db import open_store
from mtl_core.train.bootstrap import DEFAULT_NOTE, JOB_KIND, PHASE_METRIC, QUICK_NOTE
from tests.helpers import ROOT
from tests.helpers.jobs import wait_for_job
from tests.helpers.rounds import frame
from tests.helpers.workspace import register_copy

PAGES = ["app_pages/review.py", "app_pages/train.py", "app_pages/models.py", "app_pages/data.py"]


@pytest.fixture
def store(empty_workspace):
    engine, sessions = open_store(empty_workspace)
    yield sessions
    engine.dispose()


@pytest.fixture
def launches(monkeypatch) -> list[str]:
    """worker.launch without a worker process: the queued job row only; records each call."""
    calls: list[str] = []

    def fake(kind, params, home=None, sessions=None):
        calls.append(kind)
        with sessions() as s:
            if list_jobs(s, kind=kind, status="queued") or list_jobs(s, kind=kind, status="running"):
                raise worker.JobBusy(kind)
            return create_job(s, kind, params).id

    monkeypatch.setattr(worker, "launch", fake)
    return calls


@pytest.fixture
def auto_on(monkeypatch):
    monkeypatch.setenv(boot.AUTO_ENV, "1")


def _job(sessions, status: str = "running", message: str = "quick model: step 120/300 · about 3m 20s left") -> int:
    with sessions() as s:
        job_id = create_job(s, JOB_KIND, {}).id
        start_job(s, job_id)
        update_job_progress(s, job_id, 8000, 80000, message)
        for step in (50, 100):
            add_job_metric(s, job_id, step, "train_loss", 1.0 / step, task="sentiment")
        add_job_metric(s, job_id, 100, "dev", 0.7, task="sentiment")  # a single point: drawn as a marker
        add_job_metric(s, job_id, 300, PHASE_METRIC, 2.0)
        if status != "running":
            finish_job(s, job_id, status=status, message="RuntimeError: out of memory")
    return job_id


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()


# --- the service ---------------------------------------------------------------------------------------------


def test_auto_start_off_by_env_launches_nothing(store, launches):
    assert os.environ[boot.AUTO_ENV] == "0"  # tests/conftest.py: no test trains the real first model by accident
    assert boot.ensure_training(store) is None and launches == []


def test_launched_once_then_found_again(store, launches, auto_on):
    first = boot.ensure_training(store)
    again = [boot.ensure_training(store) for _ in range(3)]
    assert first.status == "queued" and {j.id for j in again} == {first.id} and launches == [JOB_KIND]


def test_sessions_opening_together_start_one_job(store, launches, auto_on):
    ids: list[int] = []
    threads = [threading.Thread(target=lambda: ids.append(boot.ensure_training(store).id)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1 and launches == [JOB_KIND]


def test_a_job_another_process_started_is_shown(store, monkeypatch, auto_on):
    other: list[int] = []

    def busy(kind, params, home=None, sessions=None):  # another server process launched it a moment ago
        other.append(_job(sessions))
        raise worker.JobBusy(kind)

    monkeypatch.setattr(worker, "launch", busy)
    assert boot.ensure_training(store).id == other[0]


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_a_stopped_job_is_not_relaunched_on_its_own(store, launches, auto_on, status):
    old = _job(store, status)
    assert boot.ensure_training(store).id == old and launches == []
    new = boot.start(store)  # the Retry button
    assert new.id != old and new.status == "queued" and launches == [JOB_KIND]


def test_a_workspace_with_a_model_starts_nothing(store, launches, auto_on, empty_workspace, tiny_checkpoint):
    register_copy(empty_workspace, tiny_checkpoint)
    assert boot.ensure_training(store) is None and launches == []


def test_the_real_worker_runs_the_job_once(store, auto_on, monkeypatch):
    monkeypatch.setenv("MTL_STUDIO_JOB_MODULES", "tests.helpers.bootstrap_jobs")  # a fast fake handler
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    job = boot.ensure_training(store)
    assert boot.ensure_training(store).id == job.id  # while it runs
    done = wait_for_job(store, job.id, lambda j: j.status in ("done", "failed", "cancelled"))
    assert done.status == "done" and done.result == {"fake": True}
    with store() as s:
        assert len(list_jobs(s, kind=JOB_KIND)) == 1
    assert list(boot.curves(store, job.id)["name"].unique()) == ["train_loss"]


# --- the Predict page ----------------------------------------------------------------------------------------


def test_no_model_and_a_running_job_shows_progress_and_curves(store, monkeypatch, auto_on):
    _job(store)
    monkeypatch.setattr(worker, "launch", lambda *a, **k: pytest.fail("launched a second job"))
    at = _app()
    assert not at.exception
    text = at.get("progress")[0].proto.text.replace("\\", "")  # md_literal escapes Markdown
    assert "quick model: step 120/300 · about 3m 20s left · 10 % done" in text
    charts = [c.proto.spec for c in at.get("plotly_chart")]
    assert len(charts) == 2 and all('"mode":"lines+markers"' in c.replace(" ", "") for c in charts)
    assert "default model" in charts[0]  # where the second phase starts, marked on the curves
    assert at.button(key="bootstrap_cancel")
    assert not at.text_area  # no prediction UI without a model


def test_the_cancel_button_asks_the_worker_to_stop(store, empty_workspace):
    job_id = _job(store)
    at = _app()
    at.button(key="bootstrap_cancel").click().run()
    assert not at.exception and worker.cancel_flag(empty_workspace, job_id).exists()


def test_no_model_and_a_failed_job_shows_the_error_and_retry(store, launches, auto_on):
    _job(store, "failed")
    at = _app()
    assert not at.exception and launches == []
    assert any("failed" in e.value and "out of memory" in e.value for e in at.error)
    at.button(key="bootstrap_retry").click().run()
    assert not at.exception and launches == [JOB_KIND]
    assert "starting" in at.get("progress")[0].proto.text  # the new, queued job


def test_first_visit_starts_training_once(store, launches, auto_on):
    at = _app()
    assert not at.exception and at.get("progress") and launches == [JOB_KIND]
    at.run()
    assert launches == [JOB_KIND]


def test_auto_start_off_offers_a_start_button(store, launches):
    at = _app()
    assert launches == [] and any("MTL_STUDIO_AUTO_TRAIN" in i.value for i in at.info)
    at.button(key="bootstrap_start").click().run()
    assert launches == [JOB_KIND] and at.get("progress")


def test_the_quick_model_takes_over_and_the_sidebar_follows_the_default_one(store, empty_workspace, tiny_checkpoint):
    _job(store, message="default model: step 400/2000 · about 3m 20s left")
    at = _app()
    assert at.get("progress") and not at.text_area
    register_copy(empty_workspace, tiny_checkpoint, note=QUICK_NOTE)  # the job activated its quick model
    at.run()
    assert not at.exception and at.text_area(key="predict_text")
    assert any(c.value.replace("\\", "") == "default model training: 10 % · about 3m 20s left"
               for c in at.sidebar.caption)


# --- the other pages -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("training", [True, False])
def test_other_pages_work_without_a_model(store, page, training):
    if training:
        _job(store)
    at = _app()
    at.switch_page(page).run()
    assert not at.exception


def test_models_page_lists_the_quick_and_the_default_model(store, empty_workspace, tiny_checkpoint):
    register_copy(empty_workspace, tiny_checkpoint, note=QUICK_NOTE)  # as the job registers them
    register_copy(empty_workspace, tiny_checkpoint, note=DEFAULT_NOTE, activate=False)
    at = _app()
    at.switch_page("app_pages/models.py").run()
    table = frame(at, "version", "note")
    assert table["note"].tolist() == [DEFAULT_NOTE, QUICK_NOTE] and table["status"].tolist() == ["", "active"]
