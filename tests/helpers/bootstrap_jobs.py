"""A fast stand-in for the first-run job "train_default" (loaded through MTL_STUDIO_JOB_MODULES by the tests of
app/shared/bootstrap_service.py): a few steps with progress and metrics, no model trained."""

import os
import time

from mtl_core.ops.worker import handler


@handler("train_default")
def fake_train_default(ctx):
    steps = 6
    for step in range(1, steps + 1):
        ctx.check_cancelled()
        ctx.progress(step, steps, f"quick model: step {step}/{steps}")
        ctx.metric(step, "train_loss", 1.0 / step, task="toy")
        time.sleep(float(os.environ.get("MTL_TEST_FAKE_STEP_S", "0.3")))
    return {"fake": True}
