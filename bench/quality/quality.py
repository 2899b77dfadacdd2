"""Does sharing help or hurt each task? Baselines, single-task models and the multi-task model, side by side.

    python bench/quality/quality.py                 # evaluate the active workspace model + train the single-task models
    python bench/quality/quality.py --skip-single   # baselines + multi-task only (a minute)

Single-task models use the same encoder, recipe and budget: each gets exactly the number of steps the
multi-task sampler gave that task in the default run. Results go to docs/RESULTS.md (section "Quality").
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `mtl_core` importable

from mtl_core.eval.metrics import classification_metrics, evaluate, headline, regression_metrics
from mtl_core.model.checkpoint import load_checkpoint
from mtl_core.model.modeling import ModelConfig, build_model
from mtl_core.model.registry import Registry
from mtl_core.model.runner import ModelRunner
from mtl_core.train.loop import TrainConfig, set_seed, train
from mtl_core.train.pipeline import prepare
from mtl_core.train.weighting import TaskSampler

FLOORS = {"sentiment": ("accuracy", 0.85), "sentiment_score": ("pearson", 0.70), "topic": ("accuracy", 0.96),
          "question_type": ("accuracy", 0.93), "spam": ("f1_spam", 0.93), "ner": ("f1", 0.45)}
RESULTS = Path(__file__).resolve().parents[2] / "docs" / "RESULTS.md"


def tfidf_baselines(task_file, prepared) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge

    out = {}
    for spec in task_file.tasks:
        if spec.kind == "token_classification":
            continue
        train_ex, test_ex = prepared[spec.name]["train"], prepared[spec.name]["test"]
        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        x_train = vec.fit_transform([e.text for e in train_ex])
        x_test = vec.transform([e.text for e in test_ex])
        if spec.kind == "classification":
            clf = LogisticRegression(max_iter=2000, C=4.0).fit(x_train, [e.label for e in train_ex])
            out[spec.name] = classification_metrics(spec, [e.label for e in test_ex], list(clf.predict(x_test)))
        else:
            reg = Ridge(alpha=1.0).fit(x_train, [e.label for e in train_ex])
            out[spec.name] = regression_metrics([e.label for e in test_ex], reg.predict(x_test))
    return out


def vader_baseline(prepared) -> dict:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    sia = SentimentIntensityAnalyzer()
    test = prepared["sentiment_score"]["test"]
    pred = [4.0 * sia.polarity_scores(e.text)["compound"] for e in test]
    return regression_metrics([e.label for e in test], pred)


def ner_memory_baseline(prepared) -> dict:
    """Tag each word with its most frequent training tag (a floor for what the encoder adds)."""
    from collections import Counter, defaultdict

    from mtl_core.eval.metrics import ner_metrics

    seen = defaultdict(Counter)
    for ex in prepared["ner"]["train"]:
        for w, t in zip(ex.words, ex.tags):
            seen[w.lower()][t] += 1
    test = prepared["ner"]["test"]
    pred = [[seen[w.lower()].most_common(1)[0][0] if seen[w.lower()] else "O" for w in ex.words] for ex in test]
    return ner_metrics([list(ex.tags) for ex in test], pred)


def single_task_steps(task_file, prepared, cfg: TrainConfig) -> dict[str, int]:
    """The expected steps each task got in the multi-task run (sampler probabilities × total steps)."""
    sizes = {t.name: len(prepared[t.name]["train"]) for t in task_file.tasks}
    boost = {t.name: t.sample_weight for t in task_file.tasks}
    sampler = TaskSampler(sizes, cfg.sampling, cfg.temperature, random.Random(0), boost=boost)
    return {n: max(20, round(p * cfg.steps)) for n, p in zip(sampler.names, sampler.probs)}


def train_single(task_file, prepared, name: str, steps: int, cfg: TrainConfig, tokenizer,
                 model_config: ModelConfig) -> tuple[dict, float]:
    """One task alone, same architecture (`model_config`: the multi-task checkpoint's) and recipe."""
    from dataclasses import replace

    t0 = time.perf_counter()
    set_seed(cfg.seed)
    spec = task_file.by_name(name)
    model = build_model([spec], replace(model_config, encoder=""))
    one = type(task_file)(tasks=[spec])
    single_cfg = replace(cfg, steps=steps, eval_every=max(steps // 2, 1), tasks=[name])
    train(model, tokenizer, one, prepared, single_cfg, progress=False)
    metrics = evaluate(ModelRunner.of(model, tokenizer, "cpu"), one, prepared, "test")
    return metrics["tasks"][name], time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--version", help="multi-task version to evaluate (default: the active one)")
    ap.add_argument("--skip-single", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    task_file, prepared = prepare()
    reg = Registry()
    version = args.version or reg.active
    if version is None:
        print("no trained model: run `python -m mtl_core train` first", file=sys.stderr)
        return 2
    model, tokenizer, ck_tasks, meta = load_checkpoint(reg.path_of(version))
    mtl = headline(evaluate(ModelRunner.of(model, tokenizer, "cpu"), ck_tasks, prepared, "test"))
    cfg = TrainConfig(**{k: v for k, v in meta["train_config"].items() if k in TrainConfig.__dataclass_fields__})
    rows = {"tfidf": tfidf_baselines(task_file, prepared), "vader": {"sentiment_score": vader_baseline(prepared)},
            "memory": {"ner": ner_memory_baseline(prepared)}, "mtl": mtl, "single": {}, "single_time": {}}
    if not args.skip_single:
        steps = single_task_steps(task_file, prepared, cfg)
        print("single-task budgets (steps):", steps)
        for name, n in steps.items():
            rows["single"][name], rows["single_time"][name] = train_single(task_file, prepared, name, n, cfg, tokenizer,
                                                                           model.config)
            print(f"  {name}: {n} steps, {rows['single_time'][name]:.0f}s, test {rows['single'][name]['primary']:.3f}")
    table = render(rows, version, steps if not args.skip_single else {}, meta)
    print(table)
    if not args.no_write:
        write_section(table)
    return 0


def _get(rows: dict, kind: str, task: str, metric: str):
    m = rows[kind].get(task)
    return None if m is None or metric not in m else float(m[metric])


def render(rows: dict, version: str, steps: dict, meta: dict) -> str:
    timings = meta.get("metrics", {}).get("timings", {})
    lines = [
        f"Multi-task model: workspace version `{version}` (default recipe, trained in "
        f"{timings.get('total', float('nan')):.0f} s on this 2-core CPU). Test splits, seed 0.",
        "",
        "| task | metric | floor | TF-IDF+LR / VADER / word-memory | single-task (same budget) | multi-task | multi − single |",
        "|---|---|---|---|---|---|---|",
    ]
    for task, (metric, floor) in FLOORS.items():
        base = _get(rows, "tfidf", task, metric)
        if task == "sentiment_score":
            base_s = f"{base:.3f} / VADER {_get(rows, 'vader', task, metric):.3f}"
        elif task == "ner":
            base_s = f"memory {_get(rows, 'memory', task, metric):.3f}"
        else:
            base_s = f"{base:.3f}"
        single = _get(rows, "single", task, metric)
        mtl = _get(rows, "mtl", task, metric)
        ok = "✅" if mtl is not None and mtl >= floor else "❌"
        delta = f"{mtl - single:+.3f}" if single is not None and mtl is not None else "–"
        single_s = f"{single:.3f} ({steps.get(task, '?')} steps)" if single is not None else "–"
        lines.append(f"| {task} | {metric} | {floor} | {base_s} | {single_s} | {mtl:.3f} {ok} | {delta} |")
    return "\n".join(lines)


def write_section(table: str) -> None:
    start, end = "<!-- quality:start -->", "<!-- quality:end -->"
    body = f"{start}\n## Quality (`python bench/quality/quality.py`)\n\n{table}\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else "# Results\n"
    if start in text:
        text = text[: text.index(start)] + body + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + body + "\n"
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)


if __name__ == "__main__":
    np.random.seed(0)
    sys.exit(main())
