"""Fine-tuning rounds for the pages: start/cancel/find jobs, read curves, promote/discard, send to review.

No st.* calls here (the views render); only plain functions over the workspace and its store.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timezone

import pandas as pd

from mtl_core.model.registry import Registry
from mtl_core.model.version_marks import discard_version, discarded_versions
from mtl_core.ops import worker
from mtl_core.rounds.finetune import RoundConfig
from mtl_core.rounds.join import joinable_tasks
from mtl_core.rounds.round_data import correction_counts
from mtl_core.store import (
    add_texts,
    get_job,
    job_metrics,
    job_ordinal,
    list_jobs,
    mark_stale_jobs_failed,
    upsert_queue_items,
)
from mtl_core.store import current_job as store_current_job
from mtl_core.store.db import Sessions
from mtl_core.store.models import Job
from mtl_core.tasks import TaskFileError
from mtl_core.workspace import workspace_dir

JOB_KIND = "train_round"
ACTIVE_STATUSES = ("queued", "running")


def home() -> str:
    return str(workspace_dir())


def launch(params: dict) -> int:
    """Start a round in the background worker (raises worker.JobBusy when one is running)."""
    return worker.launch(JOB_KIND, params, home())


def start_round(cfg: RoundConfig, base_version: str, sessions: Sessions, nproc: int = 1) -> int:
    """`nproc` > 1: the worker runs the round on that many processes, one per local GPU (docs/SCALING.md)."""
    params = {f.name: getattr(cfg, f.name) for f in fields(RoundConfig)}
    with sessions() as s:
        mark_stale_jobs_failed(s, worker.STALE_AFTER_S)
    return launch({**params, "base_version": base_version, **({"nproc": nproc} if nproc > 1 else {})})


def gpu_count() -> int:
    """Local CUDA devices: with more than one, the Train page offers to run a round on several."""
    import torch

    return torch.cuda.device_count()


def new_tasks(base_version: str) -> list[str]:
    """Workspace tasks the base has no head for: a round may join them (`RoundConfig.new_tasks`)."""
    try:
        return [t.name for t in joinable_tasks(home(), base_version)]
    except TaskFileError:  # a broken workspace task file is the Data page's to report; rounds still run
        return []


def counts(sessions: Sessions) -> dict[str, int]:
    with sessions() as s:
        return correction_counts(s)


def current_job(sessions: Sessions) -> Job | None:
    """The running (or queued) round if any, else the newest round of any status; stale ones get failed."""
    with sessions() as s:
        return store_current_job(s, JOB_KIND, worker.STALE_AFTER_S)


def round_number(sessions: Sessions, job: Job) -> int:
    """The round's own ordinal ("Round 1" is the first round, whatever other jobs took ids before it)."""
    with sessions() as s:
        return job_ordinal(s, job)


def refresh(sessions: Sessions, job_id: int) -> Job | None:
    with sessions() as s:
        return get_job(s, job_id)


def recent_jobs(sessions: Sessions, limit: int = 10) -> list[Job]:
    with sessions() as s:
        return list_jobs(s, kind=JOB_KIND, limit=limit)


def curves(sessions: Sessions, job_id: int) -> pd.DataFrame:
    """The job's metric points: step, task, name, value."""
    with sessions() as s:
        rows = [{"step": m.step, "task": m.task or "all", "name": m.name, "value": m.value}
                for m in job_metrics(s, job_id)]
    return pd.DataFrame(rows, columns=["step", "task", "name", "value"])


def version_state(version: str) -> str:
    """"active", "discarded", "inactive" or "missing" for a version id."""
    reg = Registry(home())
    try:
        reg.get(version)
    except KeyError:
        return "missing"
    if reg.active == version:
        return "active"
    return "discarded" if version in discarded_versions(home()) else "inactive"


def promote(version: str) -> None:
    """Make `version` the active model (predictors swap on the next rerun); clears a discard mark."""
    Registry(home()).activate(version)
    if version in discarded_versions(home()):
        discard_version(version, home(), discarded=False)


def discard(version: str) -> None:
    discard_version(version, home())


def send_to_review(sessions: Sessions, rows: list[dict], version: str, base: str) -> int:
    """Queue examples (fixed/broken rows of a comparison) for review with reason "version_vs_version"."""
    items = []
    with sessions() as s:
        for row in rows:
            source = f"dataset:{row['task']}" if row.get("split") == "test" else "corrections"
            (text_id,) = add_texts(s, [row["text"]], source=source,
                                   dataset_split="test" if row.get("split") == "test" else None)
            detail = (f"{base} -> {version}: was {row['old']}, now {row['new']} (gold {row['gold']}, "
                      f"{row.get('split', '')})")
            items.append({"text_id": text_id, "task": row["task"], "reason": "version_vs_version",
                          "detail": detail, "score": 1.0, "model_version": version})
        return upsert_queue_items(s, items) if items else 0


def created(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M")
