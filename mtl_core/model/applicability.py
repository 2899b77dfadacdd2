"""Does a task apply to a text? Every head answers every text; this says which answers mean something.

Kept as `model.applicability` (None when the checkpoint has none: then every task applies, score unknown)
and saved as `applicability.json` in the checkpoint. Scoring costs no second forward pass: it reads what the
one forward of the predictions already computed (`represent`): the mean-pooled states of a few shared encoder
layers (`layers`, from `MultiTaskOutput.hidden_states`) and a hashed bag of the input word pieces the model
was given (`buckets`). A file saved before those existed (no `layers`) scores `MultiTaskOutput.pooled` alone.
numpy at scoring; the fitting (sklearn) lives in `applicability_fit.py`.

How "applies" is decided, per task (`rules`):

- "domain" (sentence tasks): a multinomial logistic regression tells which task's training texts a text
  looks like (features: the representation above plus a few word-shape statistics the uncased encoder
  cannot see, `shape_features`). A task applies with probability P(the text is from one of its `domain`
  tasks). `domain` is the task itself plus every task whose texts the classifier confuses with it on
  held-out texts (`OVERLAP`): sentiment and sentiment_score share reviews, tweets and editorials, so
  "opinionated text" is their common domain.
- "polarity" (optional, on top of "domain"): when the domain holds a regression task with a scale
  symmetric around 0 (a sentiment score), a text that this head scores clearly off neutral (|value| past
  a quarter of the scale: VADER's mild opinions are 1-2 of 4) is opinionated wherever it comes from:
  p = max(domain p, strength p).
- "names" (token tasks): applies when the text names something: the head found an entity, or a word is
  capitalised where a sentence does not start. p is 1 or 0 (a rule, not an estimate).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from mtl_core.types import RegressionPrediction, TaskPrediction, TokenPrediction

FILE = "applicability.json"
OVERLAP = 0.25  # held-out mean P(other task's domain) at or above which two tasks share a domain
STRENGTH_SLOPE = 12.0  # polarity strength: p = sigmoid(SLOPE * (|value| / half scale - STRENGTH_AT))
STRENGTH_AT = 0.25  # p = 0.5 at a quarter of the scale (|score| 1 of 4): "best night ever!!" scores ~1.6
N_SHAPE = 9
_HASH = 2654435761  # Knuth's multiplicative hash: word-piece id -> bucket

_URL = re.compile(r"https?://|www\.", re.IGNORECASE)
_MENTION = re.compile(r"(?:^|\s)@\w")
_HASHTAG = re.compile(r"(?:^|\s)#\w")
_WORD = re.compile(r"\S+")
_SENTENCE_END = (".", "!", "?", ":", ";", '"', "\u201d")
_NOT_NAMES = {"I", "I'm", "I'll", "I've", "I'd", "I\u2019m", "OK", "Ok"}


def shape_features(text: str) -> list[float]:
    """What the uncased, mean-pooled encoder does not keep: length, casing, digits, @/#/URL, punctuation."""
    words = text.split()
    n_alpha = sum(c.isalpha() for c in text) or 1
    n = max(len(text), 1)
    later = words[1:]
    return [math.log1p(len(text)), math.log1p(len(words)), sum(c.isupper() for c in text) / n_alpha,
            sum(c.isdigit() for c in text) / n, sum(w[:1].isupper() for w in later) / max(len(later), 1),
            float(bool(_MENTION.search(text))), float(bool(_HASHTAG.search(text))), float(bool(_URL.search(text))),
            sum(not c.isalnum() and not c.isspace() for c in text) / n]


