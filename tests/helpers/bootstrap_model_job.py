"""A fast stand-in for the first-run job "train_default" that leaves a model (loaded through
MTL_STUDIO_JOB_MODULES by tests/app/test_browser_first_model.py): a few steps with progress and "train_loss"
metrics, then a tiny random checkpoint registered as the quick model and activated, as the real job does.

`MTL_TEST_FAKE_STEP_S` sets the seconds per step (0.5). `MTL_TEST_BOOTSTRAP_GATE`, when set, is a file path the
job waits for after its steps (its last message shown meanwhile), so a test can look at the training panel for
as long as it needs on a slow machine; it goes on after `MTL_TEST_BOOTSTRAP_GATE_S` seconds (120) regardless.
"""

import os
import time
from pathlib import Path

from mtl_core.model.registry import Registry
from mtl_core.model.testing import make_tiny_checkpoint
from mtl_core.ops.worker import handler
from mtl_core.train.bootstrap import QUICK_NOTE


def _wait_for_gate(ctx) -> None:
    gate = os.environ.get("MTL_TEST_BOOTSTRAP_GATE")
    if not gate:
        return
    deadline = time.time() + float(os.environ.get("MTL_TEST_BOOTSTRAP_GATE_S", "120"))
    while not Path(gate).exists() and time.time() < deadline:
        ctx.check_cancelled()
        time.sleep(0.2)


@handler("train_default")
def fake_train_default_with_model(ctx):
    steps = 6
    pause = float(os.environ.get("MTL_TEST_FAKE_STEP_S", "0.5"))
    for step in range(1, steps + 1):
        ctx.check_cancelled()
        ctx.progress(step, steps + 1, f"quick model: step {step}/{steps}")
        ctx.metric(step, "train_loss", 1.0 / step, task="toy")
        time.sleep(pause)
    _wait_for_gate(ctx)
    ctx.check_cancelled()
    reg = Registry(ctx.home)
    info = reg.register(make_tiny_checkpoint(reg.staging_dir()), note=QUICK_NOTE, activate=True)
    ctx.progress(steps + 1, steps + 1, f"quick model: {info.id} registered")
    ctx.log(f"{info.id} ({QUICK_NOTE}) is active")
    return {"quick_version": info.id}
