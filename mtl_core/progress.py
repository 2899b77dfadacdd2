"""The one job protocol: how long work (training, rounds, pool scoring) reports and is cancelled.

Every long-running function takes a `Reporter`. The background worker's `JobContext` writes to the
store; `PrintReporter` prints (CLI, benches); `ProgressFile` writes JSON for another process to poll.
`check_cancelled()` raises `Cancelled`, the one exception that means "the user pressed Cancel".
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


def fmt_seconds(s: float | None) -> str:
    """A duration for a progress line: "45s", "3m 05s"; "…" when unknown."""
    if s is None:
        return "…"
    return f"{int(s // 60)}m {int(s % 60):02d}s" if s >= 60 else f"{max(1, round(s))}s"


class Cancelled(Exception):
    """The user cancelled: raised by `Reporter.check_cancelled()`, caught where the job ends cleanly."""


@runtime_checkable
class Reporter(Protocol):
    def progress(self, step: int, total: int | None = None, message: str | None = None) -> None: ...

    def log(self, line: str) -> None: ...

    def metric(self, step: int, name: str, value: float, task: str | None = None) -> None: ...

    def check_cancelled(self) -> None:
        """Raise `Cancelled` when the user asked to stop."""
        ...


class JobRun(Reporter, Protocol):
    """What a worker job handler receives: a Reporter plus the job's parameters and workspace."""

    job_id: int
    kind: str
    params: dict[str, Any]
    home: Path
    sessions: Any  # sessionmaker[Session] (typed in mtl_core.store.db as `Sessions`)


class PrintReporter:
    """Prints progress and log lines when `verbose`; never cancels. The default where no job runs."""

    def __init__(self, verbose: bool = False):
        self.verbose = verbose

    def progress(self, step: int, total: int | None = None, message: str | None = None) -> None:
        if self.verbose and message:
            print(f"[{step}/{total}] {message}", flush=True)

    def log(self, line: str) -> None:
        if self.verbose:
            print(line, flush=True)

    def metric(self, step: int, name: str, value: float, task: str | None = None) -> None:
        pass

    def check_cancelled(self) -> None:
        pass


class ProgressFile(PrintReporter):
    """Writes the latest progress (with elapsed time, ETA and the last metrics) as JSON to `path`,
    atomically, for a UI polling from another process (`python -m mtl_core train --progress-file F`)."""

    def __init__(self, path: str | Path):
        super().__init__(verbose=False)
        self.path = Path(path)
        self.started = time.time()
        self.metrics: dict[str, float] = {}

    def progress(self, step: int, total: int | None = None, message: str | None = None) -> None:
        self.write({"status": "running", "step": step, "total": total, "message": message})

    def metric(self, step: int, name: str, value: float, task: str | None = None) -> None:
        self.metrics[f"{name}/{task}" if task else name] = float(value)

    def write(self, event: dict[str, Any]) -> None:
        elapsed = time.time() - self.started
        step, total = event.get("step") or 0, event.get("total") or 0
        eta = elapsed / step * (total - step) if step and total else None
        body = {**event, "metrics": self.metrics, "elapsed_s": elapsed, "eta_s": eta}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, default=float))
        tmp.replace(self.path)
