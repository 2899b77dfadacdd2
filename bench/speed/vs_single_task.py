"""One multi-task Predictor vs six single-task models answering the same six tasks on the same texts.

    nice -n 19 python bench/speed/vs_single_task.py [--quick] [--threads N] [--repeats R] [--n-texts N]

Baseline: one transformers model per task from the same encoder dir (SDPA attention), num_labels set
from the task file: AutoModelForSequenceClassification x5 (the regression task with num_labels=1) and
AutoModelForTokenClassification x1. Their heads are untrained: speed and size do not depend on training.
Each baseline model tokenises the batch itself (`tokenizer(..., padding=True, truncation=True)`), runs
its forward and takes a softmax/argmax; the Predictor does one tokenisation, one encoder forward, six
heads and full decoding (so the comparison favours the baseline). Both use the same length-sorted batches.
Targets: Predictor >= 4.5x faster; its weights <= 1/4 of the six models' weights (parameter bytes).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `bench` and `mtl_core` importable

from bench import common  # isort: skip  (first: it sets the offline defaults before transformers loads)
import torch
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

TARGET_SPEEDUP = 4.5
TARGET_MEMORY = 0.25


def single_task_models(task_file, encoder_dir: str) -> dict[str, torch.nn.Module]:
    models = {}
    for spec in task_file.tasks:
        if spec.kind == "token_classification":
            cls, extra = AutoModelForTokenClassification, {}
        else:
            cls = AutoModelForSequenceClassification
            extra = {"problem_type": "regression"} if spec.kind == "regression" else {}
        models[spec.name] = cls.from_pretrained(encoder_dir, num_labels=spec.n_outputs, attn_implementation="sdpa",
                                                **extra).eval()
    return models


def main() -> None:
    args, loaded, texts = common.text_bench(__doc__.splitlines()[0], repeats=3, n_texts=128, quick_n_texts=32)
    pred = loaded.predictor
    n = len(texts)
    tok, max_len = pred.tokenizer, pred.max_length
    models = single_task_models(pred.task_file, loaded.encoder_dir)
    print(f"# baseline: {len(models)} single-task models: "
          + ", ".join(f"{name} ({type(m).__name__}, {m.config.num_labels} out)" for name, m in models.items()))

    rows, speedups = [], {}
    for bs in args.batch_sizes:
        batches = common.sorted_batches(texts, bs)

        @torch.inference_mode()
        def six_models(batches=batches):
            for b in batches:
                for model in models.values():
                    enc = tok(b, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
                    logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
                    logits.float().softmax(-1).argmax(-1).numpy()

        def one_predictor(bs=bs):
            pred.predict(texts, batch_size=bs)

        t = common.compare({"6 single-task models": six_models, "multi-task Predictor": one_predictor}, args.repeats)
        base = t["6 single-task models"].median
        speedups[bs] = base / t["multi-task Predictor"].median
        for name, tm in t.items():
            rows.append([bs, name, 1000 * tm.median / n, n / tm.median, base / tm.median, f"{100 * tm.spread:.0f}%"])
    print(common.table(["batch", "what", "ms/text", "texts/s", "speed-up vs 6 models", "spread"], rows,
                       "Speed: six single-task models vs one multi-task Predictor (all six tasks answered)"))

    six_bytes = sum(common.param_bytes(m) for m in models.values())
    one_bytes = common.param_bytes(pred.model)
    mem_rows = [[name, f"{common.param_bytes(m) / 2**20:.1f}"] for name, m in models.items()]
    mem_rows.append(["6 single-task models, total", f"{six_bytes / 2**20:.1f}"])
    mem_rows.append(["multi-task model (encoder + 6 heads)", f"{one_bytes / 2**20:.1f}"])
    print(common.table(["weights", "MiB (parameter bytes, fp32)"], mem_rows, "Weights in memory"))
    print()
    for bs, s in speedups.items():
        print(f"batch {bs}: Predictor {s:.2f}x faster than 6 models (target >= {TARGET_SPEEDUP}x): "
              f"{common.verdict(s >= TARGET_SPEEDUP)}")
    frac = one_bytes / six_bytes
    print(f"weights: multi-task = {frac:.3f} of the 6 models (1/{1 / frac:.1f}; target <= 1/4): "
          f"{common.verdict(frac <= TARGET_MEMORY)}")


if __name__ == "__main__":
    main()
