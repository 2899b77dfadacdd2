"""The first model of a workspace: start its training in the background worker once, find it again, read it.

`ensure_training` runs on every page run while no model is active (`start_if_needed`): it launches the "train_default"
job (mtl_core/train/bootstrap.py) when none is queued or running and none failed or was cancelled before;
those wait for the page's Retry button. `MTL_STUDIO_AUTO_TRAIN=0` turns the automatic start off (the tests
do). No st.* calls here.
"""

from __future__ import annotations

import contextlib
import os
import threading

import pandas as pd

from mtl_core.model.registry import Registry
from mtl_core.ops import worker
from mtl_core.store import get_job, job_metrics, list_jobs, mark_stale_jobs_failed
from mtl_core.store.db import Sessions
from mtl_core.store.models import Job
from mtl_core.train.bootstrap import JOB_KIND, PHASE_METRIC
from mtl_core.workspace import workspace_dir

AUTO_ENV = "MTL_STUDIO_AUTO_TRAIN"
ACTIVE_STATUSES = ("queued", "running")
STOPPED_STATUSES = ("failed", "cancelled")  # not relaunched on their own: the page offers Retry
# The sessions of one server are threads of one process: this lock makes their look-then-launch one step, so
# two tabs opened together start one job. (worker.launch refuses a second one of a kind as well, JobBusy.)
_LAUNCH_LOCK = threading.Lock()


def home() -> str:
    return str(workspace_dir())


def auto_start() -> bool:
    """Whether a workspace without a model starts training on its own (MTL_STUDIO_AUTO_TRAIN, on by default)."""
    return os.environ.get(AUTO_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def has_model() -> bool:
    return Registry(home()).active is not None


def latest_job(sessions: Sessions) -> Job | None:
    """The queued or running first-run job, else the newest one of any status (stale ones get failed first)."""
    with sessions() as s:
        mark_stale_jobs_failed(s, worker.STALE_AFTER_S)
        jobs = list_jobs(s, kind=JOB_KIND, limit=20)
    return next((j for j in jobs if j.status in ACTIVE_STATUSES), jobs[0] if jobs else None)


def ensure_training(sessions: Sessions) -> Job | None:
    """The first-run job to show while no model is active, launched here when needed; None when there is none
    to show (automatic start off and never started)."""
    with _LAUNCH_LOCK:
        job = latest_job(sessions)
        if job is not None and (job.status in ACTIVE_STATUSES or job.status in STOPPED_STATUSES):
            return job
        if not auto_start() or has_model():
            return job
        return _launch(sessions)


def start_if_needed(sessions: Sessions) -> None:
    """Every page run (streamlit_app.py): whatever page a first visit opens, the first model starts training.
    Cheap once a model exists (a registry read); a store error is left for the Predict page to report."""
    if has_model():
        return
    with contextlib.suppress(Exception):
        ensure_training(sessions)


def start(sessions: Sessions) -> Job | None:
    """Launch the first-run job now (the Start and Retry buttons); a running one is found again, not doubled."""
    with _LAUNCH_LOCK:
        job = latest_job(sessions)
        if job is not None and job.status in ACTIVE_STATUSES:
            return job
        return _launch(sessions)


def _launch(sessions: Sessions) -> Job | None:
    with contextlib.suppress(worker.JobBusy):  # another server process launched it a moment ago: show that one
        worker.launch(JOB_KIND, {}, home(), sessions)
    return latest_job(sessions)


def running_job(sessions: Sessions) -> Job | None:
    """The first-run job while it is queued or running (the Predict page's sidebar line), else None."""
    job = latest_job(sessions)
    return job if job is not None and job.status in ACTIVE_STATUSES else None


def refresh(sessions: Sessions, job_id: int) -> Job | None:
    with sessions() as s:
        return get_job(s, job_id)


def cancel(job_id: int) -> None:
    worker.request_cancel(job_id, home())


def time_left(job: Job) -> str | None:
    """The "about 12m 05s left" part of the job's progress message (the job measures its own pace), if any."""
    return next((part for part in (job.message or "").split(" · ") if part.endswith(" left")), None)


def curves(sessions: Sessions, job_id: int) -> pd.DataFrame:
    """The job's metric points: step, task, name, value (steps of the default model continue the quick one's)."""
    with sessions() as s:
        rows = [{"step": m.step, "task": m.task or "all", "name": m.name, "value": m.value}
                for m in job_metrics(s, job_id)]
    return pd.DataFrame(rows, columns=["step", "task", "name", "value"])


def phase_starts(points: pd.DataFrame) -> dict[int, str]:
    """{step: label} where the default model's training starts on the curves (empty before it starts)."""
    marks = points[points["name"] == PHASE_METRIC]
    return {int(step): "default model" for step in marks["step"]}
