"""Predict page services: the `batch_predict` worker job for files too big for the page.

Plain functions over a sessionmaker (no widgets), so tests call them directly.
"""

from __future__ import annotations

from pathlib import Path

from app.review.pool_service import JobView, job_view
from mtl_core.ops import worker
from mtl_core.serve.batch import JOB_KIND, result_path, stage_upload
from mtl_core.store.db import Sessions

__all__ = ["JobView", "job_view", "result_bytes", "result_path", "start_batch_job"]


def start_batch_job(sessions: Sessions, home: str, name: str, data: bytes, column: str, version: str | None,
                    id_column: str | None = None) -> int:
    """Stage the upload in the workspace and launch the worker; raises worker.JobBusy while one runs.
    `id_column`: a column kept with each row's predictions."""
    staged = stage_upload(Path(home), name, data)
    params = {"input": staged, "name": name, "column": column, "id_column": id_column, "model_version": version}
    try:
        return worker.launch(JOB_KIND, params, home, sessions)
    except Exception:
        (Path(home) / staged).unlink(missing_ok=True)  # no job will ever read it
        raise


def result_bytes(home: str, job_id: int, fmt: str) -> bytes:
    """A finished job's predictions.csv / predictions.jsonl (read when the download is clicked)."""
    return result_path(Path(home), job_id, fmt).read_bytes()
