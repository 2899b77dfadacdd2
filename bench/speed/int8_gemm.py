"""The int8 ceiling of this CPU: one encoder-shaped GEMM in fp32 vs int8, in torch and in ONNX Runtime.

    nice -n 19 python bench/speed/int8_gemm.py [--quick] [--threads N] [--repeats R] [--rows 2560 8192]

Only the linear layers of the encoder run in int8 (bench/speed/quantized.py), so their own fp32 / int8 ratio
caps the whole Predictor's int8 speed-up. This measures that ratio without the model around it, for
MiniLM's four GEMM shapes (q/k/v and attention output 384->384, fused q/k/v 384->1152, feed-forward
384->1536 and 1536->384) at the row counts of the benchmarks' batches (2,560 = 64 texts x 40 tokens,
8,192 = 64 x 128):
  torch fp32      nn.Linear (MKL / oneDNN sgemm)
  torch int8      mtl_core.serve.quantize.Int8Linear (fbgemm dynamic quantization, the Predictor's int8 path,
                  per-channel int8 weights, activations quantized per call; no outlier channels)
  ORT fp32 / int8 (if onnxruntime is installed) a one-MatMul graph and its onnxruntime.quantization
                  quantize_dynamic version (MatMulInteger, MLAS kernels), same threads
GMAC/s = rows x in x out / time. Without VNNI/AMX, int8 goes through vpmaddubsw + vpmaddwd, about the
multiply-adds per cycle of fp32 FMAs, so the ratio stays near what fewer bytes buy.
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `bench` and `mtl_core` importable

import numpy as np
import torch

from bench import common

SHAPES = ((384, 384), (384, 1152), (384, 1536), (1536, 384))


def torch_runners(x: torch.Tensor, k: int, n: int) -> dict:
    from mtl_core.serve.quantize import quant_engine, quantize_linears

    fp32 = torch.nn.Sequential(torch.nn.Linear(k, n)).eval()
    int8 = quantize_linears(copy.deepcopy(fp32), ["0"], quant_engine())

    def run(model):
        @torch.inference_mode()
        def go():
            model(x)
        return go

    return {"torch fp32": run(fp32), "torch int8": run(int8)}


def ort_runners(x: np.ndarray, k: int, n: int, threads: int, tmp: str) -> dict:
    try:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        return {}
    w = (np.random.default_rng(0).standard_normal((k, n)) * 0.05).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "gemm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, n])],
                              [numpy_helper.from_array(w, "w")])
    fp32_path, int8_path = os.path.join(tmp, f"mm{k}x{n}.onnx"), os.path.join(tmp, f"mm{k}x{n}_int8.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), fp32_path)
    quantize_dynamic(fp32_path, int8_path, weight_type=QuantType.QInt8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle ORT threads must not spin
    out = {}
    for name, path in (("ORT fp32", fp32_path), ("ORT int8", int8_path)):
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        out[name] = lambda s=session: s.run(None, {"x": x})
    return out


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], repeats=5, quick_repeats=2)
    p.add_argument("--rows", type=int, nargs="+", default=None, help="GEMM rows (default 2560 8192)")
    args = p.parse_args()
    common.setup(args)
    rows_list = args.rows or ([2560] if args.quick else [2560, 8192])
    threads = torch.get_num_threads()
    table, worst = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for m in rows_list:
            for k, n in SHAPES:
                x = torch.randn(m, k)
                # each backend on its own: one's idle threads must not spin through the other's timings
                t = common.compare(torch_runners(x, k, n), args.repeats)
                ort = ort_runners(x.numpy(), k, n, threads, tmp)
                if ort:
                    t.update(common.compare(ort, args.repeats))
                macs = m * k * n
                for backend in ("torch", "ORT"):
                    if f"{backend} fp32" not in t:
                        continue
                    f32, i8 = t[f"{backend} fp32"], t[f"{backend} int8"]
                    ratio = f32.median / i8.median
                    worst.setdefault(backend, []).append(ratio)
                    table.append([m, f"{k}->{n}", backend, macs / f32.median / 1e9, macs / i8.median / 1e9, ratio,
                                  f"{100 * f32.spread:.0f}% / {100 * i8.spread:.0f}%"])
    print(common.table(["rows", "shape", "backend", "fp32 GMAC/s", "int8 GMAC/s", "int8 speed-up", "spread"],
                       table, "One GEMM: fp32 vs int8"))
    print()
    for backend, ratios in worst.items():
        print(f"{backend}: int8 GEMM speed-up over fp32 {min(ratios):.2f}x to {max(ratios):.2f}x on these shapes "
              "(the ceiling of a whole-model int8 speed-up where only the linear layers are int8)")


if __name__ == "__main__":
    main()
