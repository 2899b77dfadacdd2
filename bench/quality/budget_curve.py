"""What does a task's test metric buy per CPU minute? One long single-task run, test metric every few steps.

    python bench/quality/budget_curve.py                       # sentiment, 4 epochs, unfrozen, lr 5e-5
    python bench/quality/budget_curve.py --task ner --steps 1200 --every 100

The test split stands in for the periodic dev evaluation of the training loop, so each point is the test
metric of the weights at that step (nothing is selected on it: the curve is reported whole). The x axis is
the training loop's own elapsed wall time and the process CPU time at that evaluation, evaluation included.
Used for issue 17's question "can sentiment reach 0.85 in the 15-minute budget?" (docs/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `mtl_core` importable

import torch  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from mtl_core.model.modeling import ModelConfig, build_model, default_encoder_dir  # noqa: E402
from mtl_core.progress import Reporter  # noqa: E402
from mtl_core.train.loop import TrainConfig, set_seed, train  # noqa: E402
from mtl_core.train.pipeline import prepare  # noqa: E402


class CurveReporter(Reporter):
    """Keeps (step, wall s, CPU s, metric) at every evaluation."""

    def __init__(self, task: str):
        self.task, self.t0, self.c0, self.points = task, time.perf_counter(), time.process_time(), []

    def progress(self, step, total, message=""):
        pass

    def log(self, line):
        pass

    def check_cancelled(self):
        pass

    def metric(self, step, name, value, task=None):
        if name == "dev" and task == self.task:
            self.points.append({"step": step, "wall_s": time.perf_counter() - self.t0,
                                "cpu_s": time.process_time() - self.c0, "test": value})
            print(f"  step {step}: test {value:.4f} after {self.points[-1]['wall_s'] / 60:.1f} min", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="sentiment")
    ap.add_argument("--steps", type=int, default=1280)
    ap.add_argument("--every", type=int, default=80)
    ap.add_argument("--recipe", default='{"freeze_layers": 0, "encoder_lr": 5e-5}',
                    help="TrainConfig overrides as JSON")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", help="also write the points here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    task_file, prepared = prepare()
    spec = task_file.by_name(args.task)
    splits = prepared[args.task]
    # the test split in the dev slot: each evaluation of the loop is then a test point of the curve
    curve_data = {args.task: {"train": splits["train"], "dev": splits["test"]}}
    tokenizer = AutoTokenizer.from_pretrained(default_encoder_dir())
    set_seed(0)
    model = build_model([spec], ModelConfig())
    recipe = json.loads(args.recipe)
    cfg = TrainConfig(**{"steps": args.steps, "eval_every": args.every, "tasks": [args.task], "max_dev": None,
                         **recipe})
    reporter = CurveReporter(args.task)
    train(model, tokenizer, type(task_file)(tasks=[spec]), curve_data, cfg, reporter=reporter, progress=False)
    n_train = len(splits["train"])
    print(f"\n{args.task} alone, recipe {recipe}, batch {cfg.batch_size}, {n_train} training texts; primary test metric\n")
    print("| step | epochs | wall min | CPU min | test |\n|---|---|---|---|---|")
    for p in reporter.points:
        print(f"| {p['step']} | {p['step'] * cfg.batch_size / n_train:.2f} | {p['wall_s'] / 60:.1f} | "
              f"{p['cpu_s'] / 60:.1f} | {p['test']:.4f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(reporter.points, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
