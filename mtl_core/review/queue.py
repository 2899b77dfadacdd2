"""Which texts deserve a human look, and why. Pure scoring on `Prediction`s: no database, no model loading.

Every candidate carries a reason, a score in [0, 1] (higher = look first) and a sentence saying why.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mtl_core.review import multilabel
from mtl_core.tasks import ContradictionRule, TaskFile
from mtl_core.types import (
    ClassPrediction,
    MultiLabelPrediction,
    Prediction,
    RegressionPrediction,
    TaskPrediction,
    TokenPrediction,
)

# Tie-break between equal scores: a broken rule is more telling than mere doubt.
REASON_PRIORITY = {
    "contradiction": 0,
    "model_vs_label": 1,
    "annotator_conflict": 2,
    "version_vs_version": 3,
    "uncertain": 4,
}


@dataclass(frozen=True)
class Candidate:
    index: int  # position of the text in the scored list
    text: str
    reason: str
    task: str | None
    score: float
    detail: str
    model_version: str | None = None


def rank(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Highest score first; ties broken by reason priority, then input order."""
    return sorted(candidates, key=lambda c: (-c.score, REASON_PRIORITY.get(c.reason, 9), c.index))


def _span_key(span: Any) -> tuple[int, int, str]:
    if isinstance(span, Mapping):
        return int(span["start"]), int(span["end"]), str(span["label"])
    return span.start, span.end, span.label


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _width(answer: RegressionPrediction) -> float:
    """The task's scale width; a degenerate range falls back to 1 rather than dividing by zero."""
    return float(answer.high - answer.low) or 1.0


def normalised_entropy(probs: Mapping[str, float]) -> float:
    """Entropy divided by its maximum, log(K): 0 = certain, 1 = uniform."""
    if len(probs) < 2:
        return 0.0
    h = -sum(p * math.log(p) for p in probs.values() if p > 0)
    return h / math.log(len(probs))


def uncertainty(pred: Prediction, index: int) -> list[Candidate]:
    """Classification: small margin / high entropy. NER: the least confident span. Multi-label: the probability
    closest to its threshold. Not for a task that does not apply to the text (`Prediction.applies_to`): its
    doubt says nothing about the text."""
    out = []
    for task, answer in pred.tasks.items():
        if not pred.applies_to(task):
            continue
        if isinstance(answer, ClassPrediction):
            score = 0.5 * (1.0 - answer.margin) + 0.5 * normalised_entropy(answer.probs)
            ranked = sorted(answer.probs.items(), key=lambda kv: -kv[1])
            second = f", runner-up {ranked[1][0]} ({ranked[1][1]:.2f})" if len(ranked) > 1 else ""
            detail = f"{task}={answer.label} ({answer.score:.2f}){second}: margin {answer.margin:.2f}"
            out.append(Candidate(index, pred.text, "uncertain", task, score, detail))
        elif isinstance(answer, TokenPrediction) and answer.spans:
            weakest = min(answer.spans, key=lambda s: s.score)
            detail = f"{task}: span '{weakest.text}' as {weakest.label} has score {weakest.score:.2f}"
            out.append(Candidate(index, pred.text, "uncertain", task, 1.0 - weakest.score, detail))
        elif isinstance(answer, MultiLabelPrediction) and (doubt := multilabel.uncertain(task, answer)):
            out.append(Candidate(index, pred.text, "uncertain", task, *doubt))
    return out


def _rule_violation(rule: ContradictionRule, pred: Prediction) -> tuple[float, str] | None:
    first, second = pred.tasks.get(rule.if_task), pred.tasks.get(rule.then_task)
    if not isinstance(first, ClassPrediction) or first.label != rule.if_label or second is None:
        return None
    p_if = first.probs.get(rule.if_label, first.score)
    if isinstance(second, RegressionPrediction):
        value = second.value
        threshold = rule.below if rule.below is not None and value < rule.below else None
        if threshold is None and rule.above is not None and value > rule.above:
            threshold = rule.above
        if threshold is None:
            return None
        # Just past the threshold counts half; a quarter of the scale past it counts fully.
        strength = min(1.0, 0.5 + 0.5 * abs(value - threshold) / (0.25 * _width(second)))
        shown = f"{rule.then_task}={value:.2f}"
    elif isinstance(second, ClassPrediction) and second.label in rule.not_labels:
        strength, shown = second.score, f"{rule.then_task}={second.label} ({second.score:.2f})"
    else:
        return None
    return p_if * strength, f"{rule.if_task}={rule.if_label} ({p_if:.2f}) but {shown} [rule {rule.name}]"


