"""A finished (or failed, or running) lab job in the store, with a schema-correct result: Lab page tests."""

from __future__ import annotations

import os

from mtl_core.lab.config import STRATEGIES
from mtl_core.lab.results import (
    BASELINE,
    LabResult,
    RunResult,
    best_groupings,
    metric_name,
    strategy_table,
    verdict,
)
from mtl_core.store import add_job_metric, create_job, finish_job, start_job
from mtl_core.store.db import open_store

TASKS = ["sentiment", "topic", "spam"]
SCORES = {BASELINE: 0.80, "equal": 0.81, "pcgrad": 0.84, "upgrad": 0.82}  # pcgrad wins


def a_run(strategy: str, seed: int, status: str = "done") -> RunResult:
    base = SCORES[strategy] + 0.01 * seed
    family = "baseline" if strategy == BASELINE else STRATEGIES[strategy].family
    return RunResult(strategy=strategy, family=family, seed=seed,
                     test={t: base + 0.02 * i for i, t in enumerate(TASKS)} if status == "done" else {},
                     metric={t: "accuracy" for t in TASKS}, dev_average=base, best_step=100, wall_s=30.0 + seed,
                     samples_per_s=50.0, step_s=0.2 if strategy != "pcgrad" else 0.3, status=status,
                     error="" if status == "done" else "RuntimeError: out of memory")


def lab_result(runs: list[RunResult]) -> dict:
    table = strategy_table(runs, TASKS)
    best, sentence = verdict(table)
    matrix = [[0.0, 0.4, -0.2], [0.3, 0.0, -0.1], [-0.2, -0.3, 0.0]]
    groups = {str(n): dict(zip(("groups", "score"), best_groupings(TASKS, matrix, n))) for n in (2, 3)}
    steps = [25, 50, 75]
    pairs = {"sentiment|topic": [0.3, 0.1, -0.1], "sentiment|spam": [-0.2, -0.3, 0.1], "topic|spam": [0.2, 0.2, 0.1]}
    fraction = [sum(c[i] < 0 for c in pairs.values()) / len(pairs) for i in range(len(steps))]
    return LabResult(
        config={"strategies": ["equal", "pcgrad", "upgrad"], "seeds": 2, "budget": "quick"}, budget={"steps": 75},
        tasks=TASKS, runs=runs, table=table, best=best, beats_equal=sentence,
        conflict={"run": "equal/s0", "steps": steps, "pairs": pairs, "fraction": fraction},
        affinity={"run": "equal/s0", "tasks": TASKS, "matrix": matrix, "groups": groups},
        tensorboard="/tmp/ws/lab/1/tensorboard").to_dict()


def add_lab(home, status: str = "done", result: dict | None = None, message: str = "finished") -> int:
    """A lab job row that ended with `status`, with dev and conflict metrics for two runs."""
    _, sessions = open_store(home)
    with sessions() as s:
        params = {"lab": {"strategies": ["equal", "pcgrad", "upgrad"], "seeds": 2, "budget": "quick",
                          "steps": None, "tasks": TASKS, "task_file": None}}
        job_id = create_job(s, "lab", params=params).id
        start_job(s, job_id, pid=os.getpid())
        for run in ("equal/s0", "pcgrad/s0"):
            for step in (25, 50):
                for task in TASKS:
                    add_job_metric(s, job_id, step, metric_name(run, "dev"), 0.5 + step / 100, task=task)
                add_job_metric(s, job_id, step, metric_name(run, "conflict"), 0.3)
        if status != "running":
            finish_job(s, job_id, status=status, result=result, message=message)
    return job_id


def all_runs() -> list[RunResult]:
    return [a_run(name, seed) for name in SCORES for seed in (0, 1)]
