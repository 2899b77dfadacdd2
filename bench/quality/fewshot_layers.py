"""Which encoder layers transfer to a held-out task? Few-shot logistic regression (k per class, 5 draws) on
mean-pooled layer sets of the multi-task encoder (trained without the task) and of the raw pretrained MiniLM.

    python bench/quality/fewshot_layers.py --bases spam=/tmp/heldout_spam question_type=... topic=... [--k 8] \
        [--split dev]

Bases as in bench/quality/fewshot.py. Prints accuracy per (encoder, layer set) on the test split, or on the dev
split (`--split dev`: choose a layer set there, then read its test figure). Results: docs/RESULTS.md,
"Few-shot new tasks".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import environment, table  # noqa: E402
from bench.quality.fewshot import RawEncoder, draw  # noqa: E402
from mtl_core.data import prepare_all  # noqa: E402
from mtl_core.serve.fewshot import normalise  # noqa: E402
from mtl_core.serve.predictor import load_active_predictor  # noqa: E402
from mtl_core.tasks import load_task_file  # noqa: E402
from mtl_core.workspace import data_cache_dir  # noqa: E402

SETS = {"6": (6,), "4": (4,), "3": (3,), "1,2,3": (1, 2, 3), "3,4,5": (3, 4, 5), "2,4,6": (2, 4, 6),
        "1..6": (1, 2, 3, 4, 5, 6), "0..6": (0, 1, 2, 3, 4, 5, 6)}


def _means(states, mask) -> list[np.ndarray]:
    m = mask.unsqueeze(-1).float()
    n = m.sum(1).clamp(min=1)
    return [normalise(((s.float() * m).sum(1) / n).numpy()) for s in states]


@torch.inference_mode()
def layers(forward, texts: list[str]) -> list[np.ndarray]:
    """Per layer (embeddings = 0): (N, H) unit-length mean-pooled states."""
    parts = [_means(*forward(texts[i:i + 64])) for i in range(0, len(texts), 64)]
    return [np.concatenate([p[layer] for p in parts]) for layer in range(len(parts[0]))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bases", nargs="+", required=True)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--split", choices=("test", "dev"), default="test")
    args = p.parse_args()
    print(environment())
    raw, tf, rows = RawEncoder(128), load_task_file(), []

    def raw_forward(texts):
        b = raw.tok(texts, truncation=True, max_length=128, padding=True, return_tensors="pt")
        return raw.enc(**b, output_hidden_states=True).hidden_states, b["attention_mask"]

    for task, home in (b.split("=", 1) for b in args.bases):
        pred = load_active_predictor(home)

        def mtl_forward(texts, pred=pred):
            b = pred.encode(texts)
            out = pred.model(input_ids=b.input_ids, attention_mask=b.attention_mask, shape_ids=b.shape_ids,
                             output_hidden_states=True)
            return out.hidden_states, b.attention_mask

        data = prepare_all(tf, data_cache_dir(home), seed=0)[task]
        scored = data[args.split]
        gold = np.array([e.label for e in scored])
        feats = {"mtl": layers(mtl_forward, [e.text for e in scored]),
                "raw": layers(raw_forward, [e.text for e in scored])}
        acc: dict = {}
        for d in range(args.draws):
            shots = draw(data["train"], tf.by_name(task).labels, args.k, seed=8000 + d)
            y = [e.label for e in shots]
            for enc, fwd in (("mtl", mtl_forward), ("raw", raw_forward)):
                xs = layers(fwd, [e.text for e in shots])
                for name, ls in SETS.items():
                    clf = LogisticRegression(C=10, max_iter=2000).fit(normalise(np.concatenate([xs[i] for i in ls], 1)), y)
                    xt = normalise(np.concatenate([feats[enc][i] for i in ls], 1))
                    acc.setdefault((enc, name), []).append(float((clf.predict(xt) == gold).mean()))
        for enc in ("mtl", "raw"):
            rows.append([task, enc, *[f"{np.mean(acc[(enc, n)]):.3f}" for n in SETS]])
    print(table(["task", "encoder", *[f"layers {n}" for n in SETS]], rows, f"k={args.k}, {args.draws} draws, {args.split} split"))


if __name__ == "__main__":
    main()
