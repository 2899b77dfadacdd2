"""Does the model know when a task does not apply? AUROC of applicability, per method, on the test splits.

    python bench/quality/applicability.py [--n-fit 1000] [--n-small 400] [--n-test 400] [--seed 0]

For every task, its own test texts (positives) against each other task's test texts (negatives), where the
task clearly does not apply: sentiment and sentiment_score are not scored against each other nor against
ner's tweets (opinions live there too); ner ("any text with names") is a rule, so it gets no AUROC row but
shows up in the last table. One forward pass per text gives every representation below (all layers' states,
the input word pieces); each method is a logistic regression (C = 0.1) + word-shape features, fitted on the
same seeded training texts (`--n-fit` per task; "400 texts" = the first `--n-small` of them):

  (a) anchor: the pretrained encoder's mean-pooled last layer, no word shape, multinomial
  (b) the multi-task model's pooled output (last layer): what shipped before
  (c) (b) + max-pooling of the last layer
  (d) mean-pooled layers 2, 4, 6 (`default_layers`)
  (e) (d) + hashed bag of the input word pieces (4096 buckets, sublinear tf)
  (f) (e) one-vs-rest: one binary regression per task, each scored by its own sigmoid
  (g) (d) with all --n-fit texts
  (h) (e) with all --n-fit texts: what `fit_applicability` ships

The last table: share of each test split where each task applies (the shipped rules and threshold).
Results: docs/RESULTS.md, section "Applicability".
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `bench`, `mtl_core` importable

from bench.common import environment, load_predictor, prepared_data, table  # noqa: E402
from mtl_core.model.applicability import default_layers, pieces, represent  # noqa: E402
from mtl_core.model.applicability_fit import BUCKETS, C, fit_on_features, sample_texts, train_texts  # noqa: E402
from mtl_core.model.encoding import encode_texts  # noqa: E402
from mtl_core.model.modeling import default_encoder_dir, load_encoder  # noqa: E402

TARGET = 0.97  # question_type, topic, spam against every other task
TARGET_TASKS = ("question_type", "topic", "spam")
OVERLAPPING = {"sentiment": {"sentiment_score", "ner"}, "sentiment_score": {"sentiment", "ner"}}


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))


@torch.inference_mode()
def embed_all(encoder, tokenizer, texts: list[str], max_length: int):
    """Per text, from one encoder pass: mean-pooled states of every layer (N, L+1, H), max-pooled last layer
    (N, H), word pieces. The mean-pooling is `represent`'s, as the predictor scores."""
    encoder.eval()
    n_states = encoder.config.num_hidden_layers + 1
    means = np.zeros((len(texts), n_states, encoder.config.hidden_size), np.float32)
    maxes = np.zeros((len(texts), encoder.config.hidden_size), np.float32)
    ids: list = [None] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), 32):
        idx = order[start:start + 32]
        batch = encode_texts(tokenizer, [texts[i] for i in idx], max_length)
        out = encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True,
                      return_dict=True)
        means[idx] = represent(out.hidden_states, None, batch.attention_mask, list(range(n_states))
                               ).reshape(len(idx), n_states, -1)
        m = batch.attention_mask.unsqueeze(-1).bool()
        maxes[idx] = out.last_hidden_state.masked_fill(~m, -1e4).max(1).values.numpy()
        for i, p in zip(idx, pieces(batch.input_ids, batch.attention_mask)):
            ids[i] = p
    return means, maxes, ids


def rep_of(emb, layers: list[int], with_max: bool) -> np.ndarray:
    means, maxes, _ = emb
    x = means[:, layers].reshape(len(means), -1)
    return np.concatenate([x, maxes], axis=1) if with_max else x


def one_vs_rest(app, z_fit: np.ndarray, labels: np.ndarray):
    """Refit `app`'s features as k binary regressions; scorer: P(own domain) = the sum of its tasks' sigmoids."""
    from sklearn.linear_model import LogisticRegression

    fits = [LogisticRegression(C=C, max_iter=3000).fit(z_fit, (labels == i).astype(int))
            for i in range(len(app.domains))]

    def score(task, rep, texts, ids):
        z = app.features(rep, texts, ids)
        cols = [fits[app.domains.index(d)].predict_proba(z)[:, 1] for d in app.rules[task]["domain"]]
        return np.clip(np.sum(cols, axis=0), 0, 1)
    return score


def domain_scorer(app):
    def score(task, rep, texts, ids):
        probs = app.domain_probs(rep, texts, ids)
        return probs[:, [app.domains.index(d) for d in app.rules[task]["domain"]]].sum(axis=1)
    return score


