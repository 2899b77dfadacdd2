"""Background jobs in a separate process: `python -m mtl_core.ops.worker JOB_ID`.

The app calls `launch(kind, params)`; the worker runs the job's handler, writes progress, logs and
metrics to the store, and a heartbeat thread keeps `heartbeat_at` fresh. A worker that dies leaves a job
that `mark_stale_jobs_failed` turns into "failed" on the next look. Cancelling = a flag file the handler
polls through `JobContext.check_cancelled()` (the `mtl_core.progress.Reporter` protocol), which raises
`mtl_core.progress.Cancelled`.

Built-in handlers are named in BUILTIN_HANDLERS as "module:function" and imported on first use, so the
layers below (rounds, review) never import this module.
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

from mtl_core.progress import Cancelled, JobRun
from mtl_core.store import (
    add_job_metric,
    append_job_log,
    create_job,
    finish_job,
    get_job,
    list_jobs,
    mark_stale_jobs_failed,
    start_job,
    update_job_progress,
)
from mtl_core.store.db import Sessions, open_store
from mtl_core.workspace import workspace_dir, workspace_in_use

HEARTBEAT_S = 5.0
STALE_AFTER_S = 60.0  # no heartbeat for this long (or a dead pid) -> failed
HANDLERS: dict[str, Callable[[JobRun], dict]] = {}
BUILTIN_HANDLERS = {
    "batch_predict": "mtl_core.serve.batch:batch_predict_job",
    # params.nproc > 1: on several processes through torchrun (plain handlers otherwise): docs/SCALING.md
    "score_pool": "mtl_core.ops.distributed_jobs:score_pool_job",
    "train_round": "mtl_core.ops.distributed_jobs:train_round_job",
    "train_default": "mtl_core.train.bootstrap:train_default_job",  # first run: a quick model, then the default
    "lab": "mtl_core.lab.experiment:lab_job",  # a multi-task lab experiment (docs/LAB.md)
    "lab_train": "mtl_core.lab.recipe:lab_train_job",  # a lab strategy, trained for real (registered inactive)
}


class JobBusy(RuntimeError):
    """Another job of the same kind is still running (one round at a time)."""


def handler(kind: str):
    """Register `fn(ctx: JobRun) -> result dict` as the code that runs jobs of `kind` (plugins, tests)."""

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
    """The worker's `JobRun`: reports into the job's row of the store."""

    job_id: int
    kind: str
    params: dict
    home: Path
    sessions: Sessions

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
            raise Cancelled()


def cancel_flag(home: str | Path, job_id: int) -> Path:
    return jobs_dir(home) / f"{job_id}.cancel"


def request_cancel(job_id: int, home: str | Path | None = None) -> None:
    cancel_flag(workspace_dir(home), job_id).touch()


def launch(kind: str, params: dict, home: str | Path | None = None, sessions: Sessions | None = None) -> int:
    """Create the job row and start its worker process, detached from the caller (survives page reloads)."""
    if kind not in HANDLERS and kind not in BUILTIN_HANDLERS:
        _import_handlers()  # a plugin's kind; built-in handlers load in the worker process only
    if kind not in HANDLERS and kind not in BUILTIN_HANDLERS:
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
        subprocess.Popen([sys.executable, "-m", "mtl_core.ops.worker", str(job_id)], stdout=log,
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
    with workspace_in_use(home):  # `restore` refuses while this is held: it must not swap the workspace under us
        return _run(job_id, home)


def _run(job_id: int, home: Path) -> str:
    _, sessions = open_store(home)
    with sessions() as s:
        job = start_job(s, job_id, pid=os.getpid())
        ctx = JobContext(job_id, job.kind, dict(job.params or {}), home, sessions)
    stop = threading.Event()
    threading.Thread(target=_heartbeat, args=(ctx, stop), daemon=True).start()
    try:
        result = HANDLERS[ctx.kind](ctx)
        status, message = "done", "finished"
    except Cancelled:
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
    """Load the built-in handlers and the modules in `MTL_STUDIO_JOB_MODULES` (comma-separated: a plugin's
    or a test's, registering through `@handler`); imported lazily so the worker stays light to start."""
    import importlib

    for kind, target in BUILTIN_HANDLERS.items():
        if kind not in HANDLERS:
            module, _, name = target.partition(":")
            HANDLERS[kind] = getattr(importlib.import_module(module), name)
    for module in [m for m in os.environ.get("MTL_STUDIO_JOB_MODULES", "").split(",") if m]:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m mtl_core.ops.worker JOB_ID", file=sys.stderr)
        return 2
    return 0 if run_job(int(argv[0])) in ("done", "cancelled") else 1


if __name__ == "__main__":
    # run through the imported module, not __main__: handler modules register into *its* HANDLERS
    from mtl_core.ops import worker as _worker

    sys.exit(_worker.main())
