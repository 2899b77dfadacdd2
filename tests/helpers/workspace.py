"""Workspaces for tests: register a copy of a checkpoint as a model version."""

from __future__ import annotations

import shutil
from pathlib import Path


def register_copy(home: Path, checkpoint: Path, note: str = "tiny", activate: bool = True):
    """Register a copy of `checkpoint` in the workspace at `home` (register moves its input)."""
    from mtl_core.model.registry import Registry

    reg = Registry(home)
    staging = reg.staging_dir()
    shutil.copytree(checkpoint, staging, dirs_exist_ok=True)
    return reg.register(staging, note=note, activate=activate)


def job_statuses(home: Path, kind: str) -> list[tuple[int, str]]:
    """(id, status) of the workspace's jobs of `kind`, read the way the app reads them (its own engine)."""
    from mtl_core.store import list_jobs
    from mtl_core.store.db import open_store

    engine, sessions = open_store(home)
    try:
        with sessions() as s:
            return [(j.id, j.status) for j in list_jobs(s, kind=kind)]
    finally:
        engine.dispose()
