"""A `mtl_core.progress.Reporter` that records what it is told and can cancel at a given step."""

from __future__ import annotations

from mtl_core.progress import Cancelled


class RecordingReporter:
    def __init__(self, cancel_at_step: int | None = None):
        self.cancel_at_step = cancel_at_step
        self.progresses: list[tuple[int, int | None, str | None]] = []
        self.metrics: list[tuple[int, str, float, str | None]] = []
        self.lines: list[str] = []
        self.last_step = 0

    def progress(self, step: int, total: int | None = None, message: str | None = None) -> None:
        self.progresses.append((step, total, message))
        self.last_step = max(self.last_step, step)

    def log(self, line: str) -> None:
        self.lines.append(line)

    def metric(self, step: int, name: str, value: float, task: str | None = None) -> None:
        self.metrics.append((step, name, value, task))
        self.last_step = max(self.last_step, step)

    def check_cancelled(self) -> None:
        if self.cancel_at_step is not None and self.last_step >= self.cancel_at_step:
            raise Cancelled()
