"""Texts/s of the Predictor at batch 1, 8, 64, 256: length-bucketed batching vs naive padding.

    nice -n 19 python bench/speed/throughput.py [--quick] [--threads N] [--repeats R] [--n-texts N]

Same texts (test splits, mixed lengths: short questions, long truncated news), same model, same run:
  bucketed      Predictor.predict(texts, batch_size=B): sorted by length, consecutive batches (the default)
  naive longest arbitrary order (the texts' own shuffled order), chunks of B, each padded to its longest text
  naive max_len arbitrary order, every batch padded to max_length tokens
All three run the full Predictor (tokenise, forward, six heads, decode); only batching/padding differs.
"pad %" is the share of padding tokens the encoder processed. Batch 1 has no padding except for max_len.
Threads: torch intra-op threads as printed (set with --threads); each batch runs on all of them.
"""

from __future__ import annotations

import copy
import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `bench` and `mtl_core` importable

import torch

from bench import common
from mtl_core.model.encoding import EncodedBatch


def pad_to_max(pred):
    """A shallow copy of `pred` (same model) whose batches are padded to max_length tokens."""
    other = copy.copy(pred)
    pad_id = pred.tokenizer.pad_token_id or 0
    encode = pred.encode

    def encode_padded(self, texts) -> EncodedBatch:
        b = encode(texts)
        extra = self.max_length - b.input_ids.shape[1]
        b.input_ids = torch.nn.functional.pad(b.input_ids, (0, extra), value=pad_id)
        b.attention_mask = torch.nn.functional.pad(b.attention_mask, (0, extra), value=0)
        return b

    other.encode = types.MethodType(encode_padded, other)
    return other


def pad_share(pred, chunks: list[list[str]], width: int | None = None) -> float:
    real = total = 0
    for c in chunks:
        lengths = pred.encode(c).lengths
        real += sum(lengths)
        total += len(c) * (width or max(lengths))
    return 1 - real / total


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], repeats=3, quick_repeats=1)
    p.add_argument("--n-texts", type=int, default=None,
                   help="texts per pass (default 512, batch 1 uses the first quarter; 128 with --quick)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 64, 256])
    args = p.parse_args()
    common.setup(args)
    n = args.n_texts or (128 if args.quick else 512)

    loaded = common.load_predictor()
    pred = loaded.predictor
    padded = pad_to_max(pred)
    all_texts = common.test_texts(n, args.seed)
    print(f"# model: {loaded.what}")
    print(f"# {common.describe_texts(pred, all_texts)}; {args.repeats} repeats (median), warm-up on one batch")

    rows, gains = [], {}
    for bs in args.batch_sizes:
        texts = all_texts if bs > 1 else all_texts[: max(1, n // 4)]
        chunks = [texts[i:i + bs] for i in range(0, len(texts), bs)]  # arbitrary (shuffled test) order
        runners = {"bucketed": lambda bs=bs, texts=texts: pred.predict(texts, batch_size=bs)}
        if bs > 1:
            runners["naive longest"] = lambda chunks=chunks: [pred.predict(c, batch_size=len(c)) for c in chunks]
        runners["naive max_len"] = lambda chunks=chunks: [padded.predict(c, batch_size=len(c)) for c in chunks]
        padded.predict(chunks[0], batch_size=bs)  # warm-up: one batch of each shape family
        pred.predict(chunks[0], batch_size=bs)
        t = common.compare(runners, args.repeats, warmup=0)
        shares = {"bucketed": pad_share(pred, common.sorted_batches(texts, bs)),
                  "naive longest": pad_share(pred, chunks), "naive max_len": pad_share(pred, chunks, pred.max_length)}
        best = t["bucketed"].median
        for name, tm in t.items():
            rows.append([bs, name, len(texts), len(texts) / tm.median, tm.median / best,
                         f"{100 * shares[name]:.0f}%", f"{100 * tm.spread:.0f}%"])
        if "naive longest" in t:
            gains[bs] = t["naive longest"].median / best
    print(common.table(["batch", "batching", "texts", "texts/s", "time x bucketed", "pad %", "spread"], rows,
                       "Throughput: length-bucketed vs naive batching (full Predictor, all tasks)"))
    print()
    for bs, g in gains.items():
        print(f"batch {bs}: bucketing is {g:.2f}x faster than naive padding to the longest in arbitrary order")


if __name__ == "__main__":
    main()