def score_all(method, task: str, tests: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """P(`task` applies) for every test split under one method."""
    _, scorer, layers, with_max, test_emb, _ = method
    return {u: scorer(task, rep_of(test_emb[u], layers, with_max), texts, test_emb[u][2]) for u, texts in tests.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-fit", type=int, default=1000, help="training texts per task (default 1000)")
    p.add_argument("--n-small", type=int, default=400, help="of them, for the smaller fits (default 400)")
    p.add_argument("--n-test", type=int, default=400, help="test texts per task, at most (default 400)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    print(environment())
    loaded = load_predictor()
    pred, model = loaded.predictor, loaded.predictor.model
    print(f"# model: {loaded.what}")
    task_file, prepared = prepared_data()
    sample = sample_texts(train_texts(prepared), args.n_fit, args.seed)
    rng = random.Random(args.seed)
    tests = {}
    for task in sample:
        texts = [ex.text for ex in prepared[task]["test"] if ex.text.strip()]
        rng.shuffle(texts)
        tests[task] = texts[:args.n_test]
    domains = list(sample)
    fit_texts = [t for d in domains for t in sample[d]]
    labels = np.asarray([i for i, d in enumerate(domains) for _ in sample[d]])
    small_idx = np.concatenate([np.flatnonzero(labels == i)[:args.n_small] for i in range(len(domains))])
    print(f"# fit: {', '.join(f'{d} {len(sample[d])}' for d in domains)} texts (smaller fits: first "
          f"{args.n_small} each); test: {', '.join(f'{d} {len(tests[d])}' for d in domains)}")

    started = time.perf_counter()
    base = load_encoder(default_encoder_dir())  # the pretrained MiniLM the model started from
    emb = {}
    for name, enc in (("pretrained", base), ("multi-task", model.encoder)):
        emb[name] = (embed_all(enc, pred.tokenizer, fit_texts, model.config.max_length),
                     {t: embed_all(enc, pred.tokenizer, tests[t], model.config.max_length) for t in domains})
    print(f"# embedding: {time.perf_counter() - started:.0f} s")

    last = model.encoder.config.num_hidden_layers
    layers = default_layers(last)
    specs = {  # label: (encoder, layers, max-pool, word shape, buckets, all texts, one-vs-rest)
        "(a) pretrained, last layer (anchor)": ("pretrained", [last], False, False, 0, False, False),
        "(b) multi-task, last layer (before)": ("multi-task", [last], False, True, 0, False, False),
        "(c) (b) + max-pool": ("multi-task", [last], True, True, 0, False, False),
        f"(d) layers {'/'.join(map(str, layers))}": ("multi-task", layers, False, True, 0, False, False),
        "(e) (d) + piece bag": ("multi-task", layers, False, True, BUCKETS, False, False),
        "(f) (e) one-vs-rest": ("multi-task", layers, False, True, BUCKETS, False, True),
        f"(g) (d), {args.n_fit} texts": ("multi-task", layers, False, True, 0, True, False),
        f"(h) (e), {args.n_fit} texts (shipped)": ("multi-task", layers, False, True, BUCKETS, True, False),
    }
    methods, shipped = {}, None
    for label, (enc, lay, mx, shape, buckets, full, ovr) in specs.items():
        fit_emb, test_emb = emb[enc]
        idx = np.arange(len(labels)) if full else small_idx
        t0 = time.perf_counter()
        app = fit_on_features(model, domains, [fit_texts[i] for i in idx], labels[idx],
                              rep_of(fit_emb, lay, mx)[idx], [fit_emb[2][i] for i in idx], seed=args.seed,
                              shape=shape, layers=lay, buckets=buckets)
        z = app.features(rep_of(fit_emb, lay, mx)[idx], [fit_texts[i] for i in idx], [fit_emb[2][i] for i in idx])
        scorer = one_vs_rest(app, z, labels[idx]) if ovr else domain_scorer(app)
        methods[label] = (app, scorer, lay, mx, test_emb, time.perf_counter() - t0)
        shipped = app if "shipped" in label else shipped

    rows_tasks = [t for t in domains if shipped.rules.get(t, {}).get("rule") == "domain"]
    print(f"\n# domains of the sentence tasks (held-out confusion >= {shipped.fitted['overlap']}): "
          + "; ".join(f"{t}: {'+'.join(shipped.rules[t]['domain'])}" for t in rows_tasks))
    rows, verdicts = [], []
    for t in rows_tasks:
        for k, (label, method) in enumerate(methods.items()):
            scores = score_all(method, t, tests)
            row, worst = [t if k == 0 else "", label], 1.0
            for u in domains:
                if u == t or u in OVERLAPPING.get(t, ()):
                    row.append("-")
                    continue
                a = auroc(scores[t], scores[u])
                worst = min(worst, a) if t in TARGET_TASKS else worst
                row.append(f"{a:.3f}")
            rows.append(row)
            if t in TARGET_TASKS:
                verdicts.append((label, t, worst))
    print(table(["task", "method"] + domains, rows, title="AUROC: own test texts vs each other task's"))
    print(f"\n# target >= {TARGET} for {', '.join(TARGET_TASKS)} against every other task (worst AUROC; fit s):")
    for label, (*_, secs) in methods.items():
        worst = {t: w for lab, t, w in verdicts if lab == label}
        print(f"#   {label}: " + ", ".join(f"{t} {w:.3f}" for t, w in worst.items())
              + f" -> {'met' if min(worst.values()) >= TARGET else 'missed'} ({secs:.0f} s)")

    model.applicability = shipped
    rows = []
    for u in domains:
        preds = pred.predict(tests[u])
        rows.append([f"{u} test texts"] + [f"{np.mean([pr.applies_to(t) for pr in preds]):.2f}"
                                            for t in pred.task_names])
    print(table(["texts \\ task applies"] + list(pred.task_names), rows,
                title="share of each test split where each task applies (shipped rules)"))


if __name__ == "__main__":
    main()
