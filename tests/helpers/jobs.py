"""Waiting for a background job in tests."""

from __future__ import annotations

import time
from collections.abc import Callable

from mtl_core.store import get_job


def wait_for_job(sessions, job_id: int, ready: Callable, timeout: float = 60, poll: float = 0.2):
    """Poll the job's row until `ready(job)`; AssertionError naming its last state after `timeout` s."""
    deadline = time.time() + timeout
    job = None
    while time.time() < deadline:
        with sessions() as s:
            job = get_job(s, job_id)
        if ready(job):
            return job
        time.sleep(poll)
    state = f"{job.status} ({job.message})" if job is not None else "unknown"
    raise AssertionError(f"job {job_id} still {state} after {timeout} s")
