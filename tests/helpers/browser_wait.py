"""Polling for a browser test: the Streamlit page re-renders under the driver, so a lookup may raise; look again."""

from __future__ import annotations

import time


def wait_for(find, timeout: float = 120, what: str = "the expected page"):
    """`find()`'s first truthy result within `timeout` seconds; TimeoutError naming `what` otherwise."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            found = find()
        except Exception:  # the page re-rendered under us: look again
            found = None
        if found:
            return found
        time.sleep(0.3)
    raise TimeoutError(f"{what}: not shown within {timeout:.0f} s")
