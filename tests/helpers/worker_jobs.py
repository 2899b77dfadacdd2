"""Job handlers used only by tests/ops/test_worker.py (loaded through MTL_STUDIO_JOB_MODULES)."""

import os
import time

from mtl_core.ops.worker import handler


@handler("test_count")
def count(ctx):
    n = int(ctx.params.get("n", 5))
    for step in range(1, n + 1):
        ctx.check_cancelled()
        ctx.progress(step, n, f"step {step}")
        ctx.metric(step, "loss", 1.0 / step, task="toy")
        time.sleep(float(ctx.params.get("sleep", 0.05)))
    return {"counted": n}


@handler("test_crash")
def crash(ctx):
    raise RuntimeError("boom")


@handler("test_die")
def die(ctx):
    ctx.progress(1, 10, "about to die")
    os._exit(9)  # like kill -9: no cleanup, no finish_job
