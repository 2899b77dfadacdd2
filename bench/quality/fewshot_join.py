"""A held-out task joined to the shared model in a round: its test accuracy vs its few-shot head, and what
every old task loses.

    python bench/quality/fewshot_join.py --bases spam=/tmp/heldout_spam question_type=/tmp/heldout_question_type \
        topic=/tmp/heldout_topic [--k 8] [--draw 0] [--steps 100] [--set FIELD=VALUE ...]

The same protocol as bench/quality/fewshot.py (bases trained without the task; k labelled examples per class
from its train split, stored as a new task's labels): `tasks add` + the few-shot head, then a default round
with `RoundConfig(new_tasks=[...])` (the Train page's "Join new tasks"). The new task is scored on the held-out
task's whole test split; the old tasks' deltas come from the round's own comparison on their test splits (the
base's untrained head of the held-out task is left out). Results: docs/RESULTS.md, "Few-shot new tasks".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import environment, round_overrides, table  # noqa: E402
from bench.quality.fewshot import draw  # noqa: E402
from mtl_core.data import prepare_all  # noqa: E402
from mtl_core.data.workspace_tasks import add_task, load_workspace_tasks  # noqa: E402
from mtl_core.model.registry import Registry  # noqa: E402
from mtl_core.progress import PrintReporter  # noqa: E402
from mtl_core.review.fewshot_fit import refit  # noqa: E402
from mtl_core.review.new_task import store_rows  # noqa: E402
from mtl_core.rounds.config import RoundConfig  # noqa: E402
from mtl_core.rounds.finetune import run_round  # noqa: E402
from mtl_core.serve.predictor import Predictor, load_active_predictor  # noqa: E402
from mtl_core.store.db import open_store  # noqa: E402
from mtl_core.tasks import TaskSpec, load_task_file  # noqa: E402
from mtl_core.workspace import data_cache_dir  # noqa: E402


def join_one(task: str, home: Path, k: int, d: int, settings: dict) -> dict:
    predictor = load_active_predictor(home)
    spec = load_task_file().by_name(task)
    test = prepare_all(load_task_file(), data_cache_dir(home), seed=0)[task]["test"]
    train = prepare_all(load_task_file(), data_cache_dir(home), seed=0)[task]["train"]
    shots = draw(train, spec.labels, k, seed=1000 * k + d)
    name = f"{task}_join_k{k}_d{d}_{int(time.time())}"
    new = TaskSpec(name=name, kind="classification", labels=spec.labels)
    if name not in {t.name for t in load_workspace_tasks(home, predictor.task_file).tasks}:
        add_task(new, home, predictor.task_file)
    _, sessions = open_store(home)
    with sessions() as s:
        store_rows(s, name, [(e.text, e.label) for e in shots], "bench")
        fitted = refit(home, predictor, new, s)
    predictor.refresh_fewshot(home, {name})
    texts = [e.text for e in test]
    fewshot_acc = float(np.mean([p.tasks[name].label == e.label for p, e in zip(predictor.predict(texts), test)]))
    t0 = time.perf_counter()
    result = run_round(home, predictor.version, RoundConfig(new_tasks=[name], **settings), sessions=sessions,
                       reporter=PrintReporter())
    seconds = time.perf_counter() - t0
    joined = Predictor.from_dir(Registry(home).path_of(result.version), version=result.version)
    joined_acc = float(np.mean([p.tasks[name].label == e.label for p, e in zip(joined.predict(texts), test)]))
    deltas = {t: row["delta"] for t, row in result.comparison["test"]["tasks"].items()
              if row.get("delta") is not None and t != task}
    return {"task": task, "labels": fitted.n_labels, "fewshot": fewshot_acc, "joined": joined_acc,
            "round_s": seconds, "deltas": deltas, "version": result.version}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bases", nargs="+", required=True)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--draw", type=int, default=0)
    p.add_argument("--steps", type=int, default=RoundConfig().steps)
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="override RoundConfig fields, e.g. --set distill_focal=5")
    args = p.parse_args()
    settings = round_overrides(args.set, args.steps)
    print(environment())
    rows = []
    for task, home in (b.split("=", 1) for b in args.bases):
        r = join_one(task, Path(home), args.k, args.draw, settings)
        worst = min(r["deltas"].items(), key=lambda kv: kv[1])
        rows.append([task, r["labels"], f"{r['fewshot']:.3f}", f"{r['joined']:.3f}", f"{r['round_s']:.0f}",
                     f"{worst[0]} {worst[1] * 100:+.1f}",
                     ", ".join(f"{t} {v * 100:+.1f}" for t, v in r["deltas"].items())])
        print(f"# {task} done ({r['version']})", flush=True)
    print(table(["held-out task", "labels", "few-shot head", "after join round", "round s", "worst old task (points)",
                 "old tasks' deltas (points)"], rows, f"join round, k={args.k}, draw {args.draw}, {args.steps} steps"
                 + (f"; {' '.join(args.set)}" if args.set else "")))


if __name__ == "__main__":
    main()
