"""Model versions in a workspace: `<home>/models/vNNNN/` checkpoints plus `registry.json` naming the active one.

The workspace is `./workspace` unless `MTL_STUDIO_HOME` says otherwise.

Registering is atomic and never reuses an id: under `models/.registry.lock` the new id is one past every id in
registry.json *and* every `vNNNN` dir, the complete checkpoint is renamed into place, then registry.json is
replaced. A crash between the two leaves an orphan dir (`Registry.orphans`): not a version, never overwritten.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mtl_core.model.checkpoint import CheckpointError, check_checkpoint
from mtl_core.workspace import lock_file, workspace_dir

LOCK = ".registry.lock"
LOCK_WAIT_S = 120.0  # another process registering or activating holds it for well under a second
VERSION_DIR = re.compile(r"v(\d+)")


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
        with tmp.open("w", encoding="utf-8") as f:
            f.write(json.dumps(data, indent=2))
            f.flush()
            os.fsync(f.fileno())  # the rename must never expose a file whose bytes are not on disk yet
        os.replace(tmp, self.path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise read-modify-write of registry.json across processes (an advisory flock)."""
        fd = lock_file(self.models_dir / LOCK, exclusive=True, wait_s=LOCK_WAIT_S)
        try:
            yield
        finally:
            os.close(fd)

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

    def _version_dirs(self) -> list[str]:
        return [p.name for p in self.models_dir.iterdir() if p.is_dir() and VERSION_DIR.fullmatch(p.name)]

    def orphans(self) -> list[str]:
        """`vNNNN` dirs that registry.json does not name (left by a registration that crashed): not versions."""
        known = {v.id for v in self.versions()}
        return sorted(name for name in self._version_dirs() if name not in known)

    def next_id(self) -> str:
        """One past every id in use, registered or an orphan dir, so an id is never given out twice."""
        used = [v.id for v in self.versions()] + self._version_dirs()
        ids = [int(m.group(1)) for m in map(VERSION_DIR.fullmatch, used) if m]
        return f"v{(max(ids) if ids else 0) + 1:04d}"

    def register(self, checkpoint_dir: str | Path, note: str = "", parent: str | None = None,
                 metrics: dict | None = None, extra: dict | None = None, activate: bool = False) -> VersionInfo:
        """Move a finished checkpoint into the registry under a new version id."""
        check_checkpoint(checkpoint_dir)
        with self._locked():
            info = VersionInfo(id=self.next_id(), created_at=time.time(), parent=parent, note=note,
                               metrics=metrics or {}, extra=extra or {})
            self._move_in(Path(checkpoint_dir), self.path_of(info.id))
            data = self._read()
            data["versions"].append(asdict(info))
            if activate or data["active"] is None:
                data["active"] = info.id
            self._write(data)
        return info

    def _move_in(self, source: Path, target: Path) -> None:
        """`source` appears at `target` whole or not at all: a rename, or a copy beside it renamed into place."""
        try:
            os.rename(source, target)
            return
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
        incoming = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.models_dir))  # another filesystem
        try:
            shutil.copytree(source, incoming, dirs_exist_ok=True)
            os.rename(incoming, target)
        except BaseException:
            shutil.rmtree(incoming, ignore_errors=True)
            raise
        shutil.rmtree(source, ignore_errors=True)

    def activate(self, version: str) -> None:
        """Promote (or roll back to) a version."""
        self.get(version)
        check_checkpoint(self.path_of(version))
        with self._locked():
            data = self._read()
            data["active"] = version
            self._write(data)

    def staging_dir(self, name: str = "staging") -> Path:
        """A scratch dir inside the workspace for a checkpoint being written (same filesystem as models/)."""
        (self.home / "tmp").mkdir(parents=True, exist_ok=True)
        # unique per call (threads of one process share pid and clock): mkdtemp never returns a dir twice
        return Path(tempfile.mkdtemp(prefix=f"{name}-{os.getpid()}-", dir=self.home / "tmp"))