def contradictions(pred: Prediction, index: int, task_file: TaskFile) -> list[Candidate]:
    """One candidate per broken `ContradictionRule`; scored by the confidence of both sides."""
    out = []
    for rule in task_file.contradictions:
        hit = _rule_violation(rule, pred)
        if hit is not None:
            out.append(Candidate(index, pred.text, "contradiction", rule.if_task, hit[0], hit[1]))
    return out


def _disagreement(answer: TaskPrediction, other: Any, delta: float) -> tuple[float, str] | None:
    """How strongly `answer` disagrees with `other` (a label, a number, spans, or another prediction)."""
    if isinstance(answer, ClassPrediction):
        given = other.label if isinstance(other, ClassPrediction) else other
        if given == answer.label:
            return None
        if isinstance(other, ClassPrediction):
            shown = f"{other.label} ({other.score:.2f}) -> {answer.label} ({answer.score:.2f})"
            return (answer.score + other.score) / 2, shown
        # Confident learning's self-confidence: the less the model believes the given label, the likelier it is
        # wrong (ranked this way the queue matches cleanlab's precision: docs/RESULTS.md, "Label errors").
        p_given = answer.probs.get(str(given), 0.0)
        return (
            1.0 - p_given,
            f"given {given} ({p_given:.2f}), model says {answer.label} ({answer.score:.2f})",
        )
    if isinstance(answer, RegressionPrediction):
        given = other.value if isinstance(other, RegressionPrediction) else float(other)
        width = _width(answer)
        if abs(answer.value - given) <= delta * width:
            return None
        return min(1.0, abs(answer.value - given) / (0.5 * width)), f"{given:.2f} -> {answer.value:.2f}"
    if isinstance(answer, MultiLabelPrediction):
        return multilabel.disagreement(answer, other)
    if isinstance(answer, TokenPrediction):
        spans = other.spans if isinstance(other, TokenPrediction) else (other or [])
        mine, theirs = {_span_key(s) for s in answer.spans}, {_span_key(s) for s in spans}
        if mine == theirs:
            return None
        shown = f"{len(theirs)} spans -> {len(mine)} spans ({len(mine & theirs)} shared)"
        return 1.0 - _jaccard(mine, theirs), shown
    return None


def model_vs_label(
    pred: Prediction, index: int, labels: Mapping[str, Any], delta: float = 0.15
) -> list[Candidate]:
    """Where a data-set label exists and the model confidently says otherwise."""
    out = []
    for task, given in labels.items():
        answer = pred.tasks.get(task)
        hit = _disagreement(answer, given, delta) if answer is not None else None
        if hit is not None and hit[0] > 0:
            out.append(Candidate(index, pred.text, "model_vs_label", task, hit[0], f"{task}: {hit[1]}"))
    return out


def version_vs_version(
    pred: Prediction,
    index: int,
    previous: Prediction,
    delta: float = 0.15,
    previous_version: str | None = None,
) -> list[Candidate]:
    """Where a newer model changed its answer (label flipped, value moved by > delta x scale, spans changed)."""
    out = []
    before = previous_version or "previous"
    for task, answer in pred.tasks.items():
        old = previous.tasks.get(task)
        hit = _disagreement(answer, old, delta) if old is not None else None
        if hit is not None:
            detail = f"{task} ({before}): {hit[1]}"
            out.append(Candidate(index, pred.text, "version_vs_version", task, hit[0], detail))
    return out


