"""Background worker lifecycle: start, progress, cancel, crash -> failed, dead worker -> failed."""

import os
import time

import pytest

from mtl_core.ops import worker
from mtl_core.store import get_job, job_metrics, mark_stale_jobs_failed
from mtl_core.store.db import open_store
from tests.helpers import ROOT
from tests.helpers.jobs import wait_for_job


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_STUDIO_HOME", str(tmp_path))
    monkeypatch.delenv("MTL_STUDIO_DATABASE_URL", raising=False)
    monkeypatch.setenv("MTL_STUDIO_JOB_MODULES", "tests.helpers.worker_jobs")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return tmp_path


def test_job_runs_in_another_process_and_reports(home):
    _, sessions = open_store(home)
    job_id = worker.launch("test_count", {"n": 4}, home, sessions)
    job = wait_for_job(sessions, job_id, lambda j: j.status in ("done", "failed"))
    assert job.status == "done" and job.result == {"counted": 4} and job.pid != os.getpid()
    with sessions() as s:
        assert [m.value for m in job_metrics(s, job_id)] == pytest.approx([1, 0.5, 1 / 3, 0.25])


def test_one_job_of_a_kind_at_a_time_and_cancel(home):
    _, sessions = open_store(home)
    job_id = worker.launch("test_count", {"n": 500, "sleep": 0.05}, home, sessions)
    wait_for_job(sessions, job_id, lambda j: j.status in ("running",))
    with pytest.raises(worker.JobBusy):
        worker.launch("test_count", {}, home, sessions)
    worker.request_cancel(job_id, home)
    assert wait_for_job(sessions, job_id, lambda j: j.status in ("cancelled", "done", "failed")).status == "cancelled"


def test_crash_marks_failed_with_log(home):
    _, sessions = open_store(home)
    job = wait_for_job(sessions, worker.launch("test_crash", {}, home, sessions), lambda j: j.status in ("done", "failed"))
    assert job.status == "failed" and "boom" in job.message and "RuntimeError" in (job.log or "")


def test_killed_worker_is_found_failed_on_next_look(home):
    _, sessions = open_store(home)
    job_id = worker.launch("test_die", {}, home, sessions)
    deadline = time.time() + 60
    while time.time() < deadline:
        with sessions() as s:
            job = get_job(s, job_id)
            if job.step == 1 and job.pid and not _alive(job.pid):
                break
        time.sleep(0.2)
    with sessions() as s:
        assert job_id in mark_stale_jobs_failed(s, worker.STALE_AFTER_S)
        assert get_job(s, job_id).status == "failed"
    # a fresh job may start again, and runs to the end
    next_id = worker.launch("test_count", {"n": 1}, home, sessions)
    assert next_id > job_id and wait_for_job(sessions, next_id, lambda j: j.status in ("done", "failed")).status == "done"


def _alive(pid):
    from mtl_core.store.jobs import pid_alive

    return pid_alive(pid)
