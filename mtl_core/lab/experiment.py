"""A lab experiment end to end: every strategy x seed, the single-task baselines (cached), the table, the verdict.

Runs in the worker (`lab_job`, job kind "lab") or in the terminal (`python -m mtl_core lab`).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path

from mtl_core.lab.config import STRATEGIES, Budget, LabConfig, Strategy
from mtl_core.lab.probe import ProbeRecord
from mtl_core.lab.results import (
    BASELINE,
    LabResult,
    RunResult,
    best_groupings,
    excluded_from_delta,
    strategy_table,
    verdict,
)
from mtl_core.lab.runner import LabData, RunReporter, cap_splits, run_one
from mtl_core.progress import Cancelled, JobRun, PrintReporter, Reporter
from mtl_core.workspace import workspace_dir

MIN_TRAIN = 20  # a task with fewer training examples cannot take part (the Data page says how many it has)
REFERENCE = "equal"  # the run whose probes measure conflict and affinity (else the first strategy)


def lab_dir(home=None) -> Path:
    path = workspace_dir(home) / "lab"
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_data(cfg: LabConfig, budget: Budget, home=None, log=print) -> LabData:
    from transformers import AutoTokenizer

    from mtl_core.data.workspace_tasks import task_file_path
    from mtl_core.model.modeling import default_encoder_dir
    from mtl_core.tasks import DEFAULT_TASK_FILE
    from mtl_core.train.pipeline import prepare

    path = cfg.task_file or (task_file_path(home) if task_file_path(home).is_file() else DEFAULT_TASK_FILE)
    task_file, prepared = prepare(path, home)
    wanted = cfg.tasks or [t.name for t in task_file.tasks]
    names = []
    for name in wanted:
        n = len(prepared.get(name, {}).get("train", []))
        if n >= MIN_TRAIN and prepared[name].get("test"):
            names.append(name)
        else:
            log(f"{name}: left out ({n} training examples, {MIN_TRAIN} needed, and a test split)")
    if len(names) < 2:
        raise ValueError(f"a lab needs at least two tasks with {MIN_TRAIN}+ labelled examples; usable: {names}")
    capped = cap_splits(prepared, names, budget)
    encoder = cfg.encoder or default_encoder_dir()
    digest = hashlib.sha256(json.dumps([encoder, [t.to_dict() for t in task_file.tasks if t.name in names]],
                                       sort_keys=True, default=str).encode())
    for n in names:  # the examples themselves: new labels with the same counts are other data
        for split in sorted(capped[n]):
            for ex in capped[n][split]:
                digest.update(repr(ex).encode())
    fingerprint = digest.hexdigest()[:16]
    return LabData(type(task_file)(tasks=[task_file.by_name(n) for n in names]), capped,
                   AutoTokenizer.from_pretrained(encoder), fingerprint)


def plan(cfg: LabConfig, data: LabData, cached: dict) -> list[tuple[Strategy, int, list[str] | None]]:
    """(strategy, seed, tasks) per run; baselines one per task and seed, unless cached."""
    runs = [(STRATEGIES[s], seed, None) for s in cfg.strategies for seed in cfg.seed_list()]
    base = Strategy(BASELINE, "baseline")
    runs += [(base, seed, [t.name]) for seed in cfg.seed_list() for t in data.task_file.tasks
             if (t.name, seed) not in cached]
    return runs


def run_lab(cfg: LabConfig, home=None, reporter: Reporter | None = None, tb_folder: Path | None = None,
            device: str | None = None) -> LabResult:
    """Train every planned run; a run that fails is recorded (status "failed", its error) and the lab goes on."""
    from mtl_core.lab.tensorboard import write_run

    reporter = reporter or PrintReporter()
    budget = cfg.resolved_budget()
    reporter.progress(0, None, "preparing data")
    data = load_data(cfg, budget, home, log=reporter.log)
    names = [t.name for t in data.task_file.tasks]
    cache = _BaselineCache(lab_dir(home) / "baselines", budget, data.fingerprint)
    cached = {(n, seed): cache.get(n, seed) for n in names for seed in cfg.seed_list()}
    cached = {k: v for k, v in cached.items() if v is not None}
    todo = plan(cfg, data, cached)
    total = sum(budget.steps for _ in todo) or 1
    first = cfg.seed_list()[0]
    reference = next(((s.name, seed) for s, seed, t in todo if s.name == REFERENCE and seed == first),
                     (todo[0][0].name, first))
    tb_folder = tb_folder or lab_dir(home) / "tensorboard" / time.strftime("cli-%Y%m%d-%H%M%S")
    runs, probes, done = [], {}, 0
    for i, (strategy, seed, tasks) in enumerate(todo, 1):
        label = f"run {i}/{len(todo)}: {strategy.name}" + (f" ({tasks[0]})" if tasks else "") + f", seed {seed}"
        key = f"{strategy.name}/s{seed}" + (f"/{tasks[0]}" if tasks else "")
        sub = RunReporter(reporter, key, done, total, label)
        probe = "full" if (strategy.name, seed) == reference and not tasks else ("conflict" if not tasks else "none")
        try:
            run, record, history = run_one(strategy, seed, budget, data, sub, tasks, probe, device, cfg.encoder)
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - one broken configuration must not lose the others
            reporter.log(f"{label} failed: {type(exc).__name__}: {exc}")
            run, record, history = RunResult(strategy.name, strategy.family, seed, {}, {}, 0.0, 0, 0.0, 0.0, 0.0,
                                             status="failed", error=f"{type(exc).__name__}: {exc}"), None, []
        done += budget.steps
        reporter.check_cancelled()
        if tasks and run.status == "done":
            cache.put(tasks[0], seed, run)
        runs.append(run)
        if record is not None:
            probes[key] = record
        if run.status == "done":
            write_run(tb_folder, run if not tasks else _renamed(run, tasks[0]), history, record)
        reporter.log(f"{label}: {run.status}, test {', '.join(f'{k} {v:.3f}' for k, v in run.test.items())}")
    runs += [r for r in cached.values()]
    return _assemble(cfg, budget, names, _merge_baselines(runs, names), probes, f"{reference[0]}/s{reference[1]}",
                     tb_folder)


def _assemble(cfg, budget, names, runs, probes: dict[str, ProbeRecord], reference: str, tb_folder) -> LabResult:
    table = strategy_table(runs, names)
    best, words = verdict(table)
    ref = probes.get(reference)
    conflict = {"run": reference, "steps": ref.steps, "pairs": ref.pairs, "fraction": ref.fraction} if ref else {}
    by_run = {k: {"steps": p.steps, "fraction": p.fraction} for k, p in probes.items()}
    conflict["by_run"] = by_run
    affinity = {}
    matrix = ref.affinity() if ref else None
    if matrix:
        affinity = {"run": reference, "tasks": names, "matrix": matrix, "groups": {}}
        for g in (2, 3):
            if len(names) > g:
                groups, score = best_groupings(names, matrix, g)
                affinity["groups"][str(g)] = {"groups": groups, "score": score}
    baselines = [r.test for r in runs if r.strategy == BASELINE and r.status == "done"]
    excluded = sorted({t for b in baselines for t in excluded_from_delta(b)})
    return LabResult(config=asdict(cfg), budget=asdict(budget), tasks=names, runs=runs, table=table, best=best,
                     beats_equal=words, conflict=conflict, affinity=affinity, tensorboard=str(tb_folder),
                     excluded=excluded)


def _merge_baselines(runs: list[RunResult], names: list[str]) -> list[RunResult]:
    """One baseline run per seed with every task's single-task score (each trained alone)."""
    merged, rest = {}, []
    for r in runs:
        if r.strategy != BASELINE:
            rest.append(r)
            continue
        if r.status != "done":
            continue
        m = merged.setdefault(r.seed, RunResult(BASELINE, "baseline", r.seed, {}, {}, 0.0, 0, 0.0, 0.0, 0.0))
        m.test.update(r.test)
        m.metric.update(r.metric)
        m.wall_s += r.wall_s
        m.samples_per_s, m.step_s = r.samples_per_s, r.step_s
    return rest + list(merged.values())


