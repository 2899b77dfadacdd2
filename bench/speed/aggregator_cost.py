"""What does a joint step cost with each gradient method, relative to equal weighting (a plain summed loss)?

    python bench/speed/aggregator_cost.py [--steps 6] [--repeats 3] [--batch 16] [--max-length 64]

One real-size model (the bundled MiniLM, the default freezing: embeddings + lower 2 layers), the same
`batching="all"` batches (every task, batch / n_tasks rows each) for every method, one optimizer step after
another through `mtl_core.train.step.step`; methods interleaved inside each repeat so drift hits them alike;
median seconds per step and the ratio to "equal". Also the sampling recipe's one-task step for reference.
"""

from __future__ import annotations

import copy
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import parser, setup  # noqa: E402

# "equal_one_pass": the summed loss with one encoder pass over every task's rows padded to the widest (what
# `step` did before SPLIT_WASTE); "equal": `step`'s choice (a pass per task when padding would waste work)
METHODS = ["equal_one_pass", "equal", "pcgrad", "cagrad", "imtl", "aligned_mtl", "nash_mtl", "upgrad", "mgda", "famo", "gradnorm"]


def main() -> None:
    ap = parser(__doc__, repeats=3, quick_repeats=1)
    ap.add_argument("--steps", type=int, default=6, help="timed steps per method per repeat")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=64)
    args = ap.parse_args()
    setup(args)

    import torch
    from transformers import AutoTokenizer

    from mtl_core.model.features import featurize
    from mtl_core.model.modeling import ModelConfig, build_model, default_encoder_dir
    from mtl_core.train.aggregators import JointCombiner
    from mtl_core.train.loop import TrainConfig, _freeze
    from mtl_core.train.pipeline import prepare
    from mtl_core.train.step import collate_task, split_pays, step
    from mtl_core.train.weighting import LossWeighting

    task_file, prepared = prepare()
    tok = AutoTokenizer.from_pretrained(default_encoder_dir())
    specs = [t for t in task_file.tasks if prepared.get(t.name, {}).get("train")]
    share = max(1, args.batch // len(specs))
    rng = random.Random(0)
    batches_pool = []
    for _ in range(args.steps):
        batch = {}
        for s in specs:
            rows = rng.sample(prepared[s.name]["train"], share)
            n_out = len(s.tag_names) if s.kind == "token_classification" else len(s.labels)
            batch[s.name] = collate_task(featurize(s, rows, tok, args.max_length), s.kind, tok.pad_token_id, n_out)
        batches_pool.append(batch)
    kinds = {s.name: s.kind for s in specs}
    torch.manual_seed(0)
    base = build_model(specs, ModelConfig(max_length=args.max_length))
    cfg = TrainConfig()
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    dev = torch.device("cpu")
    for rep in range(args.repeats + 1):  # repeat 0: warm-up, not counted
        for method in METHODS:
            model = copy.deepcopy(base).train()
            _freeze(model, cfg.freeze_embeddings, cfg.freeze_layers)
            weighting = LossWeighting("equal", specs)
            opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _s: 1.0)
            combiner = None if method.startswith("equal") else JointCombiner(method, [s.name for s in specs])
            split = False if method == "equal_one_pass" else None
            t0 = time.perf_counter()
            for batch in batches_pool:
                step(model, weighting, opt, sched, batch, kinds, dev, cfg.grad_clip, None, combiner, split)
            if rep:
                times[method].append((time.perf_counter() - t0) / len(batches_pool))
    equal = statistics.median(times["equal"])
    split = sum(split_pays(b, dev) for b in batches_pool)
    print(f"\n{len(specs)} tasks x {share} rows per step, max_length {args.max_length}, {args.steps} steps x "
          f"{args.repeats} repeats (median); 'equal' ran a pass per task on {split} of {len(batches_pool)} batches\n")
    print("| method | s/step | × equal |\n|---|---|---|")
    for method in METHODS:
        t = statistics.median(times[method])
        print(f"| {method} | {t:.3f} | {t / equal:.2f} |")


if __name__ == "__main__":
    main()
