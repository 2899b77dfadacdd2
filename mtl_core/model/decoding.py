"""Turn one row of head outputs into a typed task prediction."""

from __future__ import annotations

import re

import numpy as np

from mtl_core.data.bio import tags_to_spans
from mtl_core.model.bio_viterbi import decode_words
from mtl_core.model.encoding import EncodedBatch
from mtl_core.tasks import MULTILABEL, TaskSpec
from mtl_core.types import ClassPrediction, MultiLabelPrediction, RegressionPrediction, Span, TokenPrediction

DEFAULT_THRESHOLD = 0.5  # a multi-label head's threshold for a label that has no tuned one


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))  # clipped: no overflow warning for huge logits


def task_thresholds(model, spec: TaskSpec) -> dict[str, float]:
    """A multi-label head's per-label thresholds: `model.thresholds[task]` (tuned on dev after training,
    saved as thresholds.json), DEFAULT_THRESHOLD for a label without one."""
    saved = (getattr(model, "thresholds", None) or {}).get(spec.name) or {}
    return {label: float(saved.get(label, DEFAULT_THRESHOLD)) for label in spec.labels}


def chosen_labels(spec: TaskSpec, probs: np.ndarray, thresholds: dict[str, float] | None) -> list[str]:
    """The labels whose probability reaches their threshold, in task-file order. probs: (n_labels,)."""
    thresholds = thresholds or {}
    return [lab for lab, p in zip(spec.labels, probs) if p >= thresholds.get(lab, DEFAULT_THRESHOLD)]


def decode_multilabel(spec: TaskSpec, logits: np.ndarray, thresholds: dict[str, float] | None) -> MultiLabelPrediction:
    """(n_labels,) logits -> independent sigmoid probabilities, each label chosen at its own threshold."""
    probs = sigmoid(logits.astype(np.float64))
    thr = {lab: float((thresholds or {}).get(lab, DEFAULT_THRESHOLD)) for lab in spec.labels}
    return MultiLabelPrediction(labels=chosen_labels(spec, probs, thr),
                                probs={lab: float(p) for lab, p in zip(spec.labels, probs)}, thresholds=thr)


def regression_value(spec: TaskSpec, raw: float) -> float:
    """Heads predict on [-1, 1]; map back to the task's scale (and clip into it)."""
    lo, hi = spec.value_range
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    return float(np.clip(mid + half * raw, lo, hi))


def regression_target(spec: TaskSpec, value: float) -> float:
    lo, hi = spec.value_range
    return (float(value) - (lo + hi) / 2) / ((hi - lo) / 2)


def decode_class(spec: TaskSpec, logits: np.ndarray) -> ClassPrediction:
    probs = softmax(logits.astype(np.float64))
    top = np.argsort(-probs)
    margin = float(probs[top[0]] - probs[top[1]]) if len(probs) > 1 else 1.0
    return ClassPrediction(
        label=spec.labels[int(top[0])],
        score=float(probs[top[0]]),
        probs={lab: float(p) for lab, p in zip(spec.labels, probs)},
        margin=margin,
    )


def decode_tokens(spec: TaskSpec, logits: np.ndarray, batch: EncodedBatch, row: int, text: str,
                  crf: dict | None = None) -> TokenPrediction:
    """Word tags from the first piece of each word, decoded as one valid BIO sequence (`bio_viterbi`);
    a word's other pieces take its entity (as I-), specials and empty pieces are "O"."""
    n = batch.lengths[row]
    probs = softmax(logits[:n].astype(np.float64))
    names = spec.tag_names
    starts = batch.word_starts(row, text)
    firsts = [i for i in range(n) if starts[i]]
    best = dict(zip(firsts, decode_words(logits[firsts], names, crf)))
    tags, words = [], []  # words: (start, end, tag, prob)
    current = "O"
    for i in range(n):
        s, _ = batch.offsets[row][i]
        if starts[i]:
            k = best[i]
            current = names[k]
            words.append((s, _word_end(text, s), current, float(probs[i, k])))
            tags.append(current)
        elif batch.offsets[row][i][1] > s:
            tags.append("I-" + current[2:] if current != "O" else "O")
        else:
            tags.append("O")
            current = "O"
    return TokenPrediction(spans=bio_to_spans(words, text), tags=tags)


_NON_SPACE = re.compile(r"\S*")  # str patterns: \s is exactly str.isspace()


def _word_end(text: str, start: int) -> int:
    """First whitespace at or after `start` (or the text's end)."""
    return _NON_SPACE.match(text, start).end()


def bio_to_spans(words: list[tuple[int, int, str, float]], text: str) -> list[Span]:
    """Word-level (start, end, tag, prob) -> `Span`s: `data.bio.tags_to_spans` with trailing punctuation
    trimmed; a span's score is the mean probability of its words' tags; empty spans are dropped."""
    found = tags_to_spans([(w[0], w[1]) for w in words], [w[2] for w in words], text, trim_punct=True)
    spans = []
    for span in found:
        if span.end <= span.start:
            continue
        probs = [words[i][3] for i in span.words]
        score = float(probs[0]) if len(probs) == 1 else float(np.mean(probs))  # 1 word: skip numpy's overhead
        spans.append(Span(start=span.start, end=span.end, label=span.label, text=text[span.start:span.end],
                          score=score))
    return spans


def decode_task(spec: TaskSpec, logits: np.ndarray, batch: EncodedBatch, row: int, text: str, crf: dict | None = None,
                thresholds: dict[str, float] | None = None):
    """`thresholds`: a multi-label head's per-label thresholds (`task_thresholds`); 0.5 where missing."""
    if spec.kind == "classification":
        return decode_class(spec, logits)
    if spec.kind == MULTILABEL:
        return decode_multilabel(spec, logits, thresholds)
    if spec.kind == "regression":
        lo, hi = spec.value_range
        return RegressionPrediction(value=regression_value(spec, float(logits[0])), low=lo, high=hi)
    return decode_tokens(spec, logits, batch, row, text, crf)
