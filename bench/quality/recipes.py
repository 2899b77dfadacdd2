"""What buys a task accuracy at a fixed example budget? Single-task training recipes side by side.

    python bench/quality/recipes.py                     # sentiment: batch 32 vs 16, frozen vs unfrozen, lr
    python bench/quality/recipes.py --task ner --recipes '{"steps": 331}' '{"steps": 331, "freeze_layers": 0}'

Each recipe is a set of TrainConfig overrides; every run starts from the pretrained encoder with seed 0
and is scored on the test split (primary metric, and accuracy for classification). CPU seconds are the
process's (all threads); compare them only between runs on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `mtl_core` importable

from transformers import AutoTokenizer  # noqa: E402

from mtl_core.eval.metrics import evaluate  # noqa: E402
from mtl_core.model.modeling import ModelConfig, build_model, default_encoder_dir  # noqa: E402
from mtl_core.model.runner import ModelRunner  # noqa: E402
from mtl_core.train.loop import TrainConfig, set_seed, train  # noqa: E402
from mtl_core.train.pipeline import prepare  # noqa: E402

# ~0.9 epoch of the 10.2k sentiment training texts: what the default run's sampler gave sentiment at 1000 steps
SENTIMENT = [
    {"steps": 293, "batch_size": 32},
    {"steps": 586, "batch_size": 16},
    {"steps": 586, "batch_size": 16, "freeze_layers": 0, "encoder_lr": 5e-5},
    {"steps": 586, "batch_size": 16, "freeze_layers": 0, "encoder_lr": 1e-4},
]


def run(task: str, recipe: dict, task_file, prepared, tokenizer) -> dict:
    spec = task_file.by_name(task)
    one = type(task_file)(tasks=[spec])
    set_seed(recipe.get("seed", 0))
    model = build_model([spec], ModelConfig())
    cfg = TrainConfig(**{"tasks": [task], "eval_every": recipe.get("steps", TrainConfig.steps), **recipe})
    t0 = time.process_time()
    train(model, tokenizer, one, prepared, cfg, progress=False)
    cpu = time.process_time() - t0
    m = evaluate(ModelRunner.of(model, tokenizer, "cpu"), one, prepared, "test")["tasks"][task]
    row = {"recipe": recipe, "cpu_s": cpu, "primary": m["primary"], "accuracy": m.get("accuracy")}
    print(json.dumps(row), flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="sentiment")
    ap.add_argument("--recipes", nargs="+", type=json.loads, default=SENTIMENT, help="TrainConfig overrides (JSON)")
    args = ap.parse_args()
    task_file, prepared = prepare()
    tokenizer = AutoTokenizer.from_pretrained(default_encoder_dir())
    rows = [run(args.task, r, task_file, prepared, tokenizer) for r in args.recipes]
    print(f"\n{args.task} alone, test split\n\n| recipe (TrainConfig overrides) | CPU s | primary | accuracy |\n|---|---|---|---|")
    for r in rows:
        acc = "–" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
        print(f"| `{json.dumps(r['recipe'])}` | {r['cpu_s']:.0f} | {r['primary']:.4f} | {acc} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
