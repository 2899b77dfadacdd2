"""Multi-task training steps on CPU: samples/s with length bucketing vs random batches.

    nice -n 19 python bench/speed/train_speed.py [--quick] [--threads N] [--repeats R] [--steps S] [--batch-size B]

The training loop's own pieces (mtl_core.model.features: featurize, collate, bucketed_batches) and one full
optimizer step per batch: forward of the shared encoder (SDPA) + the batch's task head, loss, backward,
gradient clipping, AdamW step. Tasks are taken round-robin, one task per batch (the default recipe's
"per_task" batching), on the training splits. Same model, same tasks, same run:
  bucketed             bucketed_batches: shuffled, sorted by length in chunks, padded to the longest
  random, longest      the same examples shuffled across each task's batches, padded to the longest
  random, max_length   the same random batches, padded to max_length (a naive fixed-shape loop)
"pad %" is the share of padding tokens in the timed batches.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `bench` and `mtl_core` importable

import torch
from torch import nn

from bench import common
from mtl_core.model.features import IGNORE, collate, featurize
from mtl_core.model.features import bucketed_batches as make_buckets


def loss_of(kind: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if kind == "regression":
        return nn.functional.mse_loss(logits.squeeze(-1), labels.float())
    if kind == "token_classification":
        return nn.functional.cross_entropy(logits[:, : labels.shape[1]].flatten(0, 1), labels.flatten(),
                                           ignore_index=IGNORE)
    return nn.functional.cross_entropy(logits, labels)


def pad_batch(batch: dict, width: int, pad_id: int) -> dict:
    extra = width - batch["input_ids"].shape[1]
    out = {"input_ids": nn.functional.pad(batch["input_ids"], (0, extra), value=pad_id),
           "attention_mask": nn.functional.pad(batch["attention_mask"], (0, extra), value=0),
           "labels": batch["labels"]}
    if batch["labels"].dim() == 2:
        out["labels"] = nn.functional.pad(batch["labels"], (0, extra), value=IGNORE)
    return out


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], repeats=2, quick_repeats=1)
    p.add_argument("--steps", type=int, default=None,
                   help="timed steps per variant and repeat (default 24; 12 quick): several per task, so the "
                        "random variants really mix lengths")
    p.add_argument("--batch-size", type=int, default=32, help="TrainConfig's default is 32")
    p.add_argument("--max-train", type=int, default=3000, help="training examples featurized per task")
    args = p.parse_args()
    common.setup(args)
    steps = args.steps or (12 if args.quick else 24)
    bs = args.batch_size

    loaded = common.load_predictor()
    model = loaded.predictor.model
    tok = loaded.predictor.tokenizer
    task_file, prepared = common.prepared_data()
    max_len = model.config.max_length
    pad_id = tok.pad_token_id or 0
    specs = [t for t in task_file.tasks if prepared.get(t.name, {}).get("train")]
    feats = {t.name: featurize(t, prepared[t.name]["train"][: args.max_train], tok, t.max_length or max_len)
             for t in specs}
    kinds = {t.name: t.kind for t in specs}
    print(f"# model: {loaded.what} (trained in place here; nothing is saved)")
    print(f"# tasks round-robin: {', '.join(kinds)}; batch {bs}; {steps} steps per variant and repeat; "
          f"{args.repeats} repeats (median), 2 warm-up steps each")

    def plan(variant: str, seed: int) -> list[tuple[str, dict]]:
        """The batches one timed run uses. Every variant sees the same examples in the same task order:
        bucketing picks them (one length bucket per step); the random variants shuffle the same examples
        of each task across its batches, so only the grouping (and padding) differs."""
        rng = random.Random(seed)
        buckets = {n: make_buckets(f, bs, rng) for n, f in feats.items()}
        chosen = []  # (task, example indices) per step
        for i in range(steps):
            name = specs[i % len(specs)].name
            chosen.append((name, list(buckets[name][i // len(specs) % len(buckets[name])])))
        if variant != "bucketed":
            for name in kinds:
                steps_of = [k for k, (n, _) in enumerate(chosen) if n == name]
                pool = [j for k in steps_of for j in chosen[k][1]]
                rng.shuffle(pool)
                for k in steps_of:
                    size = len(chosen[k][1])
                    chosen[k] = (name, pool[:size])
                    pool = pool[size:]
        out = []
        for name, idx in chosen:
            batch = collate([feats[name][j] for j in idx], kinds[name], pad_id)
            if variant == "random, max_length":
                batch = pad_batch(batch, max_len, pad_id)
            out.append((name, batch))
        return out

    model.train()
    model.set_attention(eager=False)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def step(name: str, batch: dict) -> None:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], tasks=[name]).logits[name]
        loss = loss_of(kinds[name], logits.float(), batch["labels"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    variants = ["bucketed", "random, longest", "random, max_length"]
    plans = {v: [plan(v, args.seed + r) for r in range(args.repeats)] for v in variants}
    for v in variants:  # warm-up: allocator, first backward
        for name, batch in plans[v][0][:2]:
            step(name, batch)
    counters = {v: 0 for v in variants}

    def runner(v: str):
        def run():
            for name, batch in plans[v][counters[v] % args.repeats]:
                step(name, batch)
            counters[v] += 1
        return run

    t = common.compare({v: runner(v) for v in variants}, args.repeats, warmup=0)
    rows = []
    base = t["bucketed"].median
    for v in variants:
        batches = [b for _, b in plans[v][0]]
        samples = sum(b["input_ids"].shape[0] for b in batches)
        real = sum(int(b["attention_mask"].sum()) for b in batches)
        total = sum(b["input_ids"].numel() for b in batches)
        rows.append([v, samples / t[v].median, real / t[v].median, t[v].median / base, f"{100 * (1 - real / total):.0f}%",
                     f"{100 * t[v].spread:.0f}%"])
    print(common.table(["batching", "samples/s", "real tokens/s", "time x bucketed", "pad %", "spread"], rows,
                       "Training steps on CPU (forward + backward + AdamW)"))
    print()
    print(f"bucketing: {t['random, longest'].median / base:.2f}x faster than random batches padded to the longest, "
          f"{t['random, max_length'].median / base:.2f}x faster than padding to max_length")


if __name__ == "__main__":
    main()
