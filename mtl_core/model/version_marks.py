"""Versions a user discarded after comparing them: a sidecar next to registry.json (additive metadata).

A discarded version stays registered (its parent links and metrics remain visible) and can still be
activated later; the Models page just marks it.
"""

from __future__ import annotations

import json
import os
import time

from mtl_core.model.registry import Registry


def _discarded_path(home=None):
    return Registry(home).models_dir / "discarded.json"


def discarded_versions(home=None) -> dict[str, float]:
    """version -> when it was discarded (a sidecar next to registry.json; versions stay registered)."""
    path = _discarded_path(home)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def discard_version(version: str, home=None, discarded: bool = True) -> None:
    """Mark a version as discarded (or not): it stays registered and can still be activated later."""
    reg = Registry(home)
    reg.get(version)
    if discarded and reg.active == version:
        raise ValueError(f"{version} is the active version: activate another one before discarding it")
    data = discarded_versions(home)
    if discarded:
        data[version] = time.time()
    else:
        data.pop(version, None)
    path = _discarded_path(home)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    tmp.replace(path)
