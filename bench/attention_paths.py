"""No-attention path (SDPA) vs explain path (eager attention, output_attentions): speed and agreement.

    nice -n 19 python bench/attention_paths.py [--quick] [--threads N] [--repeats R] [--n-texts N]

Same texts, same model, same run, batch 1 (the UI's case) and 64:
  forward sdpa       Predictor.logits(batch): encoder + six heads, SDPA attention
  forward eager+attn Predictor.logits(batch, with_attention=True): eager attention returning weights
  predict            Predictor.predict(texts)
  predict+attn       Predictor.predict(texts, with_attention=True): also copies (L, A, T, T) weights per text
Agreement: max |difference| over every head output (all tasks, every real token for NER; padded
positions excluded) between the two paths, on every batch. Target <= 1e-4.
"""

from __future__ import annotations

import common

TARGET = 1e-4


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


def main() -> None:
    args, loaded, texts = common.text_bench(__doc__.splitlines()[0], repeats=5, n_texts=128, quick_n_texts=32)
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
    print()
    worst = max(d for _, d, _ in diffs)
    print(f"max abs difference {worst:.2e} (target <= {TARGET:g}): {common.verdict(worst <= TARGET)}")


if __name__ == "__main__":
    main()
