"""`python -m mtl_core lab`: a multi-task lab experiment in the terminal (the Lab page runs the same in the worker)."""

from __future__ import annotations

import json
import time

from mtl_core.lab.config import BUDGETS, STRATEGIES


def add_parser(sub) -> None:
    lab = sub.add_parser("lab", help="compare training strategies (weighting, gradient aggregation, sharing, "
                                     "sampling) against single-task baselines; gradient conflict, task affinity")
    lab.add_argument("--strategies", nargs="+", default=["equal", "pcgrad", "upgrad"],
                     help=f"any of: {' '.join(STRATEGIES)}; 'all' = every one")
    lab.add_argument("--seeds", type=int, default=1, help="runs per strategy (1-3)")
    lab.add_argument("--first-seed", type=int, default=0, help="seeds start here (more seeds for an earlier lab)")
    lab.add_argument("--budget", default="quick", choices=[*BUDGETS, "custom"])
    lab.add_argument("--steps", type=int, help="custom budget: steps per run")
    lab.add_argument("--tasks", nargs="+", help="a subset of the task file's tasks")
    lab.add_argument("--task-file", help="default: the workspace's task file, else the built-in one")
    lab.add_argument("--encoder", default="", help="a local Hugging Face encoder dir (default: the bundled MiniLM)")
    lab.add_argument("--json", help="also write the whole result as JSON to this file")


def cmd_lab(args) -> int:
    from mtl_core.lab.config import LabConfig
    from mtl_core.lab.experiment import run_lab

    strategies = list(STRATEGIES) if args.strategies == ["all"] else args.strategies
    try:
        cfg = LabConfig(strategies=strategies, seeds=args.seeds, first_seed=args.first_seed, budget=args.budget,
                        steps=args.steps,
                        tasks=args.tasks, task_file=args.task_file, encoder=args.encoder)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    result = run_lab(cfg, args.home, _RunLines())
    print(render_table(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result.to_dict(), f, indent=1)
    return 0


class _RunLines:
    """The terminal's reporter: a line per finished run, and where training stands once a minute (a
    default-budget run is ~25 min on a CPU; the step-by-step bar is the Lab page's)."""

    EVERY_S = 60.0

    def __init__(self) -> None:
        self._last = time.monotonic()

    def progress(self, step: int, total: int | None = None, message: str | None = None) -> None:
        now = time.monotonic()
        if message and now - self._last >= self.EVERY_S:
            self._last = now
            share = f" (lab {100 * step / total:.0f}%)" if total else ""
            print(f"  {message}{share}", flush=True)

    def log(self, line: str) -> None:
        print(line, flush=True)

    def metric(self, step: int, name: str, value: float, task: str | None = None) -> None:
        pass

    def check_cancelled(self) -> None:
        pass


def render_table(result) -> str:
    """The strategy table as Markdown (also what bench/quality/lab.py writes to docs/LAB.md)."""
    tasks = result.tasks
    lines = ["| strategy | family | Δm% | " + " | ".join(tasks) + " | s/step ×equal | samples/s |",
             "|---|---|---|" + "---|" * len(tasks) + "---|---|"]
    for row in result.table:
        name = f"**{row.strategy}**" if row.strategy == result.best else row.strategy
        dm = "–" if row.delta_m is None else f"{row.delta_m:+.2f}" + (f" ± {row.delta_m_std:.2f}" if row.seeds > 1 else "")
        cells = [f"{row.mean[t]:.3f}" + (f" ± {row.std[t]:.3f}" if row.seeds > 1 else "") if t in row.mean else "–"
                 for t in tasks]
        cost = "–" if row.step_cost is None else f"{row.step_cost:.2f}"
        lines.append(f"| {name} | {row.family} | {dm} | " + " | ".join(cells) + f" | {cost} | {row.samples_per_s:.0f} |")
    if result.excluded:
        lines.append(f"\nΔm% leaves out {', '.join(result.excluded)}: its single-task baseline is ~0")
    failed = [r for r in result.runs if r.status != "done"]
    lines += [f"\nfailed: {r.strategy} seed {r.seed}: {r.error}" for r in failed]
    if result.beats_equal:
        lines.append(f"\n{result.beats_equal}")
    groups = (result.affinity or {}).get("groups", {})
    for g, found in groups.items():
        lines.append(f"best split into {g} encoders (TAG affinity): " + " / ".join("+".join(x) for x in found["groups"]))
    if result.tensorboard:
        lines.append(f"TensorBoard: tensorboard --logdir {result.tensorboard}")
    return "\n".join(lines)
