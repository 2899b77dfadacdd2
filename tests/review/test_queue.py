"""Pure scoring of review candidates on constructed predictions."""

from __future__ import annotations

import pytest

from mtl_core.review.queue import (
    annotator_conflict,
    candidates_for,
    contradictions,
    model_vs_label,
    normalised_entropy,
    rank,
    score_pool,
    uncertainty,
    version_vs_version,
    worth_a_look,
)
from mtl_core.tasks import ContradictionRule, TaskFile, TaskSpec
from mtl_core.types import ClassPrediction, Prediction, RegressionPrediction, Span, TokenPrediction

TASKS = TaskFile(
    tasks=[
        TaskSpec("sentiment", "classification", ["negative", "positive"]),
        TaskSpec("sentiment_score", "regression", value_range=(-4.0, 4.0)),
        TaskSpec("topic", "classification", ["business", "sport", "tech"]),
        TaskSpec("ner", "token_classification", ["person", "geo-loc"]),
    ],
    contradictions=[
        ContradictionRule(
            "positive_but_negative_score", "sentiment", "positive", "sentiment_score", below=-0.5
        ),
        ContradictionRule(
            "negative_but_positive_score", "sentiment", "negative", "sentiment_score", above=0.5
        ),
    ],
)


def cls(probs: dict[str, float]) -> ClassPrediction:
    ranked = sorted(probs.values(), reverse=True)
    label = max(probs, key=probs.get)
    return ClassPrediction(label, probs[label], probs, ranked[0] - ranked[1])


def pred(text: str, positive: float, score: float, spans: list[Span] | None = None) -> Prediction:
    tasks = {
        "sentiment": cls({"negative": 1 - positive, "positive": positive}),
        "sentiment_score": RegressionPrediction(score, -4.0, 4.0),
        "ner": TokenPrediction(spans or [], []),
    }
    return Prediction(text, tasks, n_tokens=5, truncated=False)


def test_contradiction_outranks_confident_agreement():
    agree = pred("I loved it", positive=0.97, score=2.8)
    clash = pred("I loved hating it", positive=0.91, score=-2.1)
    found = rank(candidates_for(agree, 0, TASKS) + candidates_for(clash, 1, TASKS))
    assert found[0].reason == "contradiction" and found[0].index == 1
    assert "sentiment=positive (0.91) but sentiment_score=-2.10" in found[0].detail
    assert found[0].score > 0.7
    assert not contradictions(agree, 0, TASKS)
    assert max(c.score for c in found if c.index == 0) < 0.2


def test_no_uncertainty_for_a_task_that_does_not_apply():
    """A tweet's unsure sentiment is queued; a news text's (sentiment does not apply, p=0.1) is not."""
    spans = [Span(0, 3, "person", "Bob", 0.41)]
    tweet = pred("Bob hated it??", 0.52, 0.1, spans)
    tweet.applies.update({"sentiment": 0.8, "ner": 1.0})
    news = pred("Bob reported the figures.", 0.52, 0.1, spans)
    news.applies.update({"sentiment": 0.1, "ner": 1.0})
    assert {c.task for c in uncertainty(tweet, 0)} == {"sentiment", "ner"}
    assert {c.task for c in uncertainty(news, 1)} == {"ner"}
    # candidates made elsewhere (e.g. before applicability existed) are dropped when the look is decided
    old = uncertainty(pred("Bob reported the figures.", 0.52, 0.1, spans), 1)
    assert {c.task for c in worth_a_look(news, old, unsure_below=0.9)} == {"ner"}
    assert {c.task for c in worth_a_look(tweet, old, unsure_below=0.9)} == {"sentiment", "ner"}
    # only doubt is dropped: a broken rule on a non-applicable task still deserves a look
    clash = pred("Bob reported the figures.", 0.91, -2.1)
    clash.applies.update({"sentiment": 0.1})
    found = candidates_for(clash, 2, TASKS)
    assert [c.reason for c in worth_a_look(clash, found, unsure_below=0.9)] == ["contradiction"]


