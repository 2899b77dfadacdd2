"""Job records: lifecycle, logs, metrics, stale-job detection."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from mtl_core.store import (
    add_job_metric,
    append_job_log,
    create_job,
    current_job,
    finish_job,
    get_job,
    job_metrics,
    list_jobs,
    mark_stale_jobs_failed,
    start_job,
    update_job_progress,
)
from mtl_core.store.jobs import pid_alive
from mtl_core.store.models import utcnow
from tests.helpers.store import fresh_session


@pytest.fixture
def session(tmp_path):
    yield from fresh_session(tmp_path)


def test_job_lifecycle(session):
    job = create_job(session, "train", {"epochs": 2}, total=10)
    assert (job.status, job.progress, job.params) == ("queued", 0.0, {"epochs": 2})
    start_job(session, job.id)
    update_job_progress(session, job.id, 4, message="epoch 1")
    append_job_log(session, job.id, "epoch 1 done")
    append_job_log(session, job.id, "epoch 2 done\n")
    add_job_metric(session, job.id, 4, "loss", 0.7, task="sentiment")
    add_job_metric(session, job.id, 8, "loss", 0.5, task="sentiment")
    seen = get_job(session, job.id)
    assert (seen.status, seen.progress, seen.step, seen.message) == ("running", 0.4, 4, "epoch 1")
    assert seen.log == "epoch 1 done\nepoch 2 done\n"
    assert [(m.step, m.value) for m in job_metrics(session, job.id)] == [(4, 0.7), (8, 0.5)]
    finish_job(session, job.id, result={"version": "v0004"})
    done = get_job(session, job.id)
    assert (done.status, done.progress, done.result) == ("done", 1.0, {"version": "v0004"})
    assert done.finished_at >= done.started_at
    with pytest.raises(ValueError):
        finish_job(session, job.id, status="running")
    with pytest.raises(KeyError):
        update_job_progress(session, 999, 1)


def test_list_jobs(session):
    first = create_job(session, "train")
    second = create_job(session, "score_pool")
    finish_job(session, first.id, status="cancelled")
    assert [j.id for j in list_jobs(session)] == [second.id, first.id]
    assert [j.id for j in list_jobs(session, kind="train")] == [first.id]
    assert [j.id for j in list_jobs(session, status="queued")] == [second.id]


def test_current_job_prefers_the_running_one_then_the_newest(session):
    assert current_job(session, "lab", 60) is None
    old = create_job(session, "lab")
    start_job(session, old.id, pid=subprocess.os.getpid())
    newer = create_job(session, "lab")
    finish_job(session, newer.id, status="failed")
    create_job(session, "train_round")  # another kind never counts
    assert current_job(session, "lab", 60).id == old.id  # running beats newer
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    get_job(session, old.id).pid = dead.pid  # its worker died: failed first, then the newest wins
    session.commit()
    assert current_job(session, "lab", 60).id == newer.id
    assert get_job(session, old.id).status == "failed"


def test_mark_stale_jobs_failed(session):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid is gone
    assert not pid_alive(dead.pid)
    assert pid_alive(subprocess.os.getpid())
    crashed = create_job(session, "train")
    start_job(session, crashed.id, pid=dead.pid)
    silent = create_job(session, "score_pool")
    start_job(session, silent.id)
    get_job(session, silent.id).heartbeat_at = utcnow() - timedelta(hours=1)
    session.commit()
    healthy = create_job(session, "train")
    start_job(session, healthy.id)
    waiting = create_job(session, "train")
    assert sorted(mark_stale_jobs_failed(session, heartbeat_timeout_s=600)) == [crashed.id, silent.id]
    assert get_job(session, crashed.id).status == "failed"
    assert f"worker process {dead.pid} is gone" in get_job(session, crashed.id).message
    assert "no heartbeat since" in get_job(session, silent.id).message
    assert get_job(session, healthy.id).status == "running"
    assert get_job(session, waiting.id).status == "queued"
    assert mark_stale_jobs_failed(session, heartbeat_timeout_s=600) == []
