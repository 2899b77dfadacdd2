"""Background jobs in a separate process: `python -m mtl_core.worker JOB_ID`.

The app calls `launch(kind, params)`; the worker runs the registered handler, writes progress, logs and
metrics to the store, and a heartbeat thread keeps `heartbeat_at` fresh. A worker that dies leaves a job
that `mark_stale_jobs_failed` turns into "failed" on the next look. Cancelling = a flag file the handler
polls through `JobContext.check_cancelled()`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .registry import workspace_dir
from .store import (
    add_job_metric,
    append_job_log,
    create_job,
    database_url,
    finish_job,
    get_job,
    init_db,
    list_jobs,
    mark_stale_jobs_failed,
    session_factory,
    start_job,
    update_job_progress,
)

HEARTBEAT_S = 5.0
STALE_AFTER_S = 60.0  # no heartbeat for this long (or a dead pid) -> failed
HANDLERS: dict[str, Callable[[JobContext], dict]] = {}


class JobCancelled(Exception):
    """Raised inside a handler when the user pressed Cancel."""


class JobBusy(RuntimeError):
    """Another job of the same kind is still running (one round at a time)."""


def handler(kind: str):
    """Register `fn(ctx) -> result dict` as the code that runs jobs of `kind`."""

    def wrap(fn):
        HANDLERS[kind] = fn
        return fn

    return wrap


def jobs_dir(home: str | Path | None = None) -> Path:
    path = workspace_dir(home) / "jobs"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class JobContext:
    job_id: int
    kind: str
    params: dict
    home: Path
    sessions: Callable  # sessionmaker

    def progress(self, step: int, total: int | None = None, message: str | None = None) -> None:
        with self.sessions() as s:
            update_job_progress(s, self.job_id, step, total=total, message=message)

    def log(self, line: str) -> None:
        with self.sessions() as s:
            append_job_log(s, self.job_id, line)

    def metric(self, step: int, name: str, value: float, task: str | None = None) -> None:
        with self.sessions() as s:
            add_job_metric(s, self.job_id, step, name, float(value), task=task)

    def check_cancelled(self) -> None:
        if cancel_flag(self.home, self.job_id).exists():
            raise JobCancelled()


def cancel_flag(home: str | Path, job_id: int) -> Path:
    return jobs_dir(home) / f"{job_id}.cancel"


def request_cancel(job_id: int, home: str | Path | None = None) -> None:
    cancel_flag(workspace_dir(home), job_id).touch()


def open_store(home: str | Path | None = None):
    """(engine, sessionmaker) for the workspace's database, migrated to the latest schema."""
    engine = init_db(database_url(workspace_dir(home)))
    return engine, session_factory(engine)


def launch(kind: str, params: dict, home: str | Path | None = None, sessions=None) -> int:
    """Create the job row and start its worker process, detached from the caller (survives page reloads)."""
    if kind not in HANDLERS:
        _import_handlers()
    if kind not in HANDLERS:
        raise KeyError(f"no handler for job kind {kind!r}")
    home = workspace_dir(home)
    sessions = sessions or open_store(home)[1]
    with sessions() as s:
        mark_stale_jobs_failed(s, STALE_AFTER_S)
        if list_jobs(s, kind=kind, status="running") or list_jobs(s, kind=kind, status="queued"):
            raise JobBusy(f"a {kind} job is already running: wait for it or cancel it")
        job_id = create_job(s, kind, params=params).id
    env = {**os.environ, "MTL_STUDIO_HOME": str(home)}
    with open(jobs_dir(home) / f"{job_id}.log", "ab") as log:  # the child keeps its own handle
        subprocess.Popen([sys.executable, "-m", "mtl_core.worker", str(job_id)], stdout=log,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    return job_id


def _heartbeat(ctx: JobContext, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        try:
            with ctx.sessions() as s:
                job = get_job(s, ctx.job_id)
                update_job_progress(s, ctx.job_id, job.step or 0)
        except Exception:  # a missed beat is not worth killing the job for
            pass


def run_job(job_id: int, home: str | Path | None = None) -> str:
    """Run one job to its end in this process; returns the final status."""
    _import_handlers()
    home = workspace_dir(home)
    _, sessions = open_store(home)
    with sessions() as s:
        job = start_job(s, job_id, pid=os.getpid())
        ctx = JobContext(job_id, job.kind, dict(job.params or {}), home, sessions)
    stop = threading.Event()
    threading.Thread(target=_heartbeat, args=(ctx, stop), daemon=True).start()
    try:
        result = HANDLERS[ctx.kind](ctx)
        status, message = "done", "finished"
    except JobCancelled:
        result, status, message = {}, "cancelled", "cancelled by the user"
    except Exception as exc:
        ctx.log(traceback.format_exc())
        result, status, message = {}, "failed", f"{type(exc).__name__}: {exc}"
    finally:
        stop.set()
    with sessions() as s:
        finish_job(s, job_id, status=status, result=result, message=message)
    return status


def _import_handlers() -> None:
    """Modules that register handlers; imported lazily so the worker stays light to start.
    `MTL_STUDIO_JOB_MODULES` (comma-separated) adds more, e.g. a plugin's or a test's."""
    import importlib

    extra = [m for m in os.environ.get("MTL_STUDIO_JOB_MODULES", "").split(",") if m]
    for module in ("mtl_core.review_jobs", "mtl_core.finetune", *extra):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m mtl_core.worker JOB_ID", file=sys.stderr)
        return 2
    return 0 if run_job(int(argv[0])) in ("done", "cancelled") else 1


if __name__ == "__main__":
    # run through the imported module, not __main__: handler modules register into *its* HANDLERS
    from mtl_core import worker as _worker

    sys.exit(_worker.main())
