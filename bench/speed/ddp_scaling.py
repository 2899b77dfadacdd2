"""Data-parallel training on CPU: samples/s of 1 process vs N processes (1 thread each), same global batch.

    nice -n 19 python bench/speed/ddp_scaling.py [--quick] [--repeats R] [--steps S] [--batch-size B] [--nproc N]
                                                 [--no-accelerate] [--no-all-heads]

Every variant is a fresh run of the training loop itself (mtl_core.train.loop.train with the default recipe:
per-task batches, temperature sampling, embeddings + 2 layers frozen) on the bench model (bench/README.md)
and the default tasks' training splits, with the same global batch B per step:
  1 process          this script in --worker mode, torch.set_num_threads(1)
  N processes        torchrun --standalone --nproc-per-node N (gloo): each rank B/N rows, 1 thread, DDP
  N, Accelerate      the same, but the DDP wrapper is built by accelerate's Accelerator.prepare_model
  N, all heads       the alternative to find_unused_parameters: every head runs every step (absent tasks'
                     logits tied into the loss at weight 0), DDP without the unused-parameter search
samples/s = timed steps x B / (rank 0's time from the end of the warm-up steps to the last step); the
evaluation at the end is outside it. Variants alternate inside each repeat (rotating order); median of the
repeats, spread = (max - min) / median. The run ends with what each step all-reduces (trainable parameters
x 4 bytes, fp32) and what that costs at published interconnect peaks: computed, not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `bench` and `mtl_core` importable

from bench import common

# Vendor-published peak bandwidth per GPU and direction (GB/s): NVIDIA's NVLink 4 (H100 SXM, 900 GB/s both
# ways) and NVLink 3 (A100 SXM, 600), PCI-SIG's PCIe 4.0 / 5.0 x16 (~32 / ~64 per direction), NVIDIA
# Quantum-2 InfiniBand NDR (400 Gb/s per port) between nodes. Real NCCL bus bandwidth stays below these.
LINKS = {"NVLink 4 (H100 SXM)": 450, "NVLink 3 (A100 SXM)": 300, "PCIe 5.0 x16": 64, "PCIe 4.0 x16": 32,
         "InfiniBand NDR, 1 port per GPU": 50}


def options(p) -> None:
    p.add_argument("--steps", type=int, default=None, help="timed steps per run (default 16; 6 with --quick)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (allocator, first backward)")
    p.add_argument("--batch-size", type=int, default=32, help="global batch (TrainConfig's default is 32)")
    p.add_argument("--nproc", type=int, default=2, help="processes of the data-parallel variants")
    p.add_argument("--max-train", type=int, default=2000, help="training examples featurized per task")
    p.add_argument("--no-accelerate", action="store_true", help="skip the Accelerate variant")
    p.add_argument("--no-all-heads", action="store_true", help="skip the every-head-every-step variant")
    p.add_argument("--worker", choices=["plain", "accelerate", "allheads"], help=argparse.SUPPRESS)


# ---------------------------------------------------------------- one run (a worker process; every rank)


class _Clock:
    """Rank 0's reporter: the time of each logged step (log_every = warm-up steps)."""

    def __init__(self):
        self.at: dict[int, float] = {}

    def progress(self, step, total=None, message=None):
        self.at[step] = time.perf_counter()

    def log(self, line):
        pass

    def metric(self, step, name, value, task=None):
        pass

    def check_cancelled(self):
        pass


def worker(args) -> None:
    import torch

    from mtl_core.train import distributed
    from mtl_core.train.loop import TrainConfig, train

    torch.set_num_threads(1)
    started = time.perf_counter()
    distributed.init_from_env()
    init_s = None
    if args.worker == "accelerate":
        t0 = time.perf_counter()
        from accelerate import Accelerator, DistributedDataParallelKwargs

        acc = Accelerator(cpu=True, kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
        init_s = time.perf_counter() - t0
        distributed.TrainDist.wrap = lambda self, model: acc.prepare_model(model)  # the bench's swap, nothing else
    if args.worker == "allheads":
        distributed.TrainDist.wrap = lambda self, model: _all_heads_ddp(model)
    loaded = common.load_predictor()
    task_file, prepared = common.prepared_data()
    prepared = {n: {"train": d["train"][: args.max_train], "dev": d.get("dev", [])[:20]} for n, d in prepared.items()}
    steps = args.steps or (6 if args.quick else 16)
    cfg = TrainConfig(steps=args.warmup + steps, batch_size=args.batch_size, eval_every=args.warmup + steps,
                      log_every=args.warmup, max_dev=20, seed=args.seed)
    clock = _Clock()
    train(loaded.predictor.model, loaded.predictor.tokenizer, task_file, prepared, cfg, reporter=clock, progress=False)
    if distributed.is_main():
        seconds = clock.at[cfg.steps] - clock.at[args.warmup]
        print("BENCH " + json.dumps({"samples_per_s": steps * args.batch_size / seconds, "step_s": seconds / steps,
                                     "init_s": init_s, "process_s": time.perf_counter() - started}), flush=True)
    distributed.shutdown()


def _all_heads_ddp(model):
    """DDP without find_unused_parameters: every head (and no unused pooler) in every step's graph."""
    from torch import nn

    from mtl_core.model.modeling import MultiTaskOutput

    class AllHeads(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, tasks):
            logits = dict(self.inner(input_ids=input_ids, attention_mask=attention_mask).logits)
            tie = sum(logits[t].float().sum() for t in logits if t not in tasks) * 0.0
            out = {t: logits[t] for t in tasks}
            out[tasks[0]] = out[tasks[0]] + tie
            return MultiTaskOutput(logits=out, attentions=None)

    if getattr(model.encoder, "pooler", None) is not None:
        model.encoder.pooler.requires_grad_(False)  # never in the loss: DDP would wait for its gradient
    return nn.parallel.DistributedDataParallel(AllHeads(model), find_unused_parameters=False,
                                               forward_sync_buffers=False)


# ---------------------------------------------------------------- the comparison (parent process)


def run_variant(name: str, args, nproc: int) -> dict:
    kind = "accelerate" if "Accelerate" in name else "allheads" if "all heads" in name else "plain"
    flags = ["--worker", kind, "--batch-size", str(args.batch_size),
             "--warmup", str(args.warmup), "--max-train", str(args.max_train), "--seed", str(args.seed)]
    flags += ["--steps", str(args.steps)] if args.steps else []
    flags += ["--quick"] if args.quick else []
    script = str(Path(__file__).resolve())
    if nproc == 1:
        cmd = [sys.executable, script, *flags]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", script, *flags]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=common.ROOT)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("BENCH ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("BENCH "):])


