"""The multi-task lab on the six default tasks: which strategy wins, where gradients conflict, which tasks help which.

    python bench/quality/lab.py                                   # every strategy, 1 seed, quick budget (~40 min)
    python bench/quality/lab.py --strategies equal pcgrad upgrad --seeds 3
    python bench/quality/lab.py --budget custom --steps 320 --strategies equal upgrad famo   # a bigger budget
    python bench/quality/lab.py --from-json lab.json              # re-render a saved run
    python bench/quality/lab.py --strategies equal upgrad --seeds 2 --first-seed 1 --json more.json
    python bench/quality/lab.py --from-json lab.json more.json    # ... merged with seed 0 of the first
    ... --write-docs                                              # the section in docs/LAB.md + the PNGs in docs/

Runs `mtl_core.lab.experiment.run_lab` (what the Lab page and `python -m mtl_core lab` run) on the workspace
$MTL_STUDIO_HOME; prints the strategy table (Δm% against single-task baselines trained at the same per-task
budget), the verdict against equal weighting, the lab's wall time, the conflict and affinity summaries.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import environment  # noqa: E402
from bench.results_doc import replace_section  # noqa: E402

DOC = Path(__file__).resolve().parents[2] / "docs" / "LAB.md"


def main() -> None:
    from mtl_core.lab.config import STRATEGIES

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strategies", nargs="+", default=["all"], help=f"'all' or any of: {' '.join(STRATEGIES)}")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--first-seed", type=int, default=0, help="more seeds for an earlier run (then --merge both)")
    ap.add_argument("--budget", default="quick", choices=["quick", "default", "custom"])
    ap.add_argument("--steps", type=int)
    ap.add_argument("--json", help="save the result here")
    ap.add_argument("--from-json", nargs="+", help="render saved runs instead of running (several: merged, e.g. "
                                                   "seed 0 of one run and seeds 1-2 of another)")
    ap.add_argument("--only", nargs="+", help="with --from-json: keep only these strategies (and the baselines)")
    ap.add_argument("--write-docs", action="store_true", help="write docs/LAB.md's section and the PNGs in docs/")
    ap.add_argument("--heading", default=None, help="the docs section's heading (default: from the settings)")
    args = ap.parse_args()

    from mtl_core.lab.config import LabConfig
    from mtl_core.lab.experiment import run_lab
    from mtl_core.lab.results import LabResult

    if args.from_json:
        saved = [json.loads(Path(p).read_text(encoding="utf-8")) for p in args.from_json]
        # the bench's own JSON wraps the result; `python -m mtl_core lab --json` writes it bare
        results = [LabResult.from_dict(d.get("result", d)) for d in saved]
        if args.only:
            from dataclasses import replace

            from mtl_core.lab.results import BASELINE

            keep = {*args.only, BASELINE}
            results = [replace(r, runs=[x for x in r.runs if x.strategy in keep],
                               config={**r.config, "strategies": [x for x in r.config["strategies"] if x in keep]},
                               conflict={**r.conflict, "by_run": {k: v for k, v in (r.conflict.get("by_run") or {}).items()
                                                                  if k.split("/")[0] in keep}})
                       for r in results]
        result = merge(results)
        wall, env = sum(d.get("wall_s", 0.0) for d in saved), saved[0].get("environment", "")
    else:
        strategies = list(STRATEGIES) if args.strategies == ["all"] else args.strategies
        cfg = LabConfig(strategies=strategies, seeds=args.seeds, first_seed=args.first_seed, budget=args.budget,
                        steps=args.steps)
        env = environment()
        t0 = time.perf_counter()
        result = run_lab(cfg)
        wall = time.perf_counter() - t0
        if args.json:
            Path(args.json).write_text(json.dumps({"result": result.to_dict(), "wall_s": wall, "environment": env}),
                                       encoding="utf-8")
    text = report(result, wall, env)
    print(text)
    if args.write_docs:
        tag = f"{result.budget['name']}-{result.config['seeds']}seed"
        images = draw(result, DOC.parent / f"lab_{tag}")
        links = "\n".join(f"![{p.stem}]({p.name})" for p in images)
        heading = args.heading or (f"## {len(result.table) - 1} strategies, {result.budget['name']} budget, "
                                   f"{result.config['seeds']} seed(s)")
        replace_section(heading, text + "\n\n" + links, path=DOC)
        print(f"wrote {DOC} ({heading}) and {', '.join(str(p) for p in images)}")


def merge(results: list):
    """One result from one or several runs of the same budget (a (strategy, seed) seen twice: the first kept);
    the table, verdict and Δm% exclusions recomputed with today's code; conflict and affinity from the first."""
    from dataclasses import replace

    from mtl_core.lab.results import BASELINE, excluded_from_delta, strategy_table, verdict

    seen, runs = set(), []
    for r in (run for res in results for run in res.runs):
        if (r.strategy, r.seed) not in seen:
            seen.add((r.strategy, r.seed))
            runs.append(r)
    first = results[0]
    table = strategy_table(runs, first.tasks)
    best, words = verdict(table)
    seeds = len({r.seed for r in runs})
    config = {**first.config, "seeds": seeds,
              "strategies": list(dict.fromkeys(s for res in results for s in res.config["strategies"]))}
    excluded = sorted({t for r in runs if r.strategy == BASELINE for t in excluded_from_delta(r.test)})
    return replace(first, config=config, runs=runs, table=table, best=best, beats_equal=words, excluded=excluded)


