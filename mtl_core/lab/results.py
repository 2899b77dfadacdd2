"""A lab experiment's results: runs, the strategy table with Δm%, gradient conflict and task affinity.

Stored as the lab job's `result` (plain JSON: `LabResult.to_dict` / `from_dict`); the curves are the job's
metrics (`metric_name`).
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import asdict, dataclass, field

BASELINE = "single_task"  # the table's name for the single-task baselines


def metric_name(run: str, name: str) -> str:
    """A job metric of one run: "<strategy>/s<seed>:<name>" (name: dev, train_loss, conflict, cos, affinity)."""
    return f"{run}:{name}"[:64]


@dataclass
class RunResult:
    strategy: str
    family: str
    seed: int
    test: dict[str, float]  # task -> primary test metric
    metric: dict[str, str]  # task -> that metric's name
    dev_average: float
    best_step: int
    wall_s: float
    samples_per_s: float
    step_s: float  # mean seconds per optimizer step
    status: str = "done"  # "done" | "failed"
    error: str = ""

    @property
    def key(self) -> str:
        return f"{self.strategy}/s{self.seed}"


@dataclass
class TableRow:
    strategy: str
    family: str
    mean: dict[str, float]
    std: dict[str, float]  # 0 with one seed
    delta_m: float | None  # Δm% against the single-task baselines (None for the baselines themselves)
    delta_m_std: float
    wall_s: float
    samples_per_s: float
    step_cost: float | None  # seconds per step relative to "equal" (None without an equal run)
    seeds: int


@dataclass
class LabResult:
    config: dict
    budget: dict
    tasks: list[str]
    runs: list[RunResult]
    table: list[TableRow] = field(default_factory=list)
    best: str | None = None
    beats_equal: str = ""  # the verdict on the best strategy against "equal", in words
    conflict: dict = field(default_factory=dict)  # {"run", "steps", "pairs": {"a|b": [cos]}, "fraction": [..]}
    affinity: dict = field(default_factory=dict)  # {"run", "tasks", "matrix": [[Z i->j]], "groups": {"2": .., "3": ..}}
    tensorboard: str = ""  # the event files' folder
    excluded: list[str] = field(default_factory=list)  # tasks left out of Δm% (single-task baseline ~0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LabResult:
        runs = [RunResult(**r) for r in data.get("runs", [])]
        table = [TableRow(**r) for r in data.get("table", [])]
        return cls(**{**data, "runs": runs, "table": table})


MIN_BASELINE = 0.01  # a single-task metric below this (e.g. entity F1 0.0 after a short run) is no denominator


def excluded_from_delta(baseline: dict[str, float]) -> list[str]:
    """Tasks Δm% leaves out: their single-task baseline is ~0, so a relative change means nothing."""
    return sorted(t for t, base in baseline.items() if abs(base) < MIN_BASELINE)


def delta_m(scores: dict[str, float], baseline: dict[str, float], lower_is_better: frozenset = frozenset(),
            skip: frozenset = frozenset()) -> float:
    """Δm% (Maninis et al. 2019): mean relative change over the single-task baselines, sign-corrected so that
    positive is better for every metric; |baseline| in the denominator (a Pearson r may be negative). Tasks
    whose baseline is ~0 are left out (`excluded_from_delta`), and so are those in `skip` (every seed's Δm% over
    the same tasks: a task ~0 in one seed's baseline is left out of all)."""
    changes = []
    for task, base in baseline.items():
        if task not in scores or task in skip or abs(base) < MIN_BASELINE:
            continue
        sign = -1.0 if task in lower_is_better else 1.0
        changes.append(sign * (scores[task] - base) / max(abs(base), 1e-8))
    return 100.0 * sum(changes) / len(changes) if changes else 0.0


def strategy_table(runs: list[RunResult], tasks: list[str]) -> list[TableRow]:
    """Per strategy: mean ± std over seeds of every task, Δm% per seed then averaged, cost per step."""
    done = [r for r in runs if r.status == "done"]
    by_seed_base = {r.seed: r.test for r in done if r.strategy == BASELINE}
    base_mean = _mean_dicts([r.test for r in done if r.strategy == BASELINE])
    skip = frozenset(t for b in by_seed_base.values() for t in excluded_from_delta(b))
    groups: dict[str, list[RunResult]] = {}
    for r in done:
        groups.setdefault(r.strategy, []).append(r)
    equal_step = statistics.fmean(r.step_s for r in groups["equal"]) if "equal" in groups else None
    rows = []
    for name, rs in groups.items():
        deltas = [] if name == BASELINE else [delta_m(r.test, by_seed_base.get(r.seed, base_mean), skip=skip)
                                              for r in rs]
        rows.append(TableRow(
            strategy=name, family=rs[0].family, mean=_mean_dicts([r.test for r in rs]),
            std={t: statistics.pstdev([r.test[t] for r in rs if t in r.test]) if len(rs) > 1 else 0.0
                 for t in tasks if any(t in r.test for r in rs)},
            delta_m=statistics.fmean(deltas) if deltas else None,
            delta_m_std=statistics.pstdev(deltas) if len(deltas) > 1 else 0.0,
            wall_s=statistics.fmean(r.wall_s for r in rs), samples_per_s=statistics.fmean(r.samples_per_s for r in rs),
            step_cost=(statistics.fmean(r.step_s for r in rs) / equal_step) if equal_step and name != BASELINE else None,
            seeds=len(rs)))
    return sorted(rows, key=lambda r: (r.delta_m is None, -(r.delta_m or 0.0)))


def verdict(table: list[TableRow]) -> tuple[str | None, str]:
    """(the best strategy by mean Δm%, whether it beats equal weighting beyond seed noise, in words)."""
    ranked = [r for r in table if r.delta_m is not None]
    if not ranked:
        return None, ""
    best = ranked[0]
    equal = next((r for r in ranked if r.strategy == "equal"), None)
    if equal is None or best.strategy == "equal":
        return best.strategy, "equal weighting is the best strategy" if equal else "no equal-weighting run to compare"
    gap, noise = best.delta_m - equal.delta_m, best.delta_m_std + equal.delta_m_std
    if best.seeds < 2 or equal.seeds < 2:
        return best.strategy, f"{best.strategy} leads equal by {gap:+.2f} Δm points; one seed: noise unknown"
    beyond = "beyond" if gap > noise else "within"
    return best.strategy, f"{best.strategy} leads equal by {gap:+.2f} Δm points, {beyond} seed noise (±{noise:.2f})"


def best_groupings(tasks: list[str], affinity: list[list[float]], n_groups: int) -> tuple[list[list[str]], float]:
    """The split of `tasks` into `n_groups` encoders that maximises the affinity each task receives from the
    others in its group (TAG, Fifty et al. 2021: score = Σ_j mean_{i in group(j), i != j} Z[i][j]; a task alone
    scores 0). Exhaustive: fine for up to ~10 tasks."""
    idx = range(len(tasks))
    best, best_score = None, -float("inf")
    for labels in itertools.product(range(n_groups), repeat=len(tasks)):
        if len(set(labels)) != n_groups or labels[0] != 0 or _not_canonical(labels):
            continue
        score = 0.0
        for j in idx:
            mates = [i for i in idx if labels[i] == labels[j] and i != j]
            if mates:
                score += sum(affinity[i][j] for i in mates) / len(mates)
        if score > best_score:
            best, best_score = labels, score
    if best is None:
        return [list(tasks)], 0.0
    return [[tasks[i] for i in idx if best[i] == g] for g in range(n_groups)], best_score


def _not_canonical(labels: tuple[int, ...]) -> bool:
    """Each partition once: group ids appear in first-use order (0, then 1, ...)."""
    seen = -1
    for g in labels:
        if g > seen + 1:
            return True
        seen = max(seen, g)
    return False


def _mean_dicts(dicts: list[dict[str, float]]) -> dict[str, float]:
    keys = {k for d in dicts for k in d}
    return {k: statistics.fmean(d[k] for d in dicts if k in d) for k in sorted(keys)}
