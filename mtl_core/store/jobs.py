"""Background-job records: progress, logs, live metrics, and detection of jobs whose worker died."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mtl_core.store.db import retry_locked
from mtl_core.store.limits import check_string, free_text
from mtl_core.store.models import JOB_STATUSES, Job, JobMetric, utcnow

MAX_LOG_CHARS = 200_000  # a chatty run must not grow one row without bound; keep the tail
FINAL_STATUSES = ("done", "failed", "cancelled")


def _job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise KeyError(f"no job with id {job_id}")
    return job


@retry_locked
def create_job(
    session: Session, kind: str, params: dict[str, Any] | None = None, total: int | None = None
) -> Job:
    """A new job in status 'queued'."""
    job = Job(
        kind=check_string("kind", kind, Job.kind, nonempty=True),
        status="queued",
        progress=0.0,
        total=total,
        params=params or {},
        log="",
        created_at=utcnow(),
    )
    session.add(job)
    session.flush()
    return job


@retry_locked
def start_job(session: Session, job_id: int, pid: int | None = None) -> Job:
    """Mark a job running in process `pid` (default: this one)."""
    job = _job(session, job_id)
    now = utcnow()
    job.status, job.pid, job.started_at, job.heartbeat_at = "running", pid or os.getpid(), now, now
    return job


@retry_locked
def update_job_progress(
    session: Session, job_id: int, step: int, total: int | None = None, message: str | None = None
) -> Job:
    """Record progress; doubles as the worker's heartbeat."""
    job = _job(session, job_id)
    job.step = step
    if total is not None:
        job.total = total
    if job.total:
        job.progress = min(1.0, max(0.0, step / job.total))
    if message is not None:
        job.message = free_text("message", message)
    job.heartbeat_at = utcnow()
    return job


@retry_locked
def append_job_log(session: Session, job_id: int, line: str) -> None:
    job = _job(session, job_id)
    log = (job.log or "") + free_text("line", line).rstrip("\n") + "\n"
    job.log = log[-MAX_LOG_CHARS:]
    job.heartbeat_at = utcnow()


@retry_locked
def add_job_metric(
    session: Session, job_id: int, step: int, name: str, value: float, task: str | None = None
) -> None:
    """One point of a live curve, e.g. (step 120, task 'sentiment', 'val_loss', 0.41)."""
    check_string("name", name, JobMetric.name)
    check_string("task", task, JobMetric.task, optional=True)
    session.add(JobMetric(job_id=job_id, step=step, task=task, name=name, value=float(value)))


def job_metrics(session: Session, job_id: int) -> list[JobMetric]:
    query = select(JobMetric).where(JobMetric.job_id == job_id).order_by(JobMetric.step, JobMetric.id)
    return list(session.scalars(query))


@retry_locked
def finish_job(
    session: Session,
    job_id: int,
    status: str = "done",
    result: dict[str, Any] | None = None,
    message: str | None = None,
) -> Job:
    """Close a job as done, failed or cancelled."""
    if status not in FINAL_STATUSES:
        raise ValueError(f"status must be one of {FINAL_STATUSES}, got {status!r}")
    job = _job(session, job_id)
    job.status, job.finished_at = status, utcnow()
    if status == "done":
        job.progress = 1.0
    if result is not None:
        job.result = result
    if message is not None:
        job.message = free_text("message", message)
    return job


def get_job(session: Session, job_id: int) -> Job | None:
    return session.get(Job, job_id)


def list_jobs(
    session: Session, kind: str | None = None, status: str | None = None, limit: int = 50
) -> list[Job]:
    """Newest first."""
    if status is not None and status not in JOB_STATUSES:
        raise ValueError(f"status must be one of {JOB_STATUSES}, got {status!r}")
    query = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(Job.kind == kind)
    if status is not None:
        query = query.where(Job.status == status)
    return list(session.scalars(query))


def current_job(session: Session, kind: str, heartbeat_timeout_s: float) -> Job | None:
    """The running (or queued) job of `kind` if any, else its newest of any status; stale ones are failed first."""
    mark_stale_jobs_failed(session, heartbeat_timeout_s)
    jobs = list_jobs(session, kind=kind, limit=20)
    return next((j for j in jobs if j.status in ("queued", "running")), jobs[0] if jobs else None)


def job_ordinal(session: Session, job: Job) -> int:
    """1 for the first job of its kind, 2 for the second, ... (ids are shared by every kind of job)."""
    query = select(func.count()).select_from(Job).where(Job.kind == job.kind, Job.id <= job.id)
    return int(session.scalar(query) or 0)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        # The state letter follows the parenthesised command name, which may itself hold spaces.
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _stale_reason(job: Job, cutoff: Any) -> str | None:
    if job.pid is not None and not pid_alive(job.pid):
        return f"worker process {job.pid} is gone"
    last = job.heartbeat_at or job.started_at or job.created_at
    if last < cutoff:
        return f"no heartbeat since {last.isoformat(timespec='seconds')} UTC"
    return None


@retry_locked
def mark_stale_jobs_failed(session: Session, heartbeat_timeout_s: float) -> list[int]:
    """Fail running jobs whose worker died or stopped beating; returns their ids.

    The pid check only means something on the worker's host, hence the heartbeat as well.
    """
    cutoff = utcnow() - timedelta(seconds=heartbeat_timeout_s)
    failed = []
    for job in session.scalars(select(Job).where(Job.status == "running")):
        why = _stale_reason(job, cutoff)
        if why is not None:
            job.status, job.finished_at = "failed", utcnow()
            job.message = f"marked failed: {why}"
            failed.append(job.id)
    return failed