def report(result, wall: float, env: str) -> str:
    from mtl_core.cli.lab import render_table

    b = result.budget
    seeds = result.config["seeds"]
    lines = [f"`{_command(result)}` — {env.lstrip('# ')}", "",
             f"Budget {b['name']}: {b['steps']} steps x batch {b['batch_size']} (every task {b['batch_size'] // len(result.tasks)} "
             f"rows per joint step), texts cut at {b['max_length']} tokens, dev {b['dev_cap']} / test {b['test_cap']} "
             f"examples per task; {seeds} seed(s). **Lab wall time: {wall / 60:.1f} min** "
             f"({sum(r.strategy != 'single_task' for r in result.runs)} strategy runs, plus the single-task "
             "baselines: trained, or reused from the workspace's cache).", "", render_table(result), ""]
    conflict = result.conflict or {}
    if conflict.get("fraction"):
        lines.append(f"Conflicting gradient pairs ({conflict['run']}), per probe: "
                     + ", ".join(f"step {s}: {f:.0%}" for s, f in zip(conflict["steps"], conflict["fraction"], strict=True)))
        worst = sorted(((sum(v) / len(v), k) for k, v in conflict["pairs"].items()))[:3]
        lines.append("Most conflicting pairs (mean cosine): " + ", ".join(f"{k.replace('|', ' vs ')} {m:+.3f}"
                                                                          for m, k in worst))
    by_run = conflict.get("by_run") or {}
    if by_run:
        lines.append("Mean conflicting fraction per run: " + ", ".join(
            f"{k} {sum(v['fraction']) / len(v['fraction']):.0%}" for k, v in by_run.items() if v["fraction"]))
    aff = result.affinity or {}
    if aff.get("matrix"):
        tasks, m = aff["tasks"], aff["matrix"]
        pairs = sorted(((m[i][j], f"{tasks[i]} → {tasks[j]}") for i in range(len(tasks)) for j in range(len(tasks))
                        if i != j), reverse=True)
        lines.append("Strongest help (TAG affinity, row → column): " + ", ".join(f"{p} {v:+.4f}" for v, p in pairs[:3]))
        lines.append("Strongest harm: " + ", ".join(f"{p} {v:+.4f}" for v, p in pairs[-3:]))
    return "\n".join(lines)


def _command(result) -> str:
    c = result.config
    parts = ["python bench/quality/lab.py", f"--budget {c['budget']}"]
    if c.get("steps"):
        parts.append(f"--steps {c['steps']}")
    parts.append(f"--seeds {c['seeds']}")
    from mtl_core.lab.config import STRATEGIES

    if sorted(c["strategies"]) != sorted(STRATEGIES):
        parts.append("--strategies " + " ".join(c["strategies"]))
    return " ".join(parts)


def draw(result, stem: Path) -> list[Path]:
    from bench.quality.heatmap_png import save_heatmap
    from bench.quality.line_png import Panel, Series, save_chart

    out = []
    conflict = result.conflict or {}
    by_run = conflict.get("by_run") or {}
    if by_run:
        runs = [Series(k, v["steps"], [100 * f for f in v["fraction"]], [0.0] * len(v["steps"]))
                for k, v in by_run.items() if v["steps"]]
        ref = conflict.get("pairs") or {}
        small = [Panel(k.replace("|", " vs "), [Series("cos", conflict["steps"], v, [0.0] * len(v))], x_label="step")
                 for k, v in ref.items()]
        out.append(save_chart(f"{stem}_conflict.png",
                              Panel("conflicting gradient pairs (%), every run", runs, "step", "% of pairs cos < 0"),
                              small, columns=5))
    aff = result.affinity or {}
    if aff.get("matrix"):
        tasks = aff["tasks"]
        m = [[None if i == j else aff["matrix"][i][j] for j in range(len(tasks))] for i in range(len(tasks))]
        out.append(save_heatmap(f"{stem}_affinity.png", tasks, m, f"task affinity (TAG lookahead), {aff['run']}",
                                "the task stepped on", "the task whose loss changed"))
    return out


if __name__ == "__main__":
    main()