def test_contradiction_scales_with_both_sides():
    strong = contradictions(pred("a", 0.95, -3.5), 0, TASKS)[0]
    weak = contradictions(pred("b", 0.55, -0.6), 1, TASKS)[0]
    negative = contradictions(pred("c", 0.1, 2.0), 2, TASKS)[0]
    assert strong.score > weak.score > 0
    assert negative.detail.startswith("sentiment=negative (0.90)")


def test_uncertainty_prefers_small_margins_and_weak_spans():
    sure = uncertainty(pred("x", 0.99, 3.0), 0)[0]
    unsure = uncertainty(pred("y", 0.52, 0.1), 1)[0]
    assert unsure.score > 0.9 > 0.1 > sure.score
    assert "margin 0.04" in unsure.detail
    ner = uncertainty(pred("Bob went", 0.9, 1.0, [Span(0, 3, "person", "Bob", 0.41)]), 2)
    assert [c.task for c in ner] == ["sentiment", "ner"] and ner[1].score == pytest.approx(0.59)
    assert normalised_entropy({"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25}) == pytest.approx(1.0)


def test_model_vs_label_confident_learning():
    p = pred("Great film", 0.9, 2.0, [Span(0, 5, "person", "Great", 0.8)])
    found = {
        c.task: c for c in model_vs_label(p, 0, {"sentiment": "negative", "sentiment_score": -2.0, "ner": []})
    }
    assert found["sentiment"].score == pytest.approx(0.9)  # 1 - p(given): self-confidence, as cleanlab ranks
    assert "given negative (0.10), model says positive (0.90)" in found["sentiment"].detail
    assert found["sentiment_score"].score == pytest.approx(1.0)
    assert found["ner"].score == pytest.approx(1.0)
    assert model_vs_label(p, 0, {"sentiment": "positive", "sentiment_score": 1.5}) == []


def test_version_vs_version():
    old = pred("x", 0.85, 1.0)
    new = pred("x", 0.2, 1.1)
    found = version_vs_version(new, 0, old, previous_version="v0002")
    assert [c.task for c in found] == ["sentiment"]  # 0.1 move is below 0.15 x 8
    assert found[0].detail == "sentiment (v0002): positive (0.85) -> negative (0.80)"
    moved = version_vs_version(pred("x", 0.85, -2.0), 0, old)
    assert [c.task for c in moved] == ["sentiment_score"] and moved[0].score == pytest.approx(0.75)


def test_annotator_conflict():
    split = annotator_conflict(3, "t", "sentiment", {"ann": "positive", "bob": "negative"})
    assert split.score == 1.0 and split.detail == "sentiment: ann=positive, bob=negative"
    two_one = annotator_conflict(3, "t", "sentiment", {"a": "positive", "b": "positive", "c": "negative"})
    assert two_one.score == pytest.approx(2 / 3)
    assert annotator_conflict(3, "t", "sentiment", {"a": "x", "b": "x"}) is None


def test_score_pool_batches_and_progress():
    texts = [f"text {i}" for i in range(10)]
    calls, seen = [], []

    def predict_fn(batch):
        calls.append(len(batch))
        return [pred(t, 0.9, -2.0 if t == "text 7" else 2.0) for t in batch]

    labels = [None] * 10
    labels[2] = {"sentiment": "negative"}
    found = score_pool(
        predict_fn,
        texts,
        TASKS,
        batch_size=4,
        labels=labels,
        model_version="v0003",
        on_batch=lambda s, p: seen.append((s, len(p))),
    )
    assert (
        calls == [4, 4, 2] and seen == [(0, 4), (4, 4), (8, 2)]
    )
    assert {(c.reason, c.index) for c in found[:2]} == {("contradiction", 7), ("model_vs_label", 2)}
    assert {c.model_version for c in found} == {"v0003"}
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)
    assert all(c.score >= 0.3 for c in score_pool(predict_fn, texts, TASKS, min_score=0.3))
