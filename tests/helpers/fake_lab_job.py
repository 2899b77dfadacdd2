"""A fast stand-in for the worker's "lab" job (loaded through MTL_STUDIO_JOB_MODULES by
tests/app/test_browser_lab.py): a few steps with progress, dev and conflict metrics, then a schema-correct lab
result (tests/helpers/lab_jobs.py: pcgrad wins).

`MTL_TEST_LAB_GATE`, when set, is a file path the job waits for after its steps (still cancellable), so a test
can reload and navigate while the lab runs, however slow the machine; it goes on after 120 s regardless.
"""

import os
import time
from pathlib import Path

from mtl_core.lab.results import metric_name
from mtl_core.ops.worker import handler
from tests.helpers.lab_jobs import TASKS, all_runs, lab_result

STEPS = 4


@handler("lab")
def fake_lab(ctx):
    for step in range(1, STEPS + 1):
        ctx.check_cancelled()
        ctx.progress(step, STEPS + 1, f"run 1/8: equal, seed 0 · step {step}/{STEPS}")
        for task in TASKS:
            ctx.metric(step, metric_name("equal/s0", "dev"), 0.5 + step / 100, task=task)
        ctx.metric(step, metric_name("equal/s0", "conflict"), 0.25)
        time.sleep(0.3)
    gate = os.environ.get("MTL_TEST_LAB_GATE")
    deadline = time.time() + 120
    while gate and not Path(gate).exists() and time.time() < deadline:
        ctx.check_cancelled()
        time.sleep(0.2)
    ctx.progress(STEPS + 1, STEPS + 1, "done: best pcgrad")
    return lab_result(all_runs())
