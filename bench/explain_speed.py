"""How much the multi-task Predictor and the explain path cost over a bare encoder forward.

    python bench/explain_speed.py [--rounds 3] [--device cpu] [--threads N]

Model: the active workspace model if one is trained, else a fresh `build_model` (pretrained MiniLM,
random heads: same encoder cost). On the same ~50 mixed-length texts, side by side in one run:
  bare     AutoModel forward of the same encoder (SDPA), tokenisation included
  predict  Predictor.predict: every task head + decoding
  explain  predict with attentions (eager) + grad x input saliency for one task
Per text (batch of 1, as in the UI) and batched (50 texts in one call). Targets: predict <= 1.3x bare,
explain <= 4x bare. Integrated gradients (16 steps) is printed for information.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from transformers import AutoModel, AutoTokenizer  # noqa: E402

from mtl_core.model.modeling import ModelConfig, build_model, default_encoder_dir  # noqa: E402
from mtl_core.serve.explain import saliency  # noqa: E402
from mtl_core.serve.predictor import Predictor, load_active_predictor  # noqa: E402
from mtl_core.tasks import load_task_file  # noqa: E402

SALIENCY_TASK = "sentiment"


def load_models(device: str) -> tuple[Predictor, torch.nn.Module, str]:
    """(predictor, bare SDPA encoder with the same weights, description)."""
    home = Path(os.environ.get("MTL_STUDIO_HOME") or ROOT / "workspace")
    registry = home / "models" / "registry.json"
    active = json.loads(registry.read_text())["active"] if registry.exists() else None
    if active:
        pred = load_active_predictor(home, device=device)
        encoder_dir = str(home / "models" / pred.version / "encoder")
        what = f"trained workspace model {pred.version}"
    else:
        torch.manual_seed(0)
        task_file = load_task_file()
        model = build_model(task_file.tasks, ModelConfig())
        pred = Predictor(model, AutoTokenizer.from_pretrained(default_encoder_dir()), task_file, device=device)
        encoder_dir = default_encoder_dir()
        what = "fresh build_model (pretrained MiniLM, random heads; no trained model in the workspace)"
    bare = AutoModel.from_pretrained(encoder_dir, attn_implementation="sdpa").to(pred.device).eval()
    return pred, bare, what


def make_texts(n: int = 50) -> list[str]:
    """Short, medium and long (over 128 tokens, so truncated) texts, deterministic."""
    examples = [e["text"] for e in json.loads((ROOT / "assets" / "examples.json").read_text())]
    texts = []
    for i in range(n):
        base = examples[i % len(examples)]
        words = base.split()
        kind = i % 3
        if kind == 0:
            texts.append(" ".join(words[: 4 + i % 5]))
        elif kind == 1:
            texts.append(base + " " + examples[(i + 1) % len(examples)])
        else:
            texts.append(" ".join(examples[(i + k) % len(examples)] for k in range(6)))
    return texts


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def per_text_runners(pred: Predictor, bare, texts: list[str]) -> dict:
    tok, max_len, dev = pred.tokenizer, pred.max_length, pred.device

    @torch.inference_mode()
    def run_bare():
        for t in texts:
            enc = tok(t, truncation=True, max_length=max_len, return_tensors="pt").to(dev)
            bare(**enc)

    def run_predict():
        for t in texts:
            pred.predict(t)

    def run_explain():
        for t in texts:
            pred.predict(t, with_attention=True)
            saliency(pred, t, SALIENCY_TASK, method="grad_x_input")

    return {"bare": run_bare, "predict": run_predict, "explain": run_explain}


def integrated_gradients_ms(pred: Predictor, texts: list[str]) -> float:
    """Info only (no target): ms per text for 16-step IG, one pass (it is ~20x a forward)."""
    saliency(pred, texts[0], SALIENCY_TASK, method="integrated_gradients", steps=16)
    start = time.perf_counter()
    for t in texts:
        saliency(pred, t, SALIENCY_TASK, method="integrated_gradients", steps=16)
    _sync(pred.device)
    return (time.perf_counter() - start) * 1000 / len(texts)


def batched_runners(pred: Predictor, bare, texts: list[str]) -> dict:
    tok, max_len, dev = pred.tokenizer, pred.max_length, pred.device

    @torch.inference_mode()
    def run_bare():
        enc = tok(texts, truncation=True, max_length=max_len, padding=True, return_tensors="pt").to(dev)
        bare(**enc)

    return {"bare": run_bare, "predict": lambda: pred.predict(texts)}


def measure(runners: dict, rounds: int, device: torch.device) -> dict[str, float]:
    """Median seconds per runner; runners are interleaved each round so drift hits all alike."""
    for fn in runners.values():  # warm-up: first-call allocations, attention switch, caches
        fn()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, fn in runners.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(v) for name, v in times.items()}


def report(title: str, result: dict[str, float], n: int) -> None:
    base = result["bare"]
    print(f"\n{title}")
    for name, secs in result.items():
        print(f"  {name:<12} {secs * 1000 / n:8.2f} ms/text   {secs / base:5.2f}x bare", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default=None, help="cpu / cuda (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # 1 thread = steadier ratios on a shared machine
    pred, bare, what = load_models(args.device)
    texts = make_texts()
    lengths = [len(pred.encode([t]).tokens[0]) for t in texts]
    print(f"model: {what}\ndevice: {pred.device_label}; torch {torch.__version__}")
    print(f"{len(texts)} texts, {min(lengths)}-{max(lengths)} tokens (mean {statistics.mean(lengths):.0f}; "
          f"{sum(n >= pred.max_length for n in lengths)} truncated at {pred.max_length})")
    per_text = measure(per_text_runners(pred, bare, texts), args.rounds, pred.device)
    report("per text (batch of 1, the UI case):", per_text, len(texts))
    batched = measure(batched_runners(pred, bare, texts), args.rounds, pred.device)
    report(f"batched ({len(texts)} texts in one call):", batched, len(texts))
    ig = integrated_gradients_ms(pred, texts[:12])
    print(f"\nintegrated gradients (16 steps, info): {ig:.1f} ms/text = "
          f"{ig / (per_text['bare'] * 1000 / len(texts)):.1f}x bare")
    ok_predict = per_text["predict"] / per_text["bare"] <= 1.3
    ok_explain = per_text["explain"] / per_text["bare"] <= 4.0
    print(f"\ntargets (per text): predict <= 1.3x bare: {'OK' if ok_predict else 'MISSED'}; "
          f"attention + saliency <= 4x bare: {'OK' if ok_explain else 'MISSED'}")


if __name__ == "__main__":
    main()
