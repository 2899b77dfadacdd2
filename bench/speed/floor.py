"""How close is the Predictor (every task, decoded) to the bare encoder forward, the hardware floor?

    nice -n 19 python bench/speed/floor.py [--quick] [--threads N] [--repeats R] [--n-texts N]

Same texts (test splits, mixed lengths), same run. For batch 1 and batch 64:
  bare forward      AutoModel (same encoder weights, SDPA) on the *same tokenised batches with the same
                    padding* as the Predictor: the floor (tokenisation excluded).
  bare tok+forward  the same plus a plain `tokenizer(..., padding=True)` call (info).
  predict           Predictor.predict(texts, batch_size=B): tokenise with offsets, one forward, six heads,
                    decode every task (softmax, NER spans), Prediction objects.
Breakdown rows time the Predictor's own pieces alone: encode (tokenise), forward (encoder + heads).
Target: predict <= 1.15x bare forward.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `bench` and `mtl_core` importable

from bench import common  # isort: skip  (first: it sets the offline defaults before transformers loads)
import torch
from transformers import AutoModel

TARGET = 1.15


def main() -> None:
    args, loaded, texts = common.text_bench(__doc__.splitlines()[0], repeats=5, n_texts=256, quick_n_texts=64)
    pred = loaded.predictor
    n = len(texts)
    bare = AutoModel.from_pretrained(loaded.encoder_dir, attn_implementation="sdpa").eval()
    private = bool(len(pred.model.private))
    if private:
        print("# note: this model has per-task private upper layers: the Predictor runs more layers than the bare encoder")

    rows, ratios = [], {}
    for bs in args.batch_sizes:
        batches = common.sorted_batches(texts, bs)
        encoded = [pred.encode(b) for b in batches]
        tok = pred.tokenizer

        @torch.inference_mode()
        def bare_forward(encoded=encoded):
            for e in encoded:
                bare(input_ids=e.input_ids, attention_mask=e.attention_mask)

        @torch.inference_mode()
        def bare_tok_forward(batches=batches, tok=tok):
            for b in batches:
                e = tok(b, padding=True, truncation=True, max_length=pred.max_length, return_tensors="pt")
                bare(input_ids=e["input_ids"], attention_mask=e["attention_mask"])

        def predict(bs=bs):
            pred.predict(texts, batch_size=bs)

        def encode_only(batches=batches):
            for b in batches:
                pred.encode(b)

        def forward_only(encoded=encoded):
            for e in encoded:
                pred.logits(e)

        t = common.compare({"bare forward": bare_forward, "bare tok+forward": bare_tok_forward, "predict": predict,
                            "encode only": encode_only, "forward only": forward_only}, args.repeats)
        floor = t["bare forward"].median
        ratios[bs] = t["predict"].median / floor
        rest = t["predict"].median - t["encode only"].median - t["forward only"].median
        for name in ("bare forward", "bare tok+forward", "predict"):
            rows.append([bs, name, 1000 * t[name].median / n, n / t[name].median, t[name].median / floor,
                         f"{100 * t[name].spread:.0f}%"])
        for name in ("encode only", "forward only"):
            rows.append([bs, f"  predict: {name}", 1000 * t[name].median / n, "", t[name].median / floor,
                         f"{100 * t[name].spread:.0f}%"])
        rows.append([bs, "  predict: decode + rest (difference)", 1000 * rest / n, "", rest / floor, ""])

    print(common.table(["batch", "what", "ms/text", "texts/s", "x bare forward", "spread"], rows,
                       "Predictor vs bare encoder forward"))
    print()
    for bs, r in ratios.items():
        print(f"batch {bs}: predict = {r:.3f}x bare forward (target <= {TARGET}x): {common.verdict(r <= TARGET)}")


if __name__ == "__main__":
    main()
