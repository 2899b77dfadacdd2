"""int8 dynamic quantization: speed of Predictor(quantize=True) vs fp32, and what it costs per task.

    nice -n 19 python bench/speed/quantized.py [--quick] [--threads N] [--repeats R] [--n-texts N] [--max-test N]
                                               [--batch-sizes 1 64] [--no-metrics] [--no-profile]

Speed: the same texts through the fp32 Predictor and the int8 one (mtl_core.serve.quantize.quantize_dynamic:
torch dynamic quantization of the encoder's nn.Linear layers: int8 weights per output channel in [-64, 63],
packed for the engine the header names, 8-bit activations quantized per batch, the few outlier input
channels of the feed-forward layers kept in fp32; attention math, LayerNorm, GELU and the task heads stay
fp32); batch 1 and 64 side by side in one table.
Where the time goes (skip with --no-profile): the same passes again with timing hooks on the model's
modules (same clock), split into the encoder's linear layers, attention core (SDPA without the q/k/v
projections), GELU, LayerNorm, embeddings, task heads and the rest (tokenising, decoding, residual adds,
masks, Python). The linear layers' own fp32/int8 ratio is the ceiling of the whole-Predictor speed-up:
only they run in int8, everything else costs the same in both.
Quality: mtl_core.eval.metrics.evaluate on the test splits, fp32 model vs the quantized model, primary
metric per task (macro-F1 / Pearson / entity F1) in points (x100). Label agreement: share of texts where
both models pick the same label (classification tasks) on the timing texts.
Targets: >= 1.5x faster; <= 1 point lost on every task. With an untrained model the metric part is
meaningless (random heads): re-run once a trained model is active.
"""

from __future__ import annotations

import random
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `bench` and `mtl_core` importable

import torch

from bench import common
from mtl_core.eval.metrics import evaluate
from mtl_core.model.runner import ModelRunner
from mtl_core.serve.predictor import Predictor

TARGET_SPEEDUP = 1.5
TARGET_POINTS = 1.0


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], repeats=5, quick_repeats=2)
    p.add_argument("--n-texts", type=int, default=None, help="timing texts (default 128; 32 with --quick)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    p.add_argument("--max-test", type=int, default=None,
                   help="random sample of test examples per task for the metric part (default: all; 100 with --quick)")
    p.add_argument("--no-metrics", action="store_true", help="speed only")
    p.add_argument("--no-profile", action="store_true", help="skip the where-the-time-goes breakdown")
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
    outliers = int8.model.quant_outliers
    print(f"# int8: weights packed for torch.backends.quantized engine {int8.model.quant_engine!r} "
          f"(supported here: {', '.join(torch.backends.quantized.supported_engines)}); "
          f"{sum(outliers.values())} outlier input channels in {len(outliers)} linear layers bypass int8 (fp32)")
    size32, size8 = common.param_bytes(fp32.model), _state_bytes(int8.model)
    print(f"# weights: fp32 {size32 / 2**20:.0f} MiB, int8 model state {size8 / 2**20:.0f} MiB "
          "(embeddings, LayerNorms and task heads stay fp32)")

    timings, speedups = {}, {}
    for bs in args.batch_sizes:
        timings[bs] = common.compare({"fp32": lambda bs=bs: fp32.predict(texts, batch_size=bs),
                                      "int8": lambda bs=bs: int8.predict(texts, batch_size=bs)}, args.repeats)
        speedups[bs] = timings[bs]["fp32"].median / timings[bs]["int8"].median
    cols = [f"batch {bs}" for bs in args.batch_sizes]
    rows = [
        ["fp32 ms/text"] + [1000 * timings[bs]["fp32"].median / n for bs in args.batch_sizes],
        ["int8 ms/text"] + [1000 * timings[bs]["int8"].median / n for bs in args.batch_sizes],
        ["**int8 speed-up**"] + [f"**{speedups[bs]:.2f}x**" for bs in args.batch_sizes],
        ["texts/s fp32 -> int8"] + [f"{n / timings[bs]['fp32'].median:.1f} -> {n / timings[bs]['int8'].median:.1f}"
                                    for bs in args.batch_sizes],
        ["spread fp32 / int8"] + [f"{100 * timings[bs]['fp32'].spread:.0f}% / {100 * timings[bs]['int8'].spread:.0f}%"
                                  for bs in args.batch_sizes],
        ["padding share of encoder tokens"] + [f"{100 * _pad_share(fp32, texts, bs):.0f}%" for bs in args.batch_sizes],
    ]
    print(common.table([""] + cols, rows, "Speed: int8 dynamic quantization vs fp32 (full Predictor, all tasks)"))

    if not args.no_profile:
        for bs in args.batch_sizes:
            print(_profile_table(fp32, int8, texts, bs, args.repeats))

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
        cpu, max_len = torch.device("cpu"), fp32.max_length
        m32 = evaluate(ModelRunner(fp32.model, fp32.tokenizer, cpu, max_len), task_file, prepared, "test")
        m8 = evaluate(ModelRunner(int8.model, int8.tokenizer, cpu, max_len), task_file, prepared, "test")
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
    print(f"int8 speed-up (target >= {TARGET_SPEEDUP}x): " + ", ".join(
        f"batch {bs} {s:.2f}x {common.verdict(s >= TARGET_SPEEDUP)}" for bs, s in speedups.items()))
    if lost:
        worst = max(lost, key=lost.get)
        ok = lost[worst] <= TARGET_POINTS
        print(f"largest loss: {max(lost[worst], 0.0):.2f} points on {worst} (target <= {TARGET_POINTS} point per task): "
              f"{common.verdict(ok) if loaded.trained else 'n/a (untrained model)'}")


