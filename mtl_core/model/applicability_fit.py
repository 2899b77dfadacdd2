"""Fit `model.applicability` (see applicability.py) on the representations of training texts.

A thousand seeded training texts per task are run through the shared encoder once (no gradients), and a
multinomial logistic regression learns which task's texts each one is, from the mean-pooled states of three
encoder layers, word-shape statistics and a hashed bag of the input word pieces (measured against the
last layer alone, max-pooling, fewer texts and one-vs-rest: bench/quality/applicability.py). sklearn is used
here only, at fit time; scoring is numpy. Called after training (`train.pipeline`) and after every
fine-tuning round (`rounds.finetune`): the encoder moves, so the representation does too.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from mtl_core.model.applicability import (
    OVERLAP,
    Applicability,
    default_layers,
    piece_bag,
    pieces,
    represent,
    shape_features,
)
from mtl_core.model.encoding import encode_texts
from mtl_core.model.modeling import MultiTaskModel, pool

FIT_TEXTS = 1000  # training texts per task
FRAGMENTS = 0.5  # share of multi-sentence training texts cut to one or two sentences
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
C = 0.1  # inverse L2 strength of the logistic regression (measured: bench/quality/applicability.py)
BUCKETS = 4096  # hashed bag of word pieces
BAG_WEIGHT = 1.0  # bag_scale = this * sqrt(dense features): the bag's norm is then the dense part's


def sample_texts(texts_by_task: Mapping[str, Sequence[str]], n: int = FIT_TEXTS, seed: int = 0,
                 fragments: float = FRAGMENTS) -> dict[str, list[str]]:
    """Up to `n` distinct non-empty texts per task, drawn with `seed`; a `fragments` share of the texts with
    several sentences is cut to one or two of them (a pasted news sentence is still news)."""
    rng = random.Random(seed)
    out = {}
    for task in sorted(texts_by_task):
        texts = sorted({t for t in texts_by_task[task] if isinstance(t, str) and t.strip()})
        rng.shuffle(texts)
        if texts:
            out[task] = [_fragment(t, rng) if rng.random() < fragments else t for t in texts[:n]]
    return out


def _fragment(text: str, rng: random.Random) -> str:
    sentences = [s for s in _SENTENCE.split(text) if s.strip()]
    if len(sentences) < 2:
        return text
    start = rng.randrange(len(sentences))
    return " ".join(sentences[start:start + rng.choice((1, 2))])


def train_texts(prepared: Mapping[str, Mapping[str, Sequence]]) -> dict[str, list[str]]:
    """task -> its training texts, from `prepare_all`'s splits."""
    return {task: [ex.text for ex in splits.get("train", [])] for task, splits in prepared.items()}


