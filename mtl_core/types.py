"""Typed outputs of the Predictor. Plain dataclasses: JSON-friendly through `to_dict`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Union

import numpy as np


@dataclass(frozen=True)
class ClassPrediction:
    """A sentence-classification head's answer."""

    label: str
    score: float  # probability of `label`
    probs: dict[str, float]  # every label -> probability, sums to 1
    margin: float  # top-1 minus top-2 probability: small = unsure
    kind: str = "classification"
    fewshot: bool = False  # answered by a few-shot head on the frozen encoder (serve/fewshot.py), not a trained one
    estimated_accuracy: float | None = None  # few-shot: cross-validated accuracy on the labels so far


@dataclass(frozen=True)
class RegressionPrediction:
    """A regression head's answer, on the task's own scale (e.g. -4..+4)."""

    value: float
    low: float  # scale bounds from the task file, for gauges
    high: float
    kind: str = "regression"


@dataclass(frozen=True)
class Span:
    """An entity found by a token-classification head; `text == source[start:end]`."""

    start: int  # character offset into the original text
    end: int
    label: str  # entity type without the B-/I- prefix
    text: str
    score: float  # mean probability of the tags that make up the span


@dataclass(frozen=True)
class TokenPrediction:
    """A token-classification (BIO) head's answer."""

    spans: list[Span]
    tags: list[str]  # one tag per word-piece token (special tokens get "O")
    kind: str = "token_classification"


@dataclass(frozen=True)
class MultiLabelPrediction:
    """A multi-label head's answer: every label whose sigmoid probability reaches its threshold."""

    labels: list[str]  # the chosen labels (probs[l] >= thresholds[l]), in task-file order; may be empty
    probs: dict[str, float]  # every label -> its own probability (independent: they need not sum to 1)
    thresholds: dict[str, float]  # every label -> its decision threshold (tuned on dev after training)
    kind: str = "multilabel_classification"
    fewshot: bool = False  # answered by a few-shot head (serve/fewshot.py), not a trained one
    estimated_accuracy: float | None = None  # few-shot: cross-validated micro-F1 on the labels so far


TaskPrediction = Union[ClassPrediction, RegressionPrediction, TokenPrediction, MultiLabelPrediction]

APPLIES_THRESHOLD = 0.5  # a task whose applicability is below this does not apply to the text


@dataclass
class Prediction:
    """Every task's answer for one text, from one forward pass of the shared encoder."""

    text: str
    tasks: dict[str, TaskPrediction]
    n_tokens: int  # word pieces the full text needs, special tokens included
    truncated: bool  # True when n_tokens exceeded the model's max length
    tokens: list[str] = field(default_factory=list)  # word pieces actually seen (with [CLS]/[SEP])
    offsets: list[tuple[int, int]] = field(default_factory=list)  # char span per token; (0, 0) = special
    attentions: np.ndarray | None = None  # (layers, heads, T, T) float32, rows sum to 1
    applies: dict[str, float] = field(default_factory=dict)  # task -> probability that it applies (absent = unknown)

    def applies_to(self, task: str) -> bool:
        """False only when the model knows the task does not apply to this text (model/applicability.py)."""
        p = self.applies.get(task)
        return p is None or p >= APPLIES_THRESHOLD

    @property
    def truncated_at(self) -> int | None:
        """Character offset where the model stopped reading, or None when it read everything."""
        if not self.truncated:
            return None
        ends = [e for s, e in self.offsets if e > s]
        return max(ends) if ends else 0

    def to_dict(self, with_attention: bool = False) -> dict:
        out = {
            "text": self.text,
            "tasks": {name: asdict(p) for name, p in self.tasks.items()},
            "n_tokens": self.n_tokens,
            "truncated": self.truncated,
            "truncated_at": self.truncated_at,
            "applies": dict(self.applies),
        }
        if with_attention and self.attentions is not None:
            out["tokens"] = self.tokens
            out["attentions"] = self.attentions.tolist()
        return out
