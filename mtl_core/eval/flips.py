"""Negative flips: examples the old model got right and the new one gets wrong (Yan et al. 2021,
"positive-congruent training"). A model update is judged by them, not only by its metric deltas.

Pure functions over `compare.compare_answers` results (JSON dicts in, plain values out).
"""

from __future__ import annotations

MAX_NFR = 0.01  # a task's negative flip rate above this (1 % of its test examples) needs a confirmation


def negative_flip_rate(counts: dict) -> float:
    """broken / n for one task's counts row ({"n", "broken", ...}); 0.0 for an empty set."""
    n = int(counts.get("n") or 0)
    return int(counts.get("broken") or 0) / n if n else 0.0


def flip_rates(comparison: dict) -> dict[str, float]:
    """task -> negative flip rate on a comparison's examples (a test comparison: its "counts")."""
    return {task: negative_flip_rate(c) for task, c in sorted((comparison.get("counts") or {}).items())}


def promotion_concerns(test: dict, max_nfr: float = MAX_NFR) -> list[str]:
    """Why promoting the new model needs a second thought, one sentence each (empty: nothing to confirm).

    `test` is the test-split comparison of a round: broken > fixed, or any task's NFR above `max_nfr`."""
    out = []
    fixed, broken = int(test.get("n_fixed") or 0), int(test.get("n_broken") or 0)
    if broken > fixed:
        out.append(f"it breaks more test examples than it fixes ({broken:,} broken, {fixed:,} fixed)")
    high = {t: r for t, r in flip_rates(test).items() if r > max_nfr}
    if high:
        out.append("negative flip rate above {:.0%} on {}".format(
            max_nfr, ", ".join(f"{t} ({r:.1%})" for t, r in high.items())))
    return out
