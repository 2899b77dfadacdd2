"""No-attention path (SDPA) vs explain path (eager attention, output_attentions, saliency): speed and agreement.

    nice -n 19 python bench/speed/attention_paths.py [--quick] [--threads N] [--repeats R] [--n-texts N]
                                                     [--no-explain] [--explain-texts N] [--ig-texts N]
                                                     [--saliency-task TASK]

Same texts, same model, same run, batch 1 (the UI's case) and 64:
  forward sdpa       Predictor.logits(batch): encoder + six heads, SDPA attention
  forward eager+attn Predictor.logits(batch, with_attention=True): eager attention returning weights
  predict            Predictor.predict(texts)
  predict+attn       Predictor.predict(texts, with_attention=True): also copies (L, A, T, T) weights per text
Agreement: max |difference| over every head output (all tasks, every real token for NER; padded
positions excluded) between the two paths, on every batch. Target <= 1e-4.
Explain cost (skip with --no-explain), one text per call as in the UI, on the first --explain-texts texts:
  bare tok+forward   AutoModel (same encoder weights, SDPA): tokenise one text + forward, the floor
  predict            Predictor.predict(text): every task head + decoding
  explain            Predictor.predict(text, with_attention=True) + grad x input saliency for one task
                     (what the Predict page's Explain panel computes)
  integrated grads   16-step integrated gradients on the first --ig-texts texts (info, no target)
Targets: predict <= 1.3x bare, explain <= 4x bare.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `bench` and `mtl_core` importable

import torch
from transformers import AutoModel

from bench import common
from mtl_core.serve.explain import saliency

TARGET = 1e-4
TARGET_PREDICT, TARGET_EXPLAIN = 1.3, 4.0  # per text, x the bare tokenise + forward


def max_head_difference(pred, batches) -> tuple[float, str]:
    worst, where = 0.0, ""
    for b in batches:
        enc = pred.encode(b)
        fast = pred.logits(enc).logits
        slow = pred.logits(enc, with_attention=True).logits
        mask = enc.attention_mask.bool()
        for name in fast:
            a, s = fast[name].float(), slow[name].float()
            diff = (a - s).abs()
            if diff.dim() == 3:  # token task: real tokens only
                diff = diff[mask]
            d = float(diff.max()) if diff.numel() else 0.0
            if d > worst:
                worst, where = d, name
    pred.model.set_attention(eager=False)
    return worst, where


def explain_options(p) -> None:
    p.add_argument("--no-explain", action="store_true", help="skip the explain-cost section")
    p.add_argument("--explain-texts", type=int, default=None,
                   help="texts for the explain-cost section, one per call (default 50; 16 with --quick)")
    p.add_argument("--ig-texts", type=int, default=12, help="texts for the integrated-gradients row (0: skip)")
    p.add_argument("--saliency-task", default=None, help="task the saliency explains (default: sentiment)")


def explain_cost(args, loaded, texts: list[str]) -> list[str]:
    """Per-text cost of the explain path vs a bare tokenise + forward; prints a table, -> verdict lines."""
    pred = loaded.predictor
    texts = texts[: args.explain_texts or (16 if args.quick else 50)]
    n = len(texts)
    task = args.saliency_task or ("sentiment" if "sentiment" in pred.task_names else pred.task_names[0])
    bare = AutoModel.from_pretrained(loaded.encoder_dir, attn_implementation="sdpa").eval()
    tok, max_len = pred.tokenizer, pred.max_length

    @torch.inference_mode()
    def bare_forward():
        for t in texts:
            bare(**tok(t, truncation=True, max_length=max_len, return_tensors="pt"))

    def predict():
        for t in texts:
            pred.predict(t)

    def explain():
        for t in texts:
            pred.predict(t, with_attention=True)
            saliency(pred, t, task, method="grad_x_input")

    t = common.compare({"bare tok+forward": bare_forward, "predict": predict, "explain": explain}, args.repeats)
    pred.model.set_attention(eager=False)
    floor = t["bare tok+forward"].median
    labels = {"explain": f"explain: predict+attn + grad x input saliency ({task})"}
    rows = [[labels.get(name, name), 1000 * tm.median / n, n / tm.median, tm.median / floor,
             f"{100 * tm.spread:.0f}%"] for name, tm in t.items()]
    if args.ig_texts > 0:
        ig = texts[: args.ig_texts]
        saliency(pred, ig[0], task, method="integrated_gradients", steps=16)  # warm-up
        t0 = common.CLOCK()
        for text in ig:
            saliency(pred, text, task, method="integrated_gradients", steps=16)
        secs = (common.CLOCK() - t0) / len(ig)
        rows.append([f"integrated gradients, 16 steps (info; {len(ig)} texts, one pass)", 1000 * secs, 1 / secs,
                     secs / (floor / n), ""])
    print(common.table(["path (one text per call)", "ms/text", "texts/s", "x bare tok+forward", "spread"], rows,
                       f"Explain cost: {n} texts, one per call (the UI case)"))
    r_predict, r_explain = t["predict"].median / floor, t["explain"].median / floor
    return [f"predict = {r_predict:.2f}x bare tok+forward (target <= {TARGET_PREDICT}x): "
            f"{common.verdict(r_predict <= TARGET_PREDICT)}",
            f"explain (attention + saliency) = {r_explain:.2f}x bare tok+forward (target <= {TARGET_EXPLAIN:g}x): "
            f"{common.verdict(r_explain <= TARGET_EXPLAIN)}"]


def main() -> None:
    args, loaded, texts = common.text_bench(__doc__.splitlines()[0], repeats=5, n_texts=128, quick_n_texts=32,
                                            options=explain_options)
    pred = loaded.predictor
    n = len(texts)

    rows, diffs = [], []
    for bs in args.batch_sizes:
        batches = common.sorted_batches(texts, bs)
        encoded = [pred.encode(b) for b in batches]
        runners = {
            "forward sdpa": lambda encoded=encoded: [pred.logits(e) for e in encoded],
            "forward eager+attn": lambda encoded=encoded: [pred.logits(e, with_attention=True) for e in encoded],
            "predict": lambda bs=bs: pred.predict(texts, batch_size=bs),
            "predict+attn": lambda bs=bs: pred.predict(texts, batch_size=bs, with_attention=True),
        }
        t = common.compare(runners, args.repeats)
        for name, tm in t.items():
            base = t["predict" if name.startswith("predict") else "forward sdpa"].median
            rows.append([bs, name, 1000 * tm.median / n, n / tm.median, tm.median / base, f"{100 * tm.spread:.0f}%"])
        diff, task = max_head_difference(pred, batches)
        diffs.append((bs, diff, task))
    print(common.table(["batch", "path", "ms/text", "texts/s", "x its SDPA twin", "spread"], rows,
                       "Speed: SDPA (no attention weights) vs eager (attention weights returned)"))
    print(common.table(["batch", "max |SDPA - eager| over all head outputs", "task"],
                       [[bs, f"{d:.2e}", task] for bs, d, task in diffs], "Agreement"))
    verdicts = [] if args.no_explain else explain_cost(args, loaded, texts)
    print()
    worst = max(d for _, d, _ in diffs)
    print(f"max abs difference {worst:.2e} (target <= {TARGET:g}): {common.verdict(worst <= TARGET)}")
    for line in verdicts:
        print(line)


if __name__ == "__main__":
    main()
