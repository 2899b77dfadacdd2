"""The lab's result arithmetic: Δm%, the strategy table, the verdict, TAG groupings, (de)serialisation, and the
validation of LabConfig / Budget. Pure Python, milliseconds."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from mtl_core.lab import results
from mtl_core.lab.config import BUDGETS, FAMILIES, STRATEGIES, Budget, LabConfig
from mtl_core.lab.results import (
    BASELINE,
    LabResult,
    RunResult,
    TableRow,
    best_groupings,
    delta_m,
    excluded_from_delta,
    metric_name,
    strategy_table,
    verdict,
)


def _run(strategy: str, seed: int, test: dict, step_s: float = 0.1, status: str = "done", wall_s: float = 10.0,
         samples: float = 100.0) -> RunResult:
    family = "baseline" if strategy == BASELINE else STRATEGIES[strategy].family
    return RunResult(strategy, family, seed, dict(test), {t: "macro_f1" for t in test}, 0.5, 6, wall_s, samples,
                     step_s, status=status, error="boom" if status == "failed" else "")


# --- Δm% ---------------------------------------------------------------------------------------------------------


def test_delta_m_by_hand_with_negative_baseline_and_lower_is_better():
    baseline = {"cls": 0.8, "reg": -0.5, "mae": 2.5}  # a Pearson baseline below 0; an error (lower is better)
    scores = {"cls": 0.9, "reg": 0.3, "mae": 2.0}
    # cls: (0.9 - 0.8) / 0.8 = 0.125; reg: (0.3 - -0.5) / |-0.5| = 1.6; mae: -(2.0 - 2.5) / 2.5 = 0.2
    expected = 100 * (0.125 + 1.6 + 0.2) / 3
    assert delta_m(scores, baseline, frozenset({"mae"})) == pytest.approx(expected)
    # without the sign correction the error's improvement would count against it
    assert delta_m(scores, baseline) == pytest.approx(100 * (0.125 + 1.6 - 0.2) / 3)
    # the negative baseline: |base| keeps "better than baseline" positive (base would flip the sign)
    assert delta_m({"reg": 0.3}, {"reg": -0.5}) == pytest.approx(160.0)
    assert delta_m({"reg": -0.6}, {"reg": -0.5}) == pytest.approx(-20.0)


def test_delta_m_skips_tasks_without_a_score_and_ignores_extra_ones():
    assert delta_m({"a": 1.1, "extra": 5.0}, {"a": 1.0, "b": 0.5}) == pytest.approx(10.0)
    assert delta_m({}, {"a": 1.0}) == 0.0
    assert delta_m({"a": 1.0}, {}) == 0.0
    assert delta_m({"a": 0.0}, {"a": 0.0}) == 0.0  # a zero baseline does not divide by zero
    # a ~0 baseline (entity F1 0.0 after a short run) is left out, not a 10^8 % change
    assert delta_m({"a": 1.1, "ner": 0.09}, {"a": 1.0, "ner": 0.0}) == pytest.approx(10.0)
    assert excluded_from_delta({"a": 1.0, "ner": 0.0, "r": -0.005}) == ["ner", "r"]
    assert delta_m({"a": 1.1, "ner": 0.0}, {"a": 1.0, "ner": 0.04}, skip=frozenset({"ner"})) == pytest.approx(10.0)


# --- the strategy table ------------------------------------------------------------------------------------------


def _two_seed_runs() -> list[RunResult]:
    return [
        _run(BASELINE, 0, {"x": 0.5, "y": 0.8}, step_s=0.05, wall_s=4.0),
        _run(BASELINE, 1, {"x": 0.6, "y": 0.7}, step_s=0.05, wall_s=6.0),
        # equal: s0 (+0.1, 0) -> +5%; s1 (0, -0.2) -> -10%  => mean -2.5, pstdev 7.5
        _run("equal", 0, {"x": 0.55, "y": 0.8}, step_s=0.1, wall_s=10.0, samples=100.0),
        _run("equal", 1, {"x": 0.6, "y": 0.56}, step_s=0.3, wall_s=20.0, samples=300.0),
        # pcgrad: s0 (+0.2, +0.1) -> +15%; s1 (+0.2, +0.1) -> +15%  => mean 15, pstdev 0
        _run("pcgrad", 0, {"x": 0.6, "y": 0.88}, step_s=0.4),
        _run("pcgrad", 1, {"x": 0.72, "y": 0.77}, step_s=0.6),
        # failed runs count nowhere: not in pcgrad's seeds, no row for mgda
        _run("pcgrad", 2, {}, status="failed", step_s=99.0),
        _run("mgda", 0, {}, status="failed"),
    ]


def test_strategy_table_means_stds_and_per_seed_delta_m():
    table = strategy_table(_two_seed_runs(), ["x", "y"])
    assert [r.strategy for r in table] == ["pcgrad", "equal", BASELINE]  # best first, the baselines last
    pc, eq, base = table
    assert pc.seeds == 2 and eq.seeds == 2 and base.seeds == 2
    assert pc.mean == pytest.approx({"x": 0.66, "y": 0.825})
    assert pc.std == pytest.approx({"x": 0.06, "y": 0.055})
    assert eq.mean == pytest.approx({"x": 0.575, "y": 0.68})
    assert pc.delta_m == pytest.approx(15.0) and pc.delta_m_std == pytest.approx(0.0, abs=1e-9)
    assert eq.delta_m == pytest.approx(-2.5) and eq.delta_m_std == pytest.approx(7.5)
    # per seed against that seed's baseline, not against the mean baseline (which would give another number)
    mean_base = {"x": 0.55, "y": 0.75}
    against_mean = (delta_m({"x": 0.55, "y": 0.8}, mean_base) + delta_m({"x": 0.6, "y": 0.56}, mean_base)) / 2
    assert eq.delta_m != pytest.approx(against_mean)
    assert base.delta_m is None and base.delta_m_std == 0.0 and base.step_cost is None
    assert base.mean == pytest.approx({"x": 0.55, "y": 0.75}) and base.wall_s == pytest.approx(5.0)
    # seconds per step relative to equal (mean 0.2 s): pcgrad 0.5 s -> 2.5x
    assert eq.step_cost == pytest.approx(1.0) and pc.step_cost == pytest.approx(2.5)
    assert eq.wall_s == pytest.approx(15.0) and eq.samples_per_s == pytest.approx(200.0)
    assert eq.family == "weighting" and pc.family == "gradient"


def test_strategy_table_one_seed_and_no_equal_run():
    runs = [_run(BASELINE, 0, {"x": 0.5}), _run("pcgrad", 0, {"x": 0.55}), _run("upgrad", 0, {"x": 0.6})]
    table = strategy_table(runs, ["x"])
    assert [r.strategy for r in table] == ["upgrad", "pcgrad", BASELINE]
    assert all(r.step_cost is None for r in table)  # no equal run to compare the cost with
    assert table[0].std == {"x": 0.0} and table[0].delta_m_std == 0.0 and table[0].delta_m == pytest.approx(20.0)


def test_strategy_table_without_a_baseline_for_a_seed_uses_the_mean_baseline():
    runs = [_run(BASELINE, 0, {"x": 0.5}), _run("equal", 0, {"x": 0.5}), _run("equal", 1, {"x": 0.55})]
    (eq, _) = strategy_table(runs, ["x"])
    assert eq.delta_m == pytest.approx((0.0 + 10.0) / 2)


# --- the verdict -------------------------------------------------------------------------------------------------


def _row(name: str, dm: float | None, dm_std: float = 0.0, seeds: int = 2) -> TableRow:
    return TableRow(name, "x", {}, {}, dm, dm_std, 1.0, 1.0, 1.0, seeds)


def test_verdict_beyond_noise():
    best, words = verdict(strategy_table(_two_seed_runs(), ["x", "y"]))
    assert best == "pcgrad"
    assert words == "pcgrad leads equal by +17.50 Δm points, beyond seed noise (±7.50)"


def test_verdict_within_noise():
    best, words = verdict([_row("upgrad", 3.0, 2.0), _row("equal", 1.0, 1.0), _row(BASELINE, None)])
    assert best == "upgrad"
    assert words == "upgrad leads equal by +2.00 Δm points, within seed noise (±3.00)"


def test_verdict_one_seed_equal_best_and_no_equal():
    best, words = verdict([_row("upgrad", 3.0, seeds=1), _row("equal", 1.0, seeds=1)])
    assert best == "upgrad" and words == "upgrad leads equal by +2.00 Δm points; one seed: noise unknown"
    best, words = verdict([_row("upgrad", 3.0, seeds=2), _row("equal", 1.0, seeds=1)])
    assert "one seed: noise unknown" in words
    assert verdict([_row("equal", 2.0), _row("pcgrad", 1.0), _row(BASELINE, None)]) == \
        ("equal", "equal weighting is the best strategy")
    assert verdict([_row("pcgrad", 1.0), _row("mgda", 0.5)]) == ("pcgrad", "no equal-weighting run to compare")
    assert verdict([_row(BASELINE, None)]) == (None, "")
    assert verdict([]) == (None, "")


# --- TAG groupings -----------------------------------------------------------------------------------------------


def test_best_groupings_pairs_the_tasks_that_help_each_other():
    tasks = ["a", "c", "b", "d"]  # the helping pairs are not neighbours in the list
    help_ = {frozenset("ab"), frozenset("cd")}
    z = [[0.0 if i == j else (1.0 if frozenset(i + j) in help_ else -1.0) for j in tasks] for i in tasks]
    groups, score = best_groupings(tasks, z, 2)
    assert groups == [["a", "b"], ["c", "d"]]
    assert score == pytest.approx(4.0)  # each task receives +1 from its one mate
    # one group: everyone together, each task gets the mean of (+1, -1, -1)
    groups1, score1 = best_groupings(tasks, z, 1)
    assert groups1 == [tasks] and score1 == pytest.approx(4 * (-1 / 3))


def test_best_groupings_score_is_mean_affinity_received_from_mates():
    tasks = ["a", "b", "c"]
    z = [[0, 0.6, -0.2],  # Z[i][j]: a step on i lowers j's loss
         [0.1, 0, 0.4],
         [0.5, 0.3, 0]]
    groups, score = best_groupings(tasks, z, 2)
    # {a,c}|{b}: a gets z[c][a]=0.5, c gets z[a][c]=-0.2 -> 0.3; {a,b}|{c}: 0.1 + 0.6 = 0.7; {b,c}|{a}: 0.3 + 0.4
    assert groups == [["a", "b"], ["c"]] and score == pytest.approx(0.7)


def _set_partitions(items: list, k: int):
    """Every partition of `items` into exactly k non-empty blocks (independent recursive enumeration)."""
    if not items:
        if k == 0:
            yield []
        return
    first, rest = items[0], items[1:]
    for part in _set_partitions(rest, k - 1):
        yield [[first], *part]
    for part in _set_partitions(rest, k):
        for i in range(len(part)):
            yield [*part[:i], [first, *part[i]], *part[i + 1:]]


def test_best_groupings_visits_every_partition_exactly_once(monkeypatch):
    visited = []
    original = results._not_canonical

    def spy(labels):
        skip = original(labels)
        if not skip:
            visited.append(labels)
        return skip

    monkeypatch.setattr(results, "_not_canonical", spy)
    tasks = list("abcde")
    best_groupings(tasks, [[0.0] * 5 for _ in range(5)], 3)
    as_sets = [frozenset(frozenset(t for t, g in zip(tasks, labels) if g == grp) for grp in set(labels))
               for labels in visited]
    assert len(as_sets) == 25 == len(set(as_sets))  # Stirling S(5, 3) = 25
    assert set(as_sets) == {frozenset(frozenset(b) for b in p) for p in _set_partitions(tasks, 3)}
    assert sum(1 for _ in _set_partitions(list("abcdef"), 2)) == 31  # the reference enumeration itself: S(6,2)


@pytest.mark.parametrize("n,k", [(4, 2), (5, 2), (5, 3), (6, 3)])
def test_best_groupings_matches_brute_force(n, k):
    rng = random.Random(n * 10 + k)
    tasks = [f"t{i}" for i in range(n)]
    z = [[rng.uniform(-1, 1) for _ in range(n)] for _ in range(n)]
    pos = {t: i for i, t in enumerate(tasks)}

    def score(part):
        s = 0.0
        for block in part:
            for j in block:
                mates = [i for i in block if i != j]
                if mates:
                    s += sum(z[pos[i]][pos[j]] for i in mates) / len(mates)
        return s

    best = max(score(p) for p in _set_partitions(tasks, k))
    groups, got = best_groupings(tasks, z, k)
    assert got == pytest.approx(best)
    assert len(groups) == k and sorted(itertools.chain(*groups)) == sorted(tasks)
    assert score(groups) == pytest.approx(got)


# --- serialisation -----------------------------------------------------------------------------------------------


def test_lab_result_round_trip_through_json():
    runs = _two_seed_runs()
    table = strategy_table(runs, ["x", "y"])
    best, words = verdict(table)
    res = LabResult(config={"strategies": ["equal", "pcgrad"], "seeds": 2}, budget={"name": "quick", "steps": 80},
                    tasks=["x", "y"], runs=runs, table=table, best=best, beats_equal=words,
                    conflict={"run": "equal/s0", "steps": [1, 2], "pairs": {"x|y": [0.5, -0.1]}, "fraction": [0, 1]},
                    affinity={"run": "equal/s0", "tasks": ["x", "y"], "matrix": [[0.1, 0.2], [0.3, 0.4]],
                              "groups": {}},
                    tensorboard="/tmp/tb")
    data = json.loads(json.dumps(res.to_dict()))
    back = LabResult.from_dict(data)
    assert back == res
    assert isinstance(back.runs[0], RunResult) and isinstance(back.table[0], TableRow)
    assert back.runs[6].status == "failed" and back.runs[6].error == "boom" and back.runs[0].key == "single_task/s0"
    assert LabResult.from_dict({"config": {}, "budget": {}, "tasks": []}) == LabResult({}, {}, [], [])


def test_metric_name():
    assert metric_name("equal/s0", "cos") == "equal/s0:cos"
    long = metric_name("x" * 70, "dev")
    assert len(long) == 64 and long == ("x" * 70)[:64]


# --- validation --------------------------------------------------------------------------------------------------


def test_lab_config_validation():
    with pytest.raises(ValueError, match="unknown.*'nope'"):
        LabConfig(strategies=["equal", "nope"])
    with pytest.raises(ValueError, match="at least one strategy"):
        LabConfig(strategies=[])
    for seeds in (0, 4):
        with pytest.raises(ValueError, match="seeds"):
            LabConfig(seeds=seeds)
    with pytest.raises(ValueError, match="custom budget needs steps"):
        LabConfig(budget="custom")
    with pytest.raises(ValueError, match="custom budget needs steps"):
        LabConfig(budget="custom", steps=0)
    with pytest.raises(ValueError, match="budget"):
        LabConfig(budget="huge")
    with pytest.raises(ValueError, match="at least two tasks"):
        LabConfig(tasks=["only"])
    for seeds in (1, 2, 3):
        LabConfig(seeds=seeds)
    LabConfig(tasks=["a", "b"])


def test_resolved_budget():
    assert LabConfig(budget="quick").resolved_budget() is BUDGETS["quick"]
    assert LabConfig(budget="default").resolved_budget() is BUDGETS["default"]
    custom = LabConfig(budget="custom", steps=30).resolved_budget()
    assert custom.name == "custom" and custom.steps == 30 and custom.probe_every == 5
    assert custom.batch_size == BUDGETS["quick"].batch_size and custom.test_cap == BUDGETS["quick"].test_cap
    assert LabConfig(budget="custom", steps=3).resolved_budget().probe_every == 1


@pytest.mark.parametrize("kwargs,field", [
    ({"steps": 0}, "steps"), ({"steps": 5, "batch_size": 0}, "batch_size"),
    ({"steps": 5, "max_length": 7}, "max_length"), ({"steps": 5, "max_length": 513}, "max_length"),
    ({"steps": 5, "probe_every": -1}, "probe_every"),
])
def test_budget_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Budget("b", **kwargs)


def test_budget_bounds_accepted():
    Budget("b", steps=1, batch_size=1, max_length=8, probe_every=0)
    Budget("b", steps=1, max_length=512)


def test_every_strategy_builds_a_valid_training_config():
    from mtl_core.model.modeling import ModelConfig
    from mtl_core.train.loop import TrainConfig

    for s in STRATEGIES.values():
        TrainConfig(**s.train)
        ModelConfig(**s.model)
        assert s.family in FAMILIES and s.about


def test_a_task_near_zero_in_one_seeds_baseline_is_left_out_of_every_seed():
    def run(strategy, seed, a, ner):
        return RunResult(strategy, "baseline" if strategy == BASELINE else "weighting", seed, {"a": a, "ner": ner},
                         {}, 0.0, 0, 1.0, 1.0, 1.0)

    runs = [run(BASELINE, 0, 1.0, 0.0), run(BASELINE, 1, 1.0, 0.04), run("equal", 0, 1.1, 0.0), run("equal", 1, 1.1, 0.0)]
    (row,) = [r for r in strategy_table(runs, ["a", "ner"]) if r.strategy == "equal"]
    assert row.delta_m == pytest.approx(10.0) and row.delta_m_std == pytest.approx(0.0)