def default_layers(n_layers: int) -> list[int]:
    """Which shared layers' states to pool (0 = the embeddings): a third, two thirds and all the way up."""
    return sorted({max(1, n_layers // 3), max(1, 2 * n_layers // 3), max(1, n_layers)})


def represent(hidden_states, pooled, mask: torch.Tensor, layers: list[int]) -> np.ndarray | None:
    """(B, len(layers) * H) float32: mean-pooled states of `layers` (`hidden_states`: embeddings + each layer's
    (B, T, H)), or the model's `pooled` (B, H) when `layers` is empty; None when the forward kept neither."""
    if not layers:
        return None if pooled is None else pooled.float().cpu().numpy()
    if hidden_states is None or max(layers) >= len(hidden_states):
        return None
    m = mask.to(hidden_states[0].device).unsqueeze(-1).float()
    n = m.sum(1).clamp(min=1.0)
    return torch.cat([(hidden_states[i].float() * m).sum(1) / n for i in layers], dim=1).cpu().numpy()


def pieces(input_ids: torch.Tensor, mask: torch.Tensor) -> list[np.ndarray]:
    """Each text's input word-piece ids (padding dropped), as the model was given them."""
    ids, keep = input_ids.cpu().numpy(), mask.cpu().numpy().astype(bool)
    return [row[k] for row, k in zip(ids, keep)]


def piece_bag(ids: list[np.ndarray], buckets: int) -> np.ndarray:
    """(B, buckets) hashed bag of word pieces: sublinear counts (1 + log tf), unit length."""
    x = np.zeros((len(ids), buckets), dtype=np.float32)
    for row, a in enumerate(ids):
        np.add.at(x[row], (np.asarray(a, dtype=np.int64) * _HASH % 2**32) % buckets, 1.0)
    x = np.where(x > 0, 1.0 + np.log(np.maximum(x, 1.0)), 0.0).astype(np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)


def capitalised_names(text: str) -> list[str]:
    """Words that look like names: capitalised (not all caps), not where a sentence starts, not "I"."""
    out, start = [], True
    for m in _WORD.finditer(text):
        word = m.group().strip("\"'\u201c\u2018([{")
        core = word.rstrip(".,!?:;\"')]}\u201d\u2019")
        if (not start and core[:1].isupper() and any(c.islower() for c in core[1:]) and core not in _NOT_NAMES):
            out.append(core)
        start = not word or word.endswith(_SENTENCE_END) or "\n" in text[m.end():m.end() + 1]
    return out


def names_score(text: str, answer: TaskPrediction | None) -> float:
    """1.0 when the text names something (an entity found by the head, or a capitalised name), else 0.0."""
    if isinstance(answer, TokenPrediction) and answer.spans:
        return 1.0
    return 1.0 if capitalised_names(text) else 0.0


def strength_score(answer: TaskPrediction | None) -> float | None:
    """How strongly a polarity regression (scale symmetric around 0) reads an opinion, as a probability."""
    if not isinstance(answer, RegressionPrediction) or answer.high <= 0:
        return None
    x = STRENGTH_SLOPE * (abs(answer.value) / answer.high - STRENGTH_AT)
    return 1.0 / (1.0 + math.exp(-x))


@dataclass
class Applicability:
    """A fitted applicability model: a domain classifier over the tasks' texts plus one rule per task."""

    domains: list[str]  # classes of the domain classifier: the tasks whose training texts it saw
    mean: list[float]  # standardisation of the dense features (representation, then shape features if `shape`)
    scale: list[float]
    weight: list[list[float]]  # (len(domains), dense features + buckets)
    bias: list[float]
    shape: bool  # shape_features appended to the representation
    rules: dict[str, dict]  # task -> {"rule": "domain", "domain": [...], "polarity": task|None} | {"rule": "names"}
    fitted: dict = field(default_factory=dict)  # texts per task, seed, held-out confusion, seconds
    layers: list[int] = field(default_factory=list)  # shared layers mean-pooled; [] = `MultiTaskOutput.pooled`
    buckets: int = 0  # hashed bag of the input word pieces appended (not standardised); 0 = none
    bag_scale: float = 1.0  # the unit-length bag is multiplied by this (its weight against the dense features)

    def __post_init__(self) -> None:
        k, f = len(self.domains), len(self.mean)
        if not k or len(self.scale) != f or len(self.bias) != k or len(self.weight) != k \
                or any(len(row) != f + self.buckets for row in self.weight) or self.buckets < 0 \
                or any(i < 0 for i in self.layers):
            raise ValueError("applicability: the classifier's shapes do not agree")
        for task, rule in self.rules.items():
            kind = rule.get("rule")
            if kind not in ("domain", "names"):
                raise ValueError(f"applicability: task {task!r} has unknown rule {kind!r}")
            if kind == "domain" and not set(rule.get("domain") or []) <= set(self.domains):
                raise ValueError(f"applicability: task {task!r} names a domain the classifier lacks")
        self._w = np.asarray(self.weight, dtype=np.float32).T  # (F + buckets, K)
        self._b = np.asarray(self.bias, dtype=np.float32)
        self._mu = np.asarray(self.mean, dtype=np.float32)
        self._sd = np.asarray(self.scale, dtype=np.float32)

    @property
    def rep_size(self) -> int:
        """Width of the representation `represent` gives for `layers`."""
        return len(self.mean) - (N_SHAPE if self.shape else 0)

    def features(self, rep: np.ndarray, texts: list[str], ids: list[np.ndarray] | None = None) -> np.ndarray:
        x = np.asarray(rep, dtype=np.float32)
        if self.shape:
            x = np.concatenate([x, np.asarray([shape_features(t) for t in texts], dtype=np.float32)], axis=1)
        x = (x - self._mu) / self._sd
        if self.buckets:
            x = np.concatenate([x, self.bag_scale * piece_bag(ids, self.buckets)], axis=1)
        return x

    def domain_probs(self, rep: np.ndarray, texts: list[str], ids: list[np.ndarray] | None = None) -> np.ndarray:
        """(B, R) representations of `texts` (+ their word pieces) -> (B, len(domains)) P(text is each task's)."""
        z = self.features(rep, texts, ids) @ self._w + self._b
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def task_scores(self, probs: np.ndarray, text: str, answers: dict[str, TaskPrediction]) -> dict[str, float]:
        """One text: task -> probability that it applies (`probs`: its row of `domain_probs`)."""
        index = {d: i for i, d in enumerate(self.domains)}
        out = {}
        for task, rule in self.rules.items():
            if rule["rule"] == "names":
                out[task] = names_score(text, answers.get(task))
                continue
            p = float(sum(probs[index[d]] for d in rule["domain"]))
            strong = strength_score(answers.get(rule["polarity"])) if rule.get("polarity") else None
            out[task] = round(min(1.0, max(p, strong or 0.0)), 4)
        return out

    def score(self, rep: np.ndarray | None, texts: list[str], answers: list[dict[str, TaskPrediction]],
              ids: list[np.ndarray] | None = None) -> list[dict[str, float]]:
        """A batch: per text, task -> probability that the task applies (`rep`: `represent`'s output, `ids`:
        `pieces`). Unknown ({}) without a representation of the right size, or without the pieces it needs."""
        if rep is None or len(texts) == 0 or np.shape(rep)[-1] != self.rep_size or (self.buckets and ids is None):
            return [{} for _ in texts]
        probs = self.domain_probs(rep, texts, ids)
        return [self.task_scores(probs[i], t, a) for i, (t, a) in enumerate(zip(texts, answers))]

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}

    @classmethod
    def from_dict(cls, data: dict) -> Applicability:
        try:
            return cls(domains=[str(d) for d in data["domains"]], mean=data["mean"], scale=data["scale"],
                       weight=data["weight"], bias=data["bias"], shape=bool(data["shape"]),
                       rules={str(k): dict(v) for k, v in data["rules"].items()}, fitted=dict(data.get("fitted", {})),
                       layers=[int(i) for i in data.get("layers", [])], buckets=int(data.get("buckets", 0)),
                       bag_scale=float(data.get("bag_scale", 1.0)))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"applicability: malformed ({type(exc).__name__}: {exc})") from None


def save_applicability(app: Applicability, out_dir: str | Path) -> Path:
    path = Path(out_dir) / FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(app.to_dict(), separators=(",", ":")), encoding="utf-8")
    tmp.replace(path)
    return path
