"""Where a workspace lives on disk: `./workspace` unless `MTL_STUDIO_HOME` (or an explicit `home`) says otherwise.

Models, the data cache, the SQLite database and job logs all live under it.
"""

from __future__ import annotations

import os
from pathlib import Path


def workspace_dir(home: str | Path | None = None, create: bool = True) -> Path:
    """The workspace folder (absolute); created unless `create` is False."""
    path = Path(home or os.environ.get("MTL_STUDIO_HOME") or "workspace").resolve()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def data_cache_dir(home: str | Path | None = None) -> Path:
    """The prepared-splits cache (JSONL per task), shared by training, rounds and pool scoring."""
    return workspace_dir(home) / "data_cache"
