"""Jobs on several processes: "train_round" and "score_pool" with the param `nproc` > 1 run under torchrun.

The worker's handlers for those kinds are the two functions below. With `nproc` <= 1 they hand over to the
plain handlers (a `score_pool` with `resume: true` to the resumable one, which skips stored answers). With
more, the worker process starts `torchrun --standalone --nproc-per-node N -m mtl_core.ops.distributed_jobs
JOB_ID`, keeps the job's heartbeat and waits. In the ranks, rank 0 reports into the job's row (progress,
metrics, log; it polls Cancel) and writes `jobs/<id>.result.json`; the others report nothing.

Rank 0 exits non-zero whenever it did not finish (failed or cancelled), so torchrun stops every rank, as
it does when any rank dies: the job then fails (or ends cancelled) instead of hanging. A round registers
its version only at its very end, so a failed one leaves the registry, and the active model, as they were.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from mtl_core.ops.worker import JobContext, jobs_dir
from mtl_core.progress import Cancelled, JobRun
from mtl_core.store import get_job
from mtl_core.store.db import Sessions, open_store
from mtl_core.train import distributed
from mtl_core.workspace import workspace_dir

LAUNCH_PARAMS = ("nproc", "resume")  # how to run the job, not what it does: the handlers never see them
CANCELLED_EXIT = 3


def _launch_params(ctx: JobRun) -> tuple[int, bool]:
    """(nproc, resume) from the job's params, which keep only what the handler itself reads."""
    raw = ctx.params.get("nproc")
    nproc, resume = 1 if raw is None else int(raw), bool(ctx.params.get("resume"))
    distributed.check_nproc(nproc)
    ctx.params = {k: v for k, v in ctx.params.items() if k not in LAUNCH_PARAMS}
    return nproc, resume


def train_round_job(ctx: JobRun) -> dict:
    nproc, _ = _launch_params(ctx)
    if nproc == 1:
        from mtl_core.rounds.finetune import train_round_job as plain

        return plain(ctx)
    return _via_torchrun(ctx, nproc)


def score_pool_job(ctx: JobRun) -> dict:
    nproc, resume = _launch_params(ctx)
    if nproc == 1 and not resume:
        from mtl_core.review.jobs import score_pool_job as plain

        return plain(ctx)
    if nproc == 1:
        from mtl_core.review.sharded import score_pool_resumable

        return score_pool_resumable(ctx)
    return _via_torchrun(ctx, nproc)


def _result_file(home: Path, job_id: int) -> Path:
    return jobs_dir(home) / f"{job_id}.result.json"


def _via_torchrun(ctx: JobRun, nproc: int) -> dict:
    out = _result_file(ctx.home, ctx.job_id)
    out.unlink(missing_ok=True)
    ctx.log(f"running on {nproc} processes (torchrun); their output goes to jobs/{ctx.job_id}.log")
    env = {**os.environ, "MTL_STUDIO_HOME": str(ctx.home)}
    rc = distributed.run_torchrun(nproc, ["mtl_core.ops.distributed_jobs", str(ctx.job_id)], env=env)
    outcome = json.loads(out.read_text()) if out.exists() else {}
    out.unlink(missing_ok=True)
    if outcome.get("status") == "cancelled":
        raise Cancelled()
    if outcome.get("status") == "done":  # rank 0 finished and wrote everything: the job is done
        if rc != 0:
            ctx.log(f"a process exited abnormally after the job had finished (torchrun exit status {rc})")
        return outcome["result"]
    seen = f"; rank 0: {outcome['message'][:300]}" if outcome.get("message") else ""
    raise RuntimeError(f"a process of the job failed (torchrun exit status {rc}; jobs/{ctx.job_id}.log in the "
                       f"workspace has every rank's output){seen}")


@dataclass
class _FollowerContext(distributed.SilentReporter):
    """The job as ranks other than 0 see it: its params and workspace, reporting nothing."""

    job_id: int
    kind: str
    params: dict
    home: Path
    sessions: Sessions


def _ranked_handler(kind: str):
    if kind == "train_round":
        from mtl_core.rounds.distributed import train_round_ranked

        return train_round_ranked
    if kind == "score_pool":
        from mtl_core.review.sharded import score_pool_ranked

        return score_pool_ranked
    raise KeyError(f"job kind {kind!r} does not run on several processes")


def rank_main(job_id: int) -> int:
    """One rank of a job under torchrun; its exit status (0: done)."""
    distributed.init_from_env()
    home, main = workspace_dir(), distributed.is_main()
    try:
        with distributed.main_first():  # rank 0 migrates the store if it has to, the others then open it
            _, sessions = open_store(home)
        with sessions() as s:
            job = get_job(s, job_id)
            kind, params = job.kind, {k: v for k, v in (job.params or {}).items() if k not in LAUNCH_PARAMS}
        ctx = (JobContext if main else _FollowerContext)(job_id, kind, params, home, sessions)
        try:
            outcome = {"status": "done", "result": _ranked_handler(kind)(ctx)}
        except Cancelled:
            outcome = {"status": "cancelled"}
        except Exception as exc:
            if main:
                ctx.log(traceback.format_exc())
            outcome = {"status": "failed", "message": f"{type(exc).__name__}: {exc}"}
            traceback.print_exc()
        if main:
            _result_file(home, job_id).write_text(json.dumps(outcome, default=str))
        return {"done": 0, "cancelled": CANCELLED_EXIT if main else 0}.get(outcome["status"], 1)
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        print("usage: torchrun ... -m mtl_core.ops.distributed_jobs JOB_ID", file=sys.stderr)
        sys.exit(2)
    status = rank_main(int(sys.argv[1]))
    # Everything is written and committed: leave without the interpreter's teardown, where a native thread
    # of the process group sometimes aborts the process (SIGABRT) after the job has finished.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
