"""Review page services: pools of texts to score and the `score_pool` worker job.

Plain functions over a sessionmaker (no widgets), so tests call them directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from mtl_core.ops import worker
from mtl_core.store import add_texts, get_job, list_jobs
from mtl_core.store.db import Sessions
from mtl_core.store.models import TextRow

JOB_KIND = "score_pool"
ACTIVE_STATUSES = ("queued", "running")


def upload_pool_name(filename: str) -> str:
    """'My reviews (1).csv' -> 'upload:My_reviews_1_.csv' (a safe, stable source name)."""
    safe = re.sub(r"[^\w.-]+", "_", Path(filename).name).strip("_") or "file"
    return f"upload:{safe[:150]}"


def store_upload(sessions: Sessions, filename: str, texts: list[str]) -> tuple[str, int]:
    """Store an uploaded file's texts under source 'upload:<name>'; returns (pool name, distinct texts)."""
    pool = upload_pool_name(filename)
    with sessions() as s:
        ids = add_texts(s, texts, source=pool)
    return pool, len(set(ids))


def pool_size(sessions: Sessions, source: str) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(TextRow).where(TextRow.source == source)) or 0)


def start_scoring(sessions: Sessions, home: str, pool: str, model_version: str | None, limit: int,
                  previous_version: str | None = None) -> int:
    """Launch the `score_pool` worker; raises worker.JobBusy while another scoring job runs."""
    params: dict[str, Any] = {"pool": pool, "model_version": model_version, "limit": int(limit)}
    if previous_version:
        params["previous_version"] = previous_version
    return worker.launch(JOB_KIND, params, home, sessions)


@dataclass(frozen=True)
class JobView:
    id: int
    status: str
    step: int | None
    total: int | None
    progress: float
    message: str | None
    params: dict
    result: dict | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


def job_view(sessions: Sessions, job_id: int | None = None) -> JobView | None:
    """A snapshot of the given scoring job, or of the newest one."""
    with sessions() as s:
        if job_id is not None:
            job = get_job(s, job_id)
        else:
            jobs = list_jobs(s, kind=JOB_KIND, limit=1)
            job = jobs[0] if jobs else None
        if job is None:
            return None
        if job.status in ACTIVE_STATUSES:
            worker.mark_stale_jobs_failed(s, worker.STALE_AFTER_S)
            s.refresh(job)
        return JobView(job.id, job.status, job.step, job.total, job.progress or 0.0, job.message,
                       dict(job.params or {}), dict(job.result) if job.result else None)
