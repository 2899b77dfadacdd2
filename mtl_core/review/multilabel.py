"""Review scores of a multi-label answer: every label is its own yes/no decision at its own threshold.

The decision closest to its threshold is the one in doubt. Its distance is measured as a share of the room
on its side (p >= t: (p - t) / (1 - t), else (t - p) / t), so 0 = on the threshold and 1 = certain whatever
the threshold; `confidence` maps it onto [0.5, 1], the range of a binary class probability.
"""

from __future__ import annotations

from collections.abc import Sequence

from mtl_core.types import MultiLabelPrediction


def distance(p: float, t: float) -> float:
    """How far probability `p` is from its threshold `t`, as a share of the room on its side: [0, 1]."""
    room = (1.0 - t) if p >= t else t
    return min(1.0, abs(p - t) / room) if room > 0 else 0.0  # no room: p sits on t (0 or 1)


def closest(answer: MultiLabelPrediction) -> tuple[str, float] | None:
    """(the label whose decision is closest to its threshold, its distance); None without labels."""
    found = [(label, distance(p, answer.thresholds.get(label, 0.5))) for label, p in answer.probs.items()]
    return min(found, key=lambda x: x[1]) if found else None


def confidence(answer: MultiLabelPrediction) -> float | None:
    """0.5 when some label sits on its threshold, 1.0 when every decision is certain."""
    near = closest(answer)
    return None if near is None else 0.5 + 0.5 * near[1]


def uncertain(task: str, answer: MultiLabelPrediction) -> tuple[float, str] | None:
    """(score in [0, 1], detail) for the review queue: 1 - the closest decision's distance."""
    near = closest(answer)
    if near is None:
        return None
    label, d = near
    p, t = answer.probs[label], answer.thresholds.get(label, 0.5)
    chosen = ", ".join(answer.labels) or "none"
    return 1.0 - d, f"{task}={chosen}: {label} at {p:.2f}, threshold {t:.2f}"


def disagreement(answer: MultiLabelPrediction, given: Sequence[str] | MultiLabelPrediction) -> tuple[float, str] | None:
    """How strongly the answer's label set differs from `given` (a label list or another answer), in [0, 1]: the
    distance from its threshold of the model's surest differing decision; None when the sets are equal."""
    if isinstance(given, MultiLabelPrediction):
        given = given.labels
    other = {given} if isinstance(given, str) else {str(x) for x in given} if isinstance(given, (list, tuple)) else set()
    differ = other.symmetric_difference(answer.labels)
    if not differ:
        return None
    strength = max(distance(answer.probs.get(label, 0.0), answer.thresholds.get(label, 0.5)) for label in differ)
    shown = f"[{', '.join(sorted(other))}] -> [{', '.join(answer.labels)}]"
    return strength, shown
