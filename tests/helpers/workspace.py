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