def _pad_share(pred, texts: list[str], batch_size: int) -> float:
    """Share of the encoder's token positions that are padding, with the Predictor's own batching."""
    real = padded = 0
    for batch in common.sorted_batches(texts, batch_size):
        lengths = [len(t) for t in pred.encode(batch).tokens]
        real += sum(lengths)
        padded += len(lengths) * max(lengths)
    return 1 - real / padded


PARTS = ("linear layers (encoder)", "attention core (SDPA)", "GELU", "LayerNorm", "embeddings", "task heads")


def _part(name: str, module) -> str | None:
    """Which PARTS row a module's own time goes to (None: not timed by itself)."""
    if name.startswith(("heads.", "memory.")):
        return None  # the task heads are timed as one call of MultiTaskModel._heads (fused at inference)
    if name.endswith("attention.self"):
        return "attention block"  # minus its q/k/v linears -> attention core
    if name.endswith("intermediate_act_fn"):
        return "GELU"
    if name.endswith(".embeddings"):
        return "embeddings"
    if ".embeddings." in name:
        return None  # inside the embeddings row
    if isinstance(module, torch.nn.LayerNorm):
        return "LayerNorm"
    if isinstance(module, (torch.nn.Linear, torch.ao.nn.quantized.dynamic.Linear)):
        return "linear layers (encoder)"
    return None


def _profile_pass(pred, texts: list[str], batch_size: int) -> dict[str, float]:
    """Seconds per PARTS row (+ "total", "rest") for one predict pass, from timing hooks (common.CLOCK)."""
    spent: dict[str, float] = defaultdict(float)
    started: dict[int, float] = {}
    handles = []
    for name, module in pred.model.named_modules():
        part = _part(name, module)
        if part is None:
            continue
        in_attention = name.rsplit(".", 1)[0].endswith("attention.self")

        def pre(mod, args):
            started[id(mod)] = common.CLOCK()

        def post(mod, args, out, part=part, in_attention=in_attention):
            took = common.CLOCK() - started[id(mod)]
            spent[part] += took
            if in_attention:
                spent["attention block"] -= took  # q/k/v projections counted as linear layers only

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    model = pred.model
    heads = model._heads

    def timed_heads(*args, **kwargs):
        t = common.CLOCK()
        try:
            return heads(*args, **kwargs)
        finally:
            spent["task heads"] += common.CLOCK() - t

    model._heads = timed_heads  # an instance attribute shadows the method for this pass only
    try:
        t0 = common.CLOCK()
        pred.predict(texts, batch_size=batch_size)
        total = common.CLOCK() - t0
    finally:
        del model._heads
        for h in handles:
            h.remove()
    spent["attention core (SDPA)"] = spent.pop("attention block", 0.0)
    out = {p: spent.get(p, 0.0) for p in PARTS}
    out["rest"] = total - sum(out.values())
    out["total"] = total
    return out


def _profile_table(fp32, int8, texts: list[str], batch_size: int, repeats: int) -> str:
    runs: dict[str, list[dict]] = {"fp32": [], "int8": []}
    for r in range(max(1, repeats)):
        for name in (("fp32", "int8") if r % 2 == 0 else ("int8", "fp32")):
            runs[name].append(_profile_pass(fp32 if name == "fp32" else int8, texts, batch_size))
    med = {m: {k: statistics.median(run[k] for run in rs) for k in rs[0]} for m, rs in runs.items()}
    n = len(texts)
    rows = []
    for part in (*PARTS, "rest", "total"):
        a, b = med["fp32"][part], med["int8"][part]
        label = "rest: tokenise, decode, residual adds, masks, Python" if part == "rest" else part
        rows.append([f"**{label}**" if part == "total" else label,
                     1000 * a / n, f"{100 * a / med['fp32']['total']:.0f}%",
                     1000 * b / n, f"{100 * b / med['int8']['total']:.0f}%",
                     f"{a / b:.2f}x" if b > 0 else "-"])
    return common.table(["part", "fp32 ms/text", "fp32 share", "int8 ms/text", "int8 share", "fp32 / int8"], rows,
                        f"Where the time goes, batch {batch_size} (timing hooks on the modules, median of "
                        f"{max(1, repeats)}; {100 * _pad_share(fp32, texts, batch_size):.0f}% of encoder tokens are padding)")


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
