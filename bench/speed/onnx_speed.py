"""ONNX Runtime vs PyTorch: the same all-heads graph on the same tokenised batches.

    nice -n 19 python bench/speed/onnx_speed.py [--quick] [--threads N] [--repeats R] [--n-texts N]

Exports the model (active workspace version, else the untrained real-size one) with
mtl_core.serve.export.export_model into a temporary directory (checked against PyTorch to 1e-4), then times,
on the Predictor's own length-sorted batches at batch 1 and 64:
  pytorch  Predictor.logits(batch): encoder (SDPA) + six heads, fp32, torch.inference_mode
  onnxrt   InferenceSession.run on the same input_ids / attention_mask (CPU provider, all graph
           optimisations, intra-op threads = torch's), numpy in and out
Tokenisation and decoding are the same for both and excluded.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `bench` and `mtl_core` importable

import numpy as np
import torch

from bench import common
from mtl_core.serve.export import export_model, onnx_session


def main() -> None:
    args, loaded, texts = common.text_bench(__doc__.splitlines()[0], repeats=5, n_texts=128, quick_n_texts=32)
    pred = loaded.predictor
    n = len(texts)
    with tempfile.TemporaryDirectory(prefix="mtl-onnx-") as tmp:
        t0 = time.perf_counter()
        info = export_model(pred.model, pred.tokenizer, pred.task_file, tmp, version=pred.version,
                            check_texts=texts[:16])
        print(f"# export {time.perf_counter() - t0:.1f} s, {info['size_mb']:.0f} MB; max |PyTorch - ORT| on 16 texts: "
              f"{max(info['max_abs_diff'].values()):.1e}")
        import onnxruntime

        session = onnx_session(info["path"], threads=torch.get_num_threads())
        print(f"# onnxruntime {onnxruntime.__version__}, intra-op threads {torch.get_num_threads()}")
        names = [o.name for o in session.get_outputs()]
        rows, ratios = [], {}
        for bs in args.batch_sizes:
            encoded = [pred.encode(b) for b in common.sorted_batches(texts, bs)]
            feeds = [{"input_ids": e.input_ids.numpy(), "attention_mask": e.attention_mask.numpy()} for e in encoded]
            t = common.compare({
                "pytorch": lambda encoded=encoded: [pred.logits(e) for e in encoded],
                "onnxrt": lambda feeds=feeds: [session.run(names, f) for f in feeds],
            }, args.repeats)
            ratios[bs] = t["pytorch"].median / t["onnxrt"].median
            for name, tm in t.items():
                rows.append([bs, name, 1000 * tm.median / n, n / tm.median, t["pytorch"].median / tm.median,
                             f"{100 * tm.spread:.0f}%"])
            worst = 0.0
            for e, f in zip(encoded, feeds):
                got = dict(zip(names, session.run(names, f)))
                for name, v in pred.logits(e).logits.items():
                    d = np.abs(v.float().numpy() - got[name])
                    worst = max(worst, float((d[e.attention_mask.bool().numpy()] if d.ndim == 3 else d).max()))
            rows.append([bs, "max |diff| all heads, all batches", f"{worst:.1e}", "", "", ""])
    print(common.table(["batch", "runtime", "ms/text", "texts/s", "speed-up vs PyTorch", "spread"], rows,
                       "ONNX Runtime vs PyTorch (encoder + all heads, forward only)"))
    print()
    for bs, r in ratios.items():
        print(f"batch {bs}: ONNX Runtime {r:.2f}x the speed of PyTorch")


if __name__ == "__main__":
    main()
