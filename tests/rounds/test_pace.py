"""RoundPace: one bar over a round's phases, an ETA from the measured pace, throttled writes."""

from __future__ import annotations

from mtl_core.progress import PrintReporter, fmt_seconds
from mtl_core.rounds.pace import RoundPace


class Recorder(PrintReporter):
    def __init__(self):
        super().__init__()
        self.calls = []

    def progress(self, step, total=None, message=None):
        self.calls.append((step, total, message))


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_permille_counts_every_phase_by_its_units():
    inner, clock = Recorder(), Clock()
    pace = RoundPace(inner, clock)
    pace.plan(a=100, train=800, b=100)
    pace.phase("a", "first")
    assert inner.calls[-1][:2] == (0, 1000)
    clock.t = 1.0
    pace.phase("train", "training")
    assert inner.calls[-1][0] == 100  # phase a's 100 units of 1000 are done
    clock.t = 2.0
    pace.progress(50, 100, "training: step 50/100")
    assert inner.calls[-1][0] == 500  # 100 + half of 800


def test_eta_is_units_left_at_the_measured_pace():
    inner, clock = Recorder(), Clock()
    pace = RoundPace(inner, clock)
    pace.plan(train=1000, save=1000)
    pace.phase("train", "training")
    assert inner.calls[-1][2] == "training · estimating the time left"  # nothing done yet: no guess
    clock.t = 10.0
    pace.progress(25, 100, "training: step 25/100")  # 250 units in 10 s -> 1750 units left = 70 s
    assert pace.eta_seconds(0.25) == 70.0
    assert inner.calls[-1][2] == "training: step 25/100 · about 1m 10s left"


def test_progress_writes_are_throttled_but_phase_changes_are_not():
    inner, clock = Recorder(), Clock()
    pace = RoundPace(inner, clock)
    pace.plan(train=100, save=10)
    pace.phase("train", "training")
    for step in range(1, 11):  # ten steps within 0.1 s: one write at most
        clock.t = step * 0.01
        pace.progress(step, 100, f"training: step {step}/100")
    assert len(inner.calls) == 1
    pace.phase("save", "saving")
    assert len(inner.calls) == 2 and inner.calls[-1][2].startswith("saving")


def test_fmt_seconds():
    assert fmt_seconds(0.2) == "1s" and fmt_seconds(59) == "59s" and fmt_seconds(61) == "1m 01s"
    assert fmt_seconds(None) == "…"


def test_the_first_training_step_ends_the_preparation():
    inner, clock = Recorder(), Clock()
    pace = RoundPace(inner, clock)
    pace.plan(prepare=100, train=800, save=100)
    pace.phase("prepare", "preparing the training data")
    clock.t = 5.0
    pace.progress(1, 100, "training: step 1/100")  # 100 + 8 units done in 5 s
    assert pace.current == "train" and inner.calls[-1][0] == 108
    assert inner.calls[-1][2].startswith("training: step 1/100 · about ")


def test_no_time_left_is_guessed_before_training():
    inner, clock = Recorder(), Clock()
    pace = RoundPace(inner, clock)
    pace.plan(evaluate_old=100, prepare=100, train=800)
    pace.phase("evaluate_old", "answering the corrections")
    clock.t = 1.0
    pace.phase("prepare", "preparing the training data")
    assert pace.eta_seconds(0.0) is None and inner.calls[-1][2].endswith("estimating the time left")
    clock.t = 5.0
    pace.progress(1, 100, "training: step 1/100")
    assert pace.eta_seconds(0.01) is not None
