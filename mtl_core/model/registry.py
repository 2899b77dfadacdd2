"""Model versions in a workspace: `<home>/models/vNNNN/` checkpoints plus `registry.json` naming the active one.

The workspace is `./workspace` unless `MTL_STUDIO_HOME` says otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mtl_core.model.checkpoint import CheckpointError, check_checkpoint
from mtl_core.workspace import workspace_dir


@dataclass
class VersionInfo:
    id: str  # "v0001", ...
    created_at: float
    parent: str | None = None  # version this one was fine-tuned from
    note: str = ""  # e.g. "default training", "round 3: 200 corrections"
    metrics: dict = field(default_factory=dict)  # summary: task -> primary metric on test
    extra: dict = field(default_factory=dict)  # e.g. which corrections trained it


class Registry:
    """Reads/writes `registry.json` atomically; the checkpoint dirs are the payload."""

    def __init__(self, home: str | Path | None = None):
        self.home = workspace_dir(home)
        self.models_dir = self.home / "models"
        self.models_dir.mkdir(exist_ok=True)
        self.path = self.models_dir / "registry.json"

    def _read(self) -> dict:
        if not self.path.exists():
            return {"active": None, "versions": []}
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{self.path} is corrupted: {exc}") from None

    def _write(self, data: dict) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, self.path)

    def versions(self) -> list[VersionInfo]:
        return [VersionInfo(**v) for v in self._read()["versions"]]

    def get(self, version: str) -> VersionInfo:
        for v in self.versions():
            if v.id == version:
                return v
        raise KeyError(f"no model version {version!r}")

    @property
    def active(self) -> str | None:
        return self._read()["active"]

    def path_of(self, version: str) -> Path:
        return self.models_dir / version

    def next_id(self) -> str:
        ids = [int(v.id[1:]) for v in self.versions() if v.id[1:].isdigit()]
        return f"v{(max(ids) if ids else 0) + 1:04d}"

    def register(self, checkpoint_dir: str | Path, note: str = "", parent: str | None = None,
                 metrics: dict | None = None, extra: dict | None = None, activate: bool = False) -> VersionInfo:
        """Move a finished checkpoint into the registry under a new version id."""
        check_checkpoint(checkpoint_dir)
        info = VersionInfo(id=self.next_id(), created_at=time.time(), parent=parent, note=note,
                           metrics=metrics or {}, extra=extra or {})
        target = self.path_of(info.id)
        shutil.move(str(checkpoint_dir), str(target))
        data = self._read()
        data["versions"].append(asdict(info))
        if activate or data["active"] is None:
            data["active"] = info.id
        self._write(data)
        return info

    def activate(self, version: str) -> None:
        """Promote (or roll back to) a version."""
        self.get(version)
        check_checkpoint(self.path_of(version))
        data = self._read()
        data["active"] = version
        self._write(data)

    def staging_dir(self, name: str = "staging") -> Path:
        """A scratch dir inside the workspace for a checkpoint being written (same filesystem as models/)."""
        path = self.home / "tmp" / f"{name}-{os.getpid()}-{int(time.time() * 1000)}"
        path.mkdir(parents=True, exist_ok=True)
        return path
