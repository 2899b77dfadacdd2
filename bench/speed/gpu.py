"""On a CUDA GPU: bf16 inference texts/s (batch 256, 128 tokens), training samples/s, share of bf16 peak.

    python bench/speed/gpu.py [--quick] [--repeats R] [--batch-size 256] [--seq 128] [--peak-tflops X]

Exits with a message (status 0, "SKIPPED") when CUDA is absent.
  inference, autocast bf16   the Predictor's path: fp32 weights under torch.autocast(bfloat16),
                             encoder (SDPA) + all six heads, full-length rows (every token real)
  inference, bf16 weights    the same model cast to bfloat16 (no autocast)
  predict end to end         Predictor.predict on test texts at batch 256 (tokenisation + decoding on the
                             CPU included; real lengths, so fewer FLOPs per text: info only)
  training, autocast bf16    forward + backward + AdamW step, one task per batch, round-robin
FLOPs are counted analytically (2 x multiply-adds of every matmul: Q/K/V/O projections, attention
scores and context, feed-forward, heads; training = 3 x forward). Peak: dense bf16 tensor-core TFLOPS
from the table below by device name (override with --peak-tflops).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `bench` and `mtl_core` importable

import torch
from torch import nn

from bench import common

# dense (no sparsity) bf16 tensor-core peak, TFLOPS
PEAKS = [("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0), ("GH200", 989.0),
         ("B200", 2250.0), ("A100", 312.0), ("L40S", 362.0), ("L40", 181.0), ("L4", 121.0), ("A10", 125.0)]


def peak_tflops(name: str) -> float | None:
    for key, value in PEAKS:
        if key.lower() in name.lower():
            return value
    return None


def forward_flops(model, batch: int, seq: int) -> float:
    """FLOPs of one forward of encoder + every head on (batch, seq) real tokens."""
    cfg = model.encoder.config
    h, inter = cfg.hidden_size, cfg.intermediate_size
    layers = cfg.num_hidden_layers + sum(len(stack) for stack in model.private.values())  # private: per task
    per_token_layer = 4 * h * h + 2 * h * inter + 2 * seq * h  # projections, FFN, scores + context
    macs = batch * seq * layers * per_token_layer
    for spec in model.tasks.values():
        n = spec.n_outputs
        macs += batch * seq * h * n if spec.kind == "token_classification" else batch * (h * h + h * n)
    return 2.0 * macs


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], repeats=10, quick_repeats=3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--train-batch-size", type=int, default=256)
    p.add_argument("--peak-tflops", type=float, default=None)
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("SKIPPED: no CUDA device (torch.cuda.is_available() is False; this torch is "
              f"{torch.__version__}). Run this on a machine with an NVIDIA GPU and a CUDA build of torch.")
        sys.exit(0)
    common.setup(args)
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(dev)
    peak = args.peak_tflops or peak_tflops(name)
    torch.backends.cuda.matmul.allow_tf32 = True
    loaded = common.load_predictor(device="cuda")
    pred = loaded.predictor
    model = pred.model
    model.set_attention(eager=False)
    B, T = args.batch_size, args.seq
    print(f"# device: {name}; bf16 dense peak {peak or 'unknown'} TFLOPS; torch {torch.__version__}, "
          f"CUDA {torch.version.cuda}")
    print(f"# model: {loaded.what}; {args.repeats} repeats (median), 3 warm-up")

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 29000, (B, T), generator=g).to(dev)
    ids[:, 0], ids[:, -1] = 101, 102
    mask = torch.ones_like(ids)
    flops = forward_flops(model, B, T)

    @torch.inference_mode()
    def autocast_fwd():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            model(input_ids=ids, attention_mask=mask)

    bf16 = copy.deepcopy(model).to(torch.bfloat16).eval()

    @torch.inference_mode()
    def bf16_fwd():
        bf16(input_ids=ids, attention_mask=mask)

    texts = common.test_texts(4 * B if not args.quick else B, args.seed)
    t = common.compare({"inference, autocast bf16": autocast_fwd, "inference, bf16 weights": bf16_fwd,
                        "predict end to end": lambda: pred.predict(texts, batch_size=B)},
                       args.repeats, warmup=3, device=dev)
    bf16.cpu()  # free the copy's GPU memory before training
    rows = []
    for label in ("inference, autocast bf16", "inference, bf16 weights"):
        s = t[label].median
        tf = flops / s / 1e12
        rows.append([label, f"{B}x{T}", f"{B / s:,.0f} texts/s", f"{tf:.1f}", _share(tf, peak)])
    s = t["predict end to end"].median
    rows.append(["predict end to end", f"{len(texts)} test texts, batch {B}", f"{len(texts) / s:,.0f} texts/s", "", ""])

    # training: one task per step, round-robin, autocast bf16
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    TB = args.train_batch_size
    tids = ids[:TB] if TB <= B else ids.repeat(-(-TB // B), 1)[:TB]
    tmask = torch.ones_like(tids)
    names = model.task_names
    labels = {}
    for n in names:
        spec = model.tasks[n]
        if spec.kind == "regression":
            labels[n] = torch.rand(TB, device=dev)
        elif spec.kind == "token_classification":
            labels[n] = torch.randint(0, spec.n_outputs, (TB, T), device=dev)
        else:
            labels[n] = torch.randint(0, spec.n_outputs, (TB,), device=dev)
    counter = [0]

    def train_step():
        n = names[counter[0] % len(names)]
        counter[0] += 1
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(input_ids=tids, attention_mask=tmask, tasks=[n]).logits[n].float()
        kind = model.tasks[n].kind
        if kind == "regression":
            loss = nn.functional.mse_loss(out.squeeze(-1), labels[n])
        else:
            loss = nn.functional.cross_entropy(out.flatten(0, -2) if out.dim() == 3 else out, labels[n].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    tt = common.compare({"training": lambda: [train_step() for _ in range(len(names))]}, args.repeats, warmup=1,
                        device=dev)["training"]
    step_s = tt.median / len(names)
    enc_flops = forward_flops(model, TB, T)  # heads differ per task; encoder dominates
    tf = 3 * enc_flops / step_s / 1e12
    rows.append(["training, autocast bf16 (fwd+bwd+AdamW)", f"{TB}x{T}", f"{TB / step_s:,.0f} samples/s", f"{tf:.1f}",
                 _share(tf, peak)])
    print(common.table(["what", "shape", "throughput", "achieved TFLOPS", "share of bf16 peak"], rows,
                       f"GPU: {name}"))


def _share(tflops: float, peak: float | None) -> str:
    return f"{100 * tflops / peak:.1f}%" if peak else "n/a (unknown device: --peak-tflops)"


if __name__ == "__main__":
    main()
