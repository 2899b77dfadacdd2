"""A round's progress as a share of its whole work, with an ETA from the pace measured so far.

A round is several phases of unequal cost (answer the corrections, train, rebuild the edit memory, answer
the test splits, refit applicability). `RoundPace` wraps the job's `Reporter`: the round plans each phase's
work in *forward units* (one text through the model without gradients) and says which phase it is in;
every progress call becomes `progress(permille, 1000, "<phase message> · about 1m 20s left")`, the ETA being
the units left times the seconds per unit measured since the plan. Training reports its steps through the
same wrapper (a training example costs `TRAIN_UNITS` forward units), so the bar moves from the first step.
"""

from __future__ import annotations

import time

from mtl_core.progress import Reporter, fmt_seconds

# A training example (forward + backward + optimizer, distillation target precomputed) costs about this many
# plain forwards of an evaluation example on CPU (measured on 2 cores: 100 steps × 16 in 58 s against 6,300
# test + correction answers in 37 s gives ~6); a wrong guess only skews the ETA until training has run a while.
TRAIN_UNITS = 6.0
# Layer states + a fit per task (applicability refit, edit-memory radii) cost about two plain forwards a text
# (measured: 1,600 planned units took 12.5 s against 20 s for 6,500 test answers).
STATE_UNITS = 2.0
SAVE_UNITS = 400.0  # saving the checkpoint + registering: a few seconds whatever the size of the round
EARLY_PHASES = ("evaluate_old", "prepare")  # no time left shown yet: their pace says little about training's
MIN_INTERVAL_S = 0.5  # at most two store writes a second (a step can take 50 ms on a GPU)


class RoundPace:
    """Reporter wrapper; `plan(**units)` once the round's size is known, `phase(name, message)` as it goes."""

    def __init__(self, inner: Reporter, clock=time.perf_counter):
        self.inner, self.clock = inner, clock
        self.units: dict[str, float] = {}
        self.current: str | None = None
        self.started = self.last_write = None
        self.message = ""

    def plan(self, **units: float) -> None:
        """Each phase's work in forward units, in the order the phases run."""
        self.units = {name: max(0.0, float(u)) for name, u in units.items()}
        self.started = self.clock()

    def phase(self, name: str, message: str) -> None:
        self.current = name
        self.message = message
        self._report(0.0, message, force=True)

    def done_units(self, fraction: float) -> float:
        names = list(self.units)
        if self.current not in self.units:
            return 0.0
        i = names.index(self.current)
        return sum(self.units[n] for n in names[:i]) + min(1.0, max(0.0, fraction)) * self.units[self.current]

    def eta_seconds(self, fraction: float) -> float | None:
        """Seconds left: units left × seconds per unit so far (None before training: the pace of answering a few
        corrections and of preparing the data said 3 minutes where 90 seconds were left)."""
        done, total = self.done_units(fraction), sum(self.units.values())
        if self.started is None or done <= 0 or self.current in EARLY_PHASES:
            return None
        return (self.clock() - self.started) / done * max(0.0, total - done)

    def _report(self, fraction: float, message: str, force: bool = False) -> None:
        now = self.clock()
        if not force and self.last_write is not None and now - self.last_write < MIN_INTERVAL_S:
            return
        self.last_write = now
        total = sum(self.units.values())
        permille = int(1000 * self.done_units(fraction) / total) if total else 0
        eta = self.eta_seconds(fraction)
        said = f"about {fmt_seconds(eta)} left" if eta is not None else "estimating the time left"
        self.inner.progress(permille, 1000, f"{message} · {said}")

    # Reporter protocol: the training loop reports its steps here. Its first step ends "prepare" (tokenising,
    # replay targets: no progress of their own) and starts "train".
    def progress(self, step: int, total: int | None = None, message: str | None = None) -> None:
        if self.current == "prepare" and "train" in self.units:
            self.current = "train"
            self.last_write = None  # the phase changed: show it at once
        self._report(step / total if total else 0.0, message or self.message)

    def log(self, line: str) -> None:
        self.inner.log(line)

    def metric(self, step: int, name: str, value: float, task: str | None = None) -> None:
        self.inner.metric(step, name, value, task)

    def check_cancelled(self) -> None:
        self.inner.check_cancelled()