@torch.inference_mode()
def embed(model: MultiTaskModel, tokenizer, texts: Sequence[str], layers: Sequence[int] = (),
          batch_size: int = 32) -> tuple[np.ndarray, list[np.ndarray]]:
    """What the predictor's one forward gives `Applicability.score` for `texts`: (N, R) float32 `represent`ation
    (states of `layers`, or `.pooled` when there are none) and each text's word pieces."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # little padding
    reps: list[np.ndarray | None] = [None] * len(texts)
    ids: list[np.ndarray | None] = [None] * len(texts)
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = encode_texts(tokenizer, [texts[i] for i in idx], model.config.max_length)
            mask = batch.attention_mask.to(device)
            out = model.encoder(input_ids=batch.input_ids.to(device), attention_mask=mask,
                                output_hidden_states=bool(layers), return_dict=True)
            pooled = None if layers else pool(out.last_hidden_state.float(), mask, model.config.pooling)
            rep = represent(out.hidden_states, pooled, mask, list(layers))
            for j, (i, p) in enumerate(zip(idx, pieces(batch.input_ids, batch.attention_mask))):
                reps[i], ids[i] = rep[j], p
    finally:
        model.train(was_training)
    width = len(reps[0]) if texts else 0
    return np.asarray(reps, dtype=np.float32).reshape(len(texts), width), ids  # type: ignore[return-value]


def fit_applicability(model: MultiTaskModel, tokenizer, texts_by_task: Mapping[str, Sequence[str]],
                      n: int = FIT_TEXTS, seed: int = 0, shape: bool = True, layers: Sequence[int] | None = None,
                      buckets: int = BUCKETS) -> Applicability | None:
    """Fit on each task's training texts (`texts_by_task`: task -> texts); None with fewer than 2 tasks.
    `layers`: shared layers to pool (default `default_layers`; () = the model's pooled output)."""
    started = time.perf_counter()
    sample = sample_texts(texts_by_task, n, seed)
    if len(sample) < 2:
        return None
    if layers is None:
        layers = default_layers(model.encoder.config.num_hidden_layers)
    domains = list(sample)
    texts = [t for d in domains for t in sample[d]]
    labels = np.asarray([i for i, d in enumerate(domains) for _ in sample[d]])
    rep, ids = embed(model, tokenizer, texts, layers)
    t_embed = time.perf_counter() - started
    return fit_on_features(model, domains, texts, labels, rep, ids, seed=seed, shape=shape, layers=layers,
                           buckets=buckets, started=started,
                           fitted={"texts": {d: len(sample[d]) for d in domains}, "embed_seconds": round(t_embed, 2)})


def fit_on_features(model: MultiTaskModel | None, domains: list[str], texts: list[str], labels: np.ndarray,
                    rep: np.ndarray, ids: list[np.ndarray] | None, *, seed: int = 0, shape: bool = True,
                    layers: Sequence[int] = (), buckets: int = 0, fitted: dict | None = None,
                    started: float | None = None, task_kinds: dict[str, str] | None = None,
                    polarity: dict[str, tuple[float, float]] | None = None) -> Applicability:
    """The classifier and the rules from already embedded texts (the benchmark reuses its embeddings).
    The held-out confusion that decides shared domains comes from the dense features alone (3-fold; cheaper)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    started = started or time.perf_counter()
    x = rep.astype(np.float64)
    if shape:
        x = np.concatenate([x, np.asarray([shape_features(t) for t in texts], dtype=np.float64)], axis=1)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    bag_scale = BAG_WEIGHT * math.sqrt(z.shape[1])
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    held_out = cross_val_predict(LogisticRegression(C=C, max_iter=3000), z, labels, cv=folds, method="predict_proba")
    confusion = np.stack([held_out[labels == i].mean(axis=0) for i in range(len(domains))])
    if buckets:
        z = np.concatenate([z, bag_scale * piece_bag(ids, buckets)], axis=1)
    clf = LogisticRegression(C=C, max_iter=3000).fit(z, labels)
    if model is not None:
        task_kinds = {n: s.kind for n, s in model.tasks.items()}
        polarity = {n: tuple(s.value_range) for n, s in model.tasks.items() if s.kind == "regression"}
    rules = domain_rules(domains, confusion, task_kinds or {}, polarity or {})
    fitted = {**(fitted or {}), "seed": seed, "C": C, "overlap": OVERLAP,
              "seconds": round(time.perf_counter() - started, 2),
              "held_out_confusion": {d: {e: round(float(confusion[i, j]), 3) for j, e in enumerate(domains)}
                                     for i, d in enumerate(domains)}}
    return Applicability(domains=domains, mean=_floats(mean), scale=_floats(scale),
                         weight=[_floats(r) for r in clf.coef_], bias=_floats(clf.intercept_), shape=shape,
                         rules=rules, fitted=fitted, layers=[int(i) for i in layers], buckets=buckets,
                         bag_scale=float(f"{bag_scale:.6g}") if buckets else 1.0)


def domain_rules(domains: list[str], confusion: np.ndarray, task_kinds: dict[str, str],
                 polarity: dict[str, tuple[float, float]]) -> dict[str, dict]:
    """Token tasks: "names". Sentence tasks: "domain" = the task + every task it shares texts with (held-out
    confusion >= OVERLAP either way), + "polarity" = a regression task in that domain whose scale is
    symmetric around 0 (a sentiment-like score: a strong value means an opinion)."""
    rules: dict[str, dict] = {}
    for task, kind in task_kinds.items():
        if kind == "token_classification":
            rules[task] = {"rule": "names"}
            continue
        if task not in domains:
            continue  # no training texts: unknown
        i = domains.index(task)
        domain = [d for j, d in enumerate(domains)
                  if j == i or confusion[i, j] >= OVERLAP or confusion[j, i] >= OVERLAP]
        polar = [d for d in domain if d in polarity and polarity[d][0] == -polarity[d][1] and polarity[d][1] > 0]
        rules[task] = {"rule": "domain", "domain": domain, "polarity": polar[0] if polar else None}
    return rules


def _floats(values) -> list[float]:
    return [float(f"{v:.6g}") for v in np.asarray(values).ravel()]
