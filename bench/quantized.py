"""int8 dynamic quantization: speed of Predictor(quantize=True) vs fp32, and what it costs per task.

    nice -n 19 python bench/quantized.py [--quick] [--threads N] [--repeats R] [--n-texts N] [--max-test N]

Speed: the same texts through the fp32 Predictor and the int8 one (mtl_core.inference.quantize_dynamic:
torch dynamic quantization of the encoder's nn.Linear layers, int8 weights per output channel,
activations quantized per batch, 7-bit on x86 (fbgemm's reduce_range); attention math, LayerNorm, GELU
and the task heads stay fp32), batch 1 and 64.
Quality: mtl_core.evaluation.evaluate on the test splits, fp32 model vs the quantized model, primary
metric per task (macro-F1 / Pearson / entity F1) in points (x100). Label agreement: share of texts where
both models pick the same label (classification tasks) on the timing texts.
Targets: >= 1.5x faster; <= 1 point lost on every task. With an untrained model the metric part is
meaningless (random heads): re-run once a trained model is active.
"""

from __future__ import annotations

import random

import common

from mtl_core.evaluation import evaluate
from mtl_core.inference import Predictor

TARGET_SPEEDUP = 1.5
TARGET_POINTS = 1.0


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], repeats=5, quick_repeats=2)
    p.add_argument("--n-texts", type=int, default=None, help="timing texts (default 128; 32 with --quick)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    p.add_argument("--max-test", type=int, default=None,
                   help="random sample of test examples per task for the metric part (default: all; 100 with --quick)")
    p.add_argument("--no-metrics", action="store_true", help="speed only")
    args = p.parse_args()
    common.setup(args)
    n = args.n_texts or (32 if args.quick else 128)
    max_test = args.max_test or (100 if args.quick else None)

    loaded = common.load_predictor()
    fp32 = loaded.predictor
    int8 = Predictor(fp32.model, fp32.tokenizer, fp32.task_file, dict(fp32.meta), device="cpu",
                     version=fp32.version, quantize=True)  # quantize_dynamic copies: fp32 stays fp32
    task_file, prepared = common.prepared_data()
    texts = common.test_texts(n, args.seed, prepared)
    print(f"# model: {loaded.what}")
    print(f"# {common.describe_texts(fp32, texts)}; {args.repeats} repeats (median), 1 warm-up")
    size32, size8 = common.param_bytes(fp32.model), _state_bytes(int8.model)
    print(f"# weights: fp32 {size32 / 2**20:.0f} MiB, int8 model state {size8 / 2**20:.0f} MiB "
          "(embeddings, LayerNorms and task heads stay fp32)")

    rows, speedups = [], {}
    for bs in args.batch_sizes:
        t = common.compare({"fp32": lambda bs=bs: fp32.predict(texts, batch_size=bs),
                            "int8 dynamic": lambda bs=bs: int8.predict(texts, batch_size=bs)}, args.repeats)
        speedups[bs] = t["fp32"].median / t["int8 dynamic"].median
        for name, tm in t.items():
            rows.append([bs, name, 1000 * tm.median / n, n / tm.median, t["fp32"].median / tm.median,
                         f"{100 * tm.spread:.0f}%"])
    print(common.table(["batch", "model", "ms/text", "texts/s", "speed-up vs fp32", "spread"], rows,
                       "Speed: int8 dynamic quantization vs fp32 (full Predictor, all tasks)"))

    a, b = fp32.predict(texts), int8.predict(texts)
    agree = []
    for name in fp32.task_names:
        kind = fp32.model.tasks[name].kind
        if kind == "classification":
            same = sum(x.tasks[name].label == y.tasks[name].label for x, y in zip(a, b)) / len(texts)
            dprob = max(abs(x.tasks[name].score - y.tasks[name].probs[x.tasks[name].label]) for x, y in zip(a, b))
            agree.append([name, f"{100 * same:.1f}%", f"{dprob:.3f}"])
        elif kind == "regression":
            d = max(abs(x.tasks[name].value - y.tasks[name].value) for x, y in zip(a, b))
            agree.append([name, "(regression)", f"{d:.3f} (value)"])
        else:
            same = sum(x.tasks[name].tags == y.tasks[name].tags for x, y in zip(a, b)) / len(texts)
            agree.append([name, f"{100 * same:.1f}% (all tags)", ""])
    print(common.table(["task", "same answer fp32 vs int8", "max |prob diff| of fp32 label"], agree,
                       f"Agreement on the {n} timing texts"))

    lost = {}
    if not args.no_metrics:
        if max_test:  # a seeded random sample: test splits can be ordered by label
            rng = random.Random(args.seed)
            prepared = {t: {**s, "test": rng.sample(s.get("test", []), min(max_test, len(s.get("test", []))))}
                        for t, s in prepared.items()}
        max_len = fp32.max_length
        m32 = evaluate(fp32.model, fp32.tokenizer, task_file, prepared, "test", "cpu", max_len)
        m8 = evaluate(int8.model, int8.tokenizer, task_file, prepared, "test", "cpu", max_len)
        mrows = []
        for name, m in m32["tasks"].items():
            x, y = 100 * m["primary"], 100 * m8["tasks"][name]["primary"]
            lost[name] = x - y
            metric = {"classification": "macro-F1", "regression": "Pearson", "token_classification": "entity F1"}
            mrows.append([name, metric[fp32.model.tasks[name].kind], m["n"], f"{x:.2f}", f"{y:.2f}", f"{y - x:+.2f}"])
        cap = f" (random {max_test} per task)" if max_test else ""
        print(common.table(["task", "metric", "test n", "fp32", "int8", "change (points)"], mrows,
                           f"Quality on the test splits{cap}"))
        if not loaded.trained:
            print("\nNOTE: untrained model (random heads): these metrics are noise; re-run with a trained "
                  "model active in the workspace.")
    print()
    for bs, s in speedups.items():
        print(f"batch {bs}: int8 {s:.2f}x faster than fp32 (target >= {TARGET_SPEEDUP}x): "
              f"{common.verdict(s >= TARGET_SPEEDUP)}")
    if lost:
        worst = max(lost, key=lost.get)
        ok = lost[worst] <= TARGET_POINTS
        print(f"largest loss: {max(lost[worst], 0.0):.2f} points on {worst} (target <= {TARGET_POINTS} point per task): "
              f"{common.verdict(ok) if loaded.trained else 'n/a (untrained model)'}")


def _state_bytes(model) -> int:
    """Bytes of a (possibly quantized) model's state: packed int8 weights included."""
    import torch

    total = 0
    for v in model.state_dict().values():
        if isinstance(v, torch.Tensor):
            total += v.numel() * v.element_size()
        elif isinstance(v, tuple):  # packed params: (weight, bias)
            total += sum(t.numel() * t.element_size() for t in v if isinstance(t, torch.Tensor))
    return total


if __name__ == "__main__":
    main()
