"""Fixtures of the app tests: a fresh Streamlit resource cache per test, and a served app in Chromium."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import streamlit as st


@pytest.fixture(autouse=True)
def _fresh_resource_cache():
    """AppTest runs share the process: drop cached models/stores so each test sees its own workspace."""
    yield
    st.cache_resource.clear()


@dataclass
class ServedApp:
    port: int
    driver: Any  # selenium WebDriver (headless Chromium)
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def served_app(flow, workspace, tmp_path):
    """`streamlit run` on the test workspace plus a headless Chromium; both stopped afterwards. The server
    log is printed at teardown (pytest shows it only when the test failed)."""
    port = flow.free_port()
    log = tmp_path / "streamlit.log"
    proc = flow.start_app(workspace, port, log)
    driver = None
    try:
        flow.wait_healthy(port, proc)
        driver = flow.make_driver(tmp_path / "profile")
        yield ServedApp(port, driver, log)
    finally:
        print(log.read_text(errors="replace")[-4000:] if log.exists() else "(no server log)")
        if driver is not None:
            driver.quit()
        flow.stop_app(proc)