def _renamed(run: RunResult, task: str) -> RunResult:
    from dataclasses import replace

    return replace(run, strategy=f"{BASELINE}_{task}")


class _BaselineCache:
    """Single-task results per (task, seed) for one budget and one data fingerprint: computed once."""

    def __init__(self, folder: Path, budget: Budget, fingerprint: str):
        fields = asdict(budget)
        if fields["dev_every"] is None:  # dev at the end: what budgets meant before the field (their caches stay)
            del fields["dev_every"]
        key = hashlib.sha256(json.dumps([fields, fingerprint], sort_keys=True).encode()).hexdigest()[:16]
        self.folder = folder / key

    def _path(self, task: str, seed: int) -> Path:
        return self.folder / f"{hashlib.sha256(task.encode()).hexdigest()[:12]}_s{seed}.json"

    def get(self, task: str, seed: int) -> RunResult | None:
        path = self._path(task, seed)
        try:
            return RunResult(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def put(self, task: str, seed: int, run: RunResult) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._path(task, seed).write_text(json.dumps(asdict(run)), encoding="utf-8")


def lab_job(ctx: JobRun) -> dict:
    """The worker's handler for job kind "lab": params {"lab": LabConfig fields}."""
    cfg = LabConfig(**(ctx.params or {}).get("lab", {}))
    tb = lab_dir(ctx.home) / "tensorboard" / f"job{getattr(ctx, 'job_id', 'x')}"
    result = run_lab(cfg, ctx.home, ctx, tb_folder=tb)
    ctx.progress(1, 1, f"done: best {result.best}" if result.best else "done")
    return result.to_dict()