def annotator_conflict(index: int, text: str, task: str, values: Mapping[str, Any]) -> Candidate | None:
    """Annotators disagree: score = share of annotators outside the majority, doubled (a 1-1 split is 1.0)."""

    def key(v: Any) -> str:
        if isinstance(v, list) and all(isinstance(s, str) for s in v):
            return repr(sorted(set(v)))  # a multi-label set
        return repr(sorted(_span_key(s) for s in v)) if isinstance(v, list) else repr(v)

    counts = Counter(key(v) for v in values.values())
    if len(counts) < 2:
        return None
    score = min(1.0, 2 * (1 - max(counts.values()) / len(values)))
    detail = f"{task}: " + ", ".join(f"{who}={v}" for who, v in sorted(values.items()))
    return Candidate(index, text, "annotator_conflict", task, score, detail)


def candidates_for(
    pred: Prediction,
    index: int,
    task_file: TaskFile,
    labels: Mapping[str, Any] | None = None,
    previous: Prediction | None = None,
    previous_version: str | None = None,
) -> list[Candidate]:
    """Every candidate one prediction yields."""
    out = uncertainty(pred, index) + contradictions(pred, index, task_file)
    if labels:
        out += model_vs_label(pred, index, labels)
    if previous is not None:
        out += version_vs_version(pred, index, previous, previous_version=previous_version)
    return out


def confidence(answer: TaskPrediction) -> float | None:
    """The model's confidence in a head's answer: the class probability, the weakest span's score, or (multi-label)
    0.5 + half the closest decision's distance from its threshold (None for regression and for no spans)."""
    if isinstance(answer, ClassPrediction):
        return answer.score
    if isinstance(answer, TokenPrediction) and answer.spans:
        return min(s.score for s in answer.spans)
    if isinstance(answer, MultiLabelPrediction):
        return multilabel.confidence(answer)
    return None


def worth_a_look(pred: Prediction, candidates: Sequence[Candidate], unsure_below: float) -> list[Candidate]:
    """The candidates that deserve a human look: an "uncertain" one only when the model's confidence is
    below `unsure_below` (a confident answer is no doubt, whatever its small uncertainty score) and the task
    applies to the text; every other reason (a broken rule, a disagreement) always."""
    out = []
    for c in candidates:
        if c.reason == "uncertain" and c.task is not None and not pred.applies_to(c.task):
            continue
        sure = confidence(pred.tasks[c.task]) if c.reason == "uncertain" and c.task in pred.tasks else None
        if sure is None or sure < unsure_below:
            out.append(c)
    return out


def _at(seq: Sequence[Any] | Mapping[int, Any] | None, i: int) -> Any:
    if seq is None:
        return None
    if isinstance(seq, Mapping):
        return seq.get(i)
    return seq[i] if i < len(seq) else None


def score_pool(
    predict_fn: Callable[[list[str]], list[Prediction]],
    texts: Sequence[str],
    task_file: TaskFile,
    batch_size: int = 64,
    labels: Sequence[Mapping[str, Any] | None] | Mapping[int, Mapping[str, Any]] | None = None,
    previous: Sequence[Prediction | None] | Mapping[int, Prediction] | None = None,
    *,
    model_version: str | None = None,
    previous_version: str | None = None,
    min_score: float = 0.0,
    on_batch: Callable[[int, list[Prediction]], None] | None = None,
) -> list[Candidate]:
    """Predict `texts` in batches and return ranked candidates.

    `labels[i]` maps task -> gold value for text i; `previous[i]` is an older version's prediction.
    `on_batch(start, predictions)` is called after each batch's forward pass: the caller stores the
    predictions (no second pass), reports progress and checks for cancelling there.
    """
    out: list[Candidate] = []
    total = len(texts)
    for start in range(0, total, batch_size):
        batch = list(texts[start : start + batch_size])
        preds = predict_fn(batch)
        if on_batch is not None:
            on_batch(start, preds)
        for i, pred in enumerate(preds, start=start):
            found = candidates_for(pred, i, task_file, _at(labels, i), _at(previous, i), previous_version)
            out += [c for c in found if c.score >= min_score]
    if model_version is not None:
        out = [replace(c, model_version=model_version) for c in out]
    return rank(out)
