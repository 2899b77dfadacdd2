"""The multi-task lab for the page: start/cancel/find lab jobs, read their curves and results, act on a winner.

No st.* calls here (the view renders); plain functions over the workspace, its store and the worker.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone

import pandas as pd

from mtl_core.lab import recipe
from mtl_core.lab.config import STRATEGIES, LabConfig
from mtl_core.lab.results import LabResult, TableRow
from mtl_core.model.registry import Registry
from mtl_core.ops import worker
from mtl_core.store import current_job as store_current_job
from mtl_core.store import get_job, job_metrics, job_ordinal, list_jobs, mark_stale_jobs_failed
from mtl_core.store.db import Sessions
from mtl_core.store.models import Job
from mtl_core.tasks import DEFAULT_TASK_FILE, TaskFileError, load_task_file, parse_task_file
from mtl_core.workspace import workspace_dir

JOB_KIND = "lab"
TRAIN_KIND = "lab_train"  # "Train this config": one full training run of a strategy
ACTIVE_STATUSES = ("queued", "running")
POINT_COLUMNS = ["step", "run", "metric", "task", "value"]


def home() -> str:
    return str(workspace_dir())


def launch(kind: str, params: dict) -> int:
    """Start a job in the background worker (raises worker.JobBusy when one of that kind runs)."""
    return worker.launch(kind, params, home())


def start_lab(cfg: LabConfig, sessions: Sessions) -> int:
    with sessions() as s:
        mark_stale_jobs_failed(s, worker.STALE_AFTER_S)
    return launch(JOB_KIND, {"lab": asdict(cfg)})


def train_config(strategy: str, budget: str) -> int:
    """Train one model with `strategy`'s configuration (job "lab_train")."""
    return launch(TRAIN_KIND, {"strategy": strategy, "budget": budget})


def default_tasks() -> list[str]:
    """The active model's tasks (its checkpoint's task file), or the default task file's without a model."""
    reg = Registry(home())
    if reg.active is not None:
        try:
            path = reg.path_of(reg.active) / "tasks.json"
            return [t.name for t in parse_task_file(json.loads(path.read_text(encoding="utf-8"))).tasks]
        except (OSError, ValueError, TaskFileError):  # a broken version: the default tasks still make a lab
            pass
    return [t.name for t in load_task_file(DEFAULT_TASK_FILE).tasks]


def run_count(strategies: list[str], seeds: int, tasks: int) -> int:
    """Training runs of an experiment: every strategy and one single-task baseline per task, per seed."""
    return (len(strategies) + tasks) * seeds


def current_job(sessions: Sessions) -> Job | None:
    """The running (or queued) lab if any, else the newest lab of any status; stale ones get failed."""
    with sessions() as s:
        return store_current_job(s, JOB_KIND, worker.STALE_AFTER_S)


def recent_jobs(sessions: Sessions, kind: str = JOB_KIND, limit: int = 20) -> list[Job]:
    with sessions() as s:
        return list_jobs(s, kind=kind, limit=limit)


def refresh(sessions: Sessions, job_id: int) -> Job | None:
    with sessions() as s:
        return get_job(s, job_id)


def lab_number(sessions: Sessions, job: Job) -> int:
    with sessions() as s:
        return job_ordinal(s, job)


def points(sessions: Sessions, job_id: int) -> pd.DataFrame:
    """The job's metric points split by run: step, run ("<strategy>/s<seed>"), metric, task, value."""
    with sessions() as s:
        rows = []
        for m in job_metrics(s, job_id):
            run, _, metric = m.name.rpartition(":")
            rows.append({"step": m.step, "run": run or "all", "metric": metric, "task": m.task, "value": m.value})
    return pd.DataFrame(rows, columns=POINT_COLUMNS)


def result_of(job: Job) -> LabResult | None:
    """The job's LabResult (a failed lab may hold the runs that finished); None when there is none."""
    if not job.result:
        return None
    try:
        return LabResult.from_dict(job.result)
    except (TypeError, KeyError, ValueError):
        return None


def _cell(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "—"
    return f"{mean:.3f} ± {std or 0.0:.3f}"


def table_frame(result: LabResult) -> pd.DataFrame:
    """The strategy table for st.dataframe: the best strategy marked with a leading ★."""
    rows = []
    for r in result.table:
        row = {"strategy": ("★ " if r.strategy == result.best else "") + r.strategy, "family": r.family,
               "Δm% (± std)": "baseline" if r.delta_m is None else f"{r.delta_m:+.2f} ± {r.delta_m_std:.2f}"}
        row.update({t: _cell(r.mean.get(t), r.std.get(t)) for t in result.tasks})
        row.update({"wall s": round(r.wall_s, 1), "samples/s": round(r.samples_per_s, 1),
                    "cost per step ×equal": "—" if r.step_cost is None else f"{r.step_cost:.2f}×", "seeds": r.seeds})
        rows.append(row)
    return pd.DataFrame(rows)


def runs_frame(result: LabResult) -> pd.DataFrame:
    """Every run of the experiment: its test metrics, status and error (a failed lab shows what finished)."""
    rows = [{"run": r.key, "family": r.family, "status": r.status,
             **{t: r.test.get(t) for t in result.tasks}, "wall s": round(r.wall_s, 1), "error": r.error}
            for r in result.runs]
    return pd.DataFrame(rows)


def candidates(table: list[TableRow]) -> list[str]:
    """Strategies a recipe can come from (not the baselines, not lab-only per-task adapters), best first."""
    return [r.strategy for r in table if r.strategy in STRATEGIES and not STRATEGIES[r.strategy].adapters]


def save_recipe(strategy: str) -> None:
    recipe.save_recipe(home(), strategy)


def current_recipe() -> str | None:
    """What the workspace trains with by default, if a recipe was chosen (a broken file says so)."""
    try:
        found = recipe.load_recipe(home())
    except ValueError as exc:
        return str(exc)
    return (found["source"] or "a saved recipe") if found else None


def created(ts: datetime) -> str:
    return ts.replace(tzinfo=timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M")
