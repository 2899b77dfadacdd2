"""Where a workspace lives on disk: `./workspace` unless `MTL_STUDIO_HOME` (or an explicit `home`) says otherwise.

Models, the data cache, the SQLite database and job logs all live under it.

The workspace lock (`LOCK_FILE` in it): the app's server process and every worker hold it shared while they use
the workspace; `restore` takes it exclusively and refuses while anyone holds it. It is an advisory `flock`
(POSIX): it only stops processes that ask for it, and on a system without `fcntl` every lock is a no-op.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX (Windows): no advisory locks
    fcntl = None

LOCK_FILE = ".mtl-studio.lock"
SHARED_WAIT_S = 60.0  # how long the app or a worker waits for a restore to finish before giving up
_held: dict[Path, int] = {}  # workspace -> fd of this process's lifelong shared lock (hold_workspace)


class WorkspaceBusy(RuntimeError):
    """A lock on the workspace (or the model registry) is held by another process."""


def workspace_dir(home: str | Path | None = None, create: bool = True) -> Path:
    """The workspace folder (absolute); created unless `create` is False."""
    path = Path(home or os.environ.get("MTL_STUDIO_HOME") or "workspace").resolve()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def data_cache_dir(home: str | Path | None = None) -> Path:
    """The prepared-splits cache (JSONL per task), shared by training, rounds and pool scoring."""
    return workspace_dir(home) / "data_cache"


def lock_file(path: Path, exclusive: bool, wait_s: float | None) -> int:
    """flock `path` (created if missing) shared or exclusive; returns the open fd (close it to release).
    `wait_s`: None waits for ever, 0 fails at once; a lock not taken in time raises WorkspaceBusy."""
    deadline = None if wait_s is None else time.monotonic() + wait_s
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                _flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, deadline)
            if _is_still(fd, path):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # renamed away while we waited (a restore moved the workspace aside): lock the new file


def _flock(fd: int, mode: int, deadline: float | None) -> None:
    if deadline is None:
        fcntl.flock(fd, mode)
        return
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise WorkspaceBusy("locked by another process") from None
            time.sleep(0.05)


def _is_still(fd: int, path: Path) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def lock_holders(path: Path) -> list[int]:
    """The pids holding a flock on `path`, from Linux's /proc/locks; [] where that cannot be read."""
    try:
        st = os.stat(path)
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    # "1: FLOCK  ADVISORY  READ 4242 fe:00:2146411 0 EOF"; a waiter's line has "->" after the number
    rows = [line.split() for line in lines]
    return sorted({int(r[4]) for r in rows if len(r) > 5 and r[1] == "FLOCK" and r[5] == key and r[4].isdigit()
                   and int(r[4]) > 0})


def hold_workspace(home: str | Path | None = None) -> None:
    """Hold the workspace lock shared until this process exits (the app's server); once per workspace."""
    home = workspace_dir(home)
    if home not in _held:
        _held[home] = _shared_lock(home)


@contextmanager
def workspace_in_use(home: str | Path | None = None) -> Iterator[None]:
    """Hold the workspace lock shared for the block (a worker running a job)."""
    fd = _shared_lock(workspace_dir(home))
    try:
        yield
    finally:
        os.close(fd)


def _shared_lock(home: Path) -> int:
    try:
        return lock_file(home / LOCK_FILE, exclusive=False, wait_s=SHARED_WAIT_S)
    except WorkspaceBusy:
        raise WorkspaceBusy(f"the workspace {home} is being restored from a backup: try again when that "
                            "has finished") from None


@contextmanager
def workspace_exclusive(home: Path) -> Iterator[None]:
    """Hold the lock of the existing workspace `home` alone (restore); WorkspaceBusy at once when it is in use."""
    path = home / LOCK_FILE
    try:
        fd = lock_file(path, exclusive=True, wait_s=0)
    except WorkspaceBusy:
        pids = ", ".join(map(str, lock_holders(path))) or "unknown"
        raise WorkspaceBusy(f"the workspace {home} is in use by the app or a worker (pid {pids}); "
                            "stop them first") from None
    try:
        yield
    finally:
        os.close(fd)
