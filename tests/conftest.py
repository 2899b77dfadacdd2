"""Shared fixtures: a tiny random-weight checkpoint (built once) and workspaces that use it."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # plain `pytest` (not `python -m pytest`) does not add the repo root
    sys.path.insert(0, str(ROOT))

from tests.helpers.workspace import register_copy  # noqa: E402

# With no model the Predict page starts training the first one (app/shared/bootstrap_service.py): never a real
# run in the tests; those about it turn it back on with a fast fake job (tests/helpers/bootstrap_jobs.py).
os.environ["MTL_STUDIO_AUTO_TRAIN"] = "0"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A ~1M-parameter random BERT with all default heads; read-only, copy it before moving."""
    from mtl_core.model.testing import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt")


@pytest.fixture(scope="session")
def tiny_predictor(tiny_checkpoint):
    """A Predictor on the tiny checkpoint, shared by tests that only read from it."""
    from mtl_core.serve.predictor import Predictor

    return Predictor.from_dir(tiny_checkpoint, device="cpu", version="tiny")


@pytest.fixture
def workspace(tmp_path, monkeypatch, tiny_checkpoint) -> Path:
    """MTL_STUDIO_HOME -> a fresh tmp workspace whose active model is the tiny checkpoint."""
    home = tmp_path / "ws"
    home.mkdir()
    monkeypatch.setenv("MTL_STUDIO_HOME", str(home))
    register_copy(home, tiny_checkpoint)
    return home


@pytest.fixture
def empty_workspace(tmp_path, monkeypatch) -> Path:
    """MTL_STUDIO_HOME -> a fresh tmp workspace with no model at all."""
    home = tmp_path / "ws_empty"
    home.mkdir()
    monkeypatch.setenv("MTL_STUDIO_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def flow():
    """The server + headless-Chromium helpers of scripts/screenshot_predict.py; skips without a browser."""
    spec = importlib.util.spec_from_file_location("screenshot_predict", ROOT / "scripts" / "screenshot_predict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    reason = module.browser_available()
    if reason:
        pytest.skip(f"headless browser unavailable: {reason}")
    return module


@pytest.fixture
def sessions(workspace):
    """Store sessions on the test workspace's database (engine disposed afterwards)."""
    from mtl_core.store.db import open_store

    engine, factory = open_store(workspace)
    yield factory
    engine.dispose()
