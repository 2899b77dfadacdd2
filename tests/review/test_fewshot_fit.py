"""Refitting a new task's head from the store's labels, with the feature cache."""

from __future__ import annotations

from mtl_core.review import fewshot_fit
from mtl_core.serve import fewshot
from mtl_core.store import add_texts
from mtl_core.store.annotations import add_annotation
from mtl_core.tasks import TaskSpec

SPEC = TaskSpec(name="urgency", kind="classification", labels=["low", "high"])


def _label(sessions, pairs, annotator="ann"):
    with sessions() as s:
        ids = add_texts(s, [t for t, _ in pairs], source="task:urgency")
        for i, (_, v) in zip(ids, pairs):
            add_annotation(s, i, "urgency", v, annotator)
        s.commit()


def test_refit_waits_for_labels_then_fits_and_caches(workspace, sessions, tiny_predictor):
    with sessions() as s:
        report = fewshot_fit.refit(workspace, tiny_predictor, SPEC, s)
    assert not report.fitted and "no labels" in report.message
    _label(sessions, [("server down now", "high"), ("lunch menu", "low"), ("fire alarm", "high")])
    with sessions() as s:
        report = fewshot_fit.refit(workspace, tiny_predictor, SPEC, s)
    assert not report.fitted and "low (1)" in report.message and report.per_class == {"low": 1, "high": 2}
    _label(sessions, [("newsletter", "low")])
    calls = []
    features = tiny_predictor.features
    tiny_predictor.features = lambda texts, rep: calls.append(list(texts)) or features(texts, rep)
    try:
        with sessions() as s:
            report = fewshot_fit.refit(workspace, tiny_predictor, SPEC, s)
            assert report.fitted and report.n_labels == 4 and report.cv_accuracy is not None
            again = fewshot_fit.refit(workspace, tiny_predictor, SPEC, s)
    finally:
        tiny_predictor.features = features
    # the short-of-labels attempt already cached three texts; only the new one ran, and the refit ran nothing
    assert again.fitted and calls == [["newsletter"]]
    assert set(fewshot.load_heads(workspace, "tiny")) == {"urgency"}


def test_latest_label_wins_and_unknown_labels_are_ignored(workspace, sessions, tiny_predictor):
    _label(sessions, [("a", "low"), ("b", "low"), ("c", "high"), ("d", "high"), ("e", "medium")])
    _label(sessions, [("a", "high")], annotator="other")  # relabelled later by someone else
    with sessions() as s:
        assert dict(fewshot_fit.task_labels(s, "urgency"))["a"] == "high"
        report = fewshot_fit.refit(workspace, tiny_predictor, SPEC, s)
    assert report.per_class == {"low": 1, "high": 3}  # "medium" is not a label of the task
    assert not report.fitted


def test_regression_tasks_wait_for_a_round(workspace, sessions, tiny_predictor):
    spec = TaskSpec(name="price", kind="regression", value_range=(0.0, 1.0))
    with sessions() as s:
        report = fewshot_fit.refit(workspace, tiny_predictor, spec, s)
    assert not report.fitted and "round" in report.message


def test_multilabel_task_fits_from_label_lists(workspace, sessions, tiny_predictor):
    from mtl_core.review.new_task import label_counts, store_rows

    spec = TaskSpec(name="topics", kind="multilabel_classification", labels=["billing", "outage"])
    with sessions() as s:
        store_rows(s, "topics", [("refund me", ["billing"]), ("site down", ["outage"]), ("bill and outage", ["billing", "outage"]),
                                 ("hello", []), ("charged twice", ["billing"]), ("no network", ["outage"]),
                                 ("weird", ["nope"])], "ann")
        assert label_counts(s, spec) == {"billing": 3, "outage": 3}
        report = fewshot_fit.refit(workspace, tiny_predictor, spec, s)
    assert report.fitted and report.n_labels == 6 and "micro-F1" in report.message  # ["nope"] is not usable
    head = fewshot.load_heads(workspace, "tiny")["topics"]
    tiny_predictor.refresh_fewshot(workspace, {"topics", *tiny_predictor.task_names})
    try:
        [pred] = tiny_predictor.predict(["my bill is wrong"])
        assert pred.tasks["topics"].fewshot and head.kind == "multilabel_classification"
        assert tiny_predictor.answered_tasks["topics"] == "multilabel_classification"
    finally:
        tiny_predictor.refresh_fewshot(workspace / "none", set())