def trainable_counts(model) -> list[tuple[str, int]]:
    """Parameters whose gradients DDP all-reduces (every trainable one: unused heads' slots are zeros)."""
    from mtl_core.train.loop import _freeze

    out = []
    for what, embeddings, layers in [("default training recipe (word embeddings + 2 layers frozen)", True, 2),
                                     ("a full round (word embeddings frozen)", True, 0),
                                     ("everything trainable", False, 0)]:
        model.requires_grad_(True)
        _freeze(model, embeddings, layers)
        out.append((what, sum(p.numel() for p in model.parameters() if p.requires_grad)))
    model.requires_grad_(True)
    return out


def gpu_estimate(model) -> str:
    """All-reduce cost per step at the published peaks (ring all-reduce: 2 (N-1)/N x bytes per GPU, N = 8)."""
    total, heads = sum(p.numel() for p in model.parameters()), sum(p.numel() for p in model.heads.parameters())
    rows = []
    for what, params in trainable_counts(model):
        mb = params * 4 / 1e6
        rows.append([what, f"{params / 1e6:.2f} M", f"{mb:.1f} MB"]
                    + [f"{2 * 7 / 8 * mb / gbs:.2f}" for gbs in LINKS.values()])
    return common.table(["trainable", "parameters", "bytes / step (fp32)"] + [f"ms at {k}" for k in LINKS], rows,
                        f"Gradient all-reduce per step on 8 GPUs, computed (not measured): {total / 1e6:.2f} M "
                        f"parameters, {heads / 1e3:.1f} k of them in the heads")


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], repeats=3, quick_repeats=1)
    options(p)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    common.setup(args)
    loaded = common.load_predictor()
    common.prepared_data()  # fill the data cache once, before several processes read it
    n = args.nproc
    names = ["1 process", f"{n} processes"] + ([] if args.no_accelerate else [f"{n}, Accelerate"])
    names += [] if args.no_all_heads else [f"{n}, all heads"]
    print(f"# model: {loaded.what}; global batch {args.batch_size}; {args.warmup} warm-up + "
          f"{args.steps or (6 if args.quick else 16)} timed steps per run; 1 thread per process; {args.repeats} "
          f"repeats (median), variants alternating")
    runs: dict[str, list[dict]] = {v: [] for v in names}
    for r in range(args.repeats):
        for v in names[r % len(names):] + names[: r % len(names)]:
            runs[v].append(run_variant(v, args, 1 if v == "1 process" else n))
    base = statistics.median(x["samples_per_s"] for x in runs["1 process"])
    rows = []
    for v in names:
        sps = [x["samples_per_s"] for x in runs[v]]
        med = statistics.median(sps)
        init = [x["init_s"] for x in runs[v] if x["init_s"] is not None]
        rows.append([v, med, med / base, statistics.median(x["step_s"] for x in runs[v]) * 1000,
                     f"{100 * (max(sps) - min(sps)) / med:.0f}%",
                     statistics.median(x["process_s"] for x in runs[v]),
                     f"{statistics.median(init):.2f}" if init else "-"])
    print(common.table(["variant", "samples/s", "x 1 process", "ms / step", "spread", "process s", "Accelerator() s"],
                       rows, f"Data-parallel training on CPU, 1 vs {n} processes"))
    print(f"\nratio {n} processes / 1 process: {rows[1][2]:.2f}x samples/s (ideal {n:.2f}x)")
    print(gpu_estimate(loaded.predictor.model))


if __name__ == "__main__":
    main()
