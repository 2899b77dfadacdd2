"""What buys NER F1 on uncased MiniLM? Word-shape features, a CRF, constrained BIO decoding: each alone and together.

    python bench/quality/ner_ablation.py                  # 4 heads x 2 seeds, 331 NER steps
    python bench/quality/ner_ablation.py --seeds 0 --steps 100   # a quick look

Single-task NER on the same training split, same recipe (TrainConfig defaults), 331 steps: what NER got in
the 1000-step default run (the 2000-step default gives it 662). Each trained head is decoded twice: per-word argmax (the
old decoder) and Viterbi under BIO constraints (`mtl_core.model.bio_viterbi`; with a CRF: plus its learnt
transitions). Entity F1 (seqeval) on dev, test and dev+test (535 tweets: less noisy than either alone).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `mtl_core` importable

import torch  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from mtl_core.eval.metrics import ner_metrics, task_outputs  # noqa: E402
from mtl_core.model.features import featurize, predicted_word_tags  # noqa: E402
from mtl_core.model.modeling import ModelConfig, build_model, default_encoder_dir  # noqa: E402
from mtl_core.train.loop import TrainConfig, set_seed, train  # noqa: E402
from mtl_core.train.pipeline import prepare  # noqa: E402

HEADS = {"linear": {"word_shape": 0}, "+shape": {"word_shape": 16}, "+crf": {"word_shape": 0, "crf": True},
         "+shape +crf": {"word_shape": 16, "crf": True}}
NER_STEPS = 331  # NER's share of a 1000-step default run (bench/quality/quality.py single_task_steps)


def argmax_tags(spec, feature, logits, n_words: int) -> list[str]:
    tags = ["O"] * n_words
    for piece, word in enumerate(feature.word_index or []):
        if 0 <= word < n_words:
            tags[word] = spec.tag_names[int(logits[piece].argmax())]
    return tags


def run(name: str, overrides: dict, seed: int, steps: int, task_file, prepared, tokenizer) -> dict:
    spec = task_file.by_name("ner")
    set_seed(seed)
    model = build_model([spec], ModelConfig(**overrides))
    t0 = time.process_time()
    train(model, tokenizer, type(task_file)(tasks=[spec]), prepared,
          TrainConfig(steps=steps, eval_every=steps, tasks=["ner"], seed=seed), progress=False)
    cpu = time.process_time() - t0
    crf = model.crf_scores("ner")
    row = {"head": name, "seed": seed, "cpu_s": cpu}
    for split, examples in (("dev", prepared["ner"]["dev"]), ("test", prepared["ner"]["test"]),
                            ("both", prepared["ner"]["dev"] + prepared["ner"]["test"])):
        feats = featurize(spec, examples, tokenizer, model.config.max_length)
        outs = task_outputs(model, spec, feats, tokenizer.pad_token_id, "cpu")
        gold = [list(e.tags) for e in examples]
        row[f"{split}_argmax"] = ner_metrics(gold, [argmax_tags(spec, f, o, len(g)) for f, o, g in zip(feats, outs, gold)])["f1"]
        row[f"{split}_viterbi"] = ner_metrics(gold, [predicted_word_tags(spec, f, o, len(g), crf=crf)
                                                     for f, o, g in zip(feats, outs, gold)])["f1"]
    print(f"  {name} seed {seed}: {cpu:.0f} CPU s, dev+test F1 argmax {row['both_argmax']:.3f} "
          f"viterbi {row['both_viterbi']:.3f}", flush=True)
    return row


def _mean(rows: list[dict], key: str) -> float:
    return statistics.mean(r[key] for r in rows)


def table(rows: list[dict]) -> str:
    lines = ["| head | decoder | dev F1 | test F1 | dev+test F1 (mean ± sd over seeds) | CPU s per run |",
             "|---|---|---|---|---|---|"]
    for head in HEADS:
        mine = [r for r in rows if r["head"] == head]
        if not mine:
            continue
        for dec in ("argmax", "viterbi"):
            both = [r[f"both_{dec}"] for r in mine]
            sd = statistics.stdev(both) if len(both) > 1 else 0.0
            lines.append(f"| {head} | {dec if dec == 'argmax' else 'BIO Viterbi'} | {_mean(mine, f'dev_{dec}'):.3f} | "
                         f"{_mean(mine, f'test_{dec}'):.3f} | {statistics.mean(both):.3f} ± {sd:.3f} | "
                         f"{_mean(mine, 'cpu_s'):.0f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--steps", type=int, default=NER_STEPS)
    ap.add_argument("--heads", nargs="+", default=list(HEADS), choices=list(HEADS))
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    task_file, prepared = prepare()
    tokenizer = AutoTokenizer.from_pretrained(default_encoder_dir())
    rows = [run(h, HEADS[h], s, args.steps, task_file, prepared, tokenizer) for s in args.seeds for h in args.heads]
    print(f"\nSingle-task NER, {args.steps} steps x 32, seeds {args.seeds}; entity F1 (seqeval)\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
