"""The `score_pool` job, run in-process on the tiny model: pools, reasons, ranking, the frozen test split."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select

from mtl_core.data.examples import Example
from mtl_core.data.prepare import prepare_task
from mtl_core.model.testing import make_tiny_checkpoint
from mtl_core.ops import worker
from mtl_core.progress import Cancelled
from mtl_core.review.jobs import score_and_store
from mtl_core.review.pools import Pool, PoolError, PoolSpec, bio_spans, load_pool, parse_pool
from mtl_core.store import (
    add_annotation,
    add_texts,
    create_job,
    get_dataset_labels,
    get_job,
    load_predictions,
    top_queue,
)
from mtl_core.store.models import QueueItem, TextRow
from mtl_core.tasks import load_task_file
from mtl_core.types import ClassPrediction, Prediction, RegressionPrediction, TokenPrediction
from mtl_core.workspace import data_cache_dir
from tests.helpers.workspace import register_copy

TASKS = ["sentiment", "sentiment_score", "topic", "question_type", "spam", "ner"]


@pytest.fixture
def csv_tasks(tmp_path):
    """A task file whose `sentiment` task reads a small CSV (the tiny model has a sentiment head)."""
    rows = ["text,label"] + [
        f"review {i}: the film was {'wonderful' if i % 2 else 'dreadful'},{'positive' if i % 2 else 'negative'}"
        for i in range(300)
    ]
    (tmp_path / "sentiment.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    path = tmp_path / "tasks.yaml"
    path.write_text("tasks:\n  - {name: sentiment, kind: classification, labels: [negative, positive],\n"
                    "     source: {loader: csv, path: sentiment.csv}}\n", encoding="utf-8")
    return path


def _run(sessions, home, params: dict):
    with sessions() as s:
        job_id = create_job(s, "score_pool", params).id
    status = worker.run_job(job_id, home)
    with sessions() as s:
        job = get_job(s, job_id)
    return status, job


def test_dataset_pool_queues_with_reasons_and_never_touches_test(sessions, workspace, csv_tasks):
    params = {"pool": "dataset:sentiment:dev", "limit": 500, "min_score": 0.0, "task_file": str(csv_tasks)}
    status, job = _run(sessions, workspace, params)
    assert status == "done", job.log
    spec = load_task_file(csv_tasks).by_name("sentiment")
    splits = prepare_task(spec, data_cache_dir(workspace), base_dir=csv_tasks.parent)
    with sessions() as s:
        stored = s.execute(select(TextRow.id, TextRow.text, TextRow.dataset_split)).all()
        items = list(s.scalars(select(QueueItem)))
        preds = load_predictions(s, [r.id for r in stored], "v0001")
        gold = get_dataset_labels(s, "sentiment")
    assert {r.text for r in stored} == {ex.text for ex in splits["dev"]}
    assert not {r.text for r in stored} & {ex.text for ex in splits["test"]}  # test stays frozen
    assert {r.dataset_split for r in stored} == {"dev"}
    assert all(p is not None and set(p.tasks) == set(TASKS) for p in preds)  # every head stored
    assert {gold[r.id] for r in stored} == {"negative", "positive"}
    reasons = {q.reason for q in items}
    assert {"uncertain", "model_vs_label"} <= reasons  # a random model disagrees with some labels
    assert {q.task for q in items} == {"sentiment"}  # other heads read out-of-domain text here: not queued
    assert {q.pool for q in items} == {"dataset:sentiment:dev"} and {q.model_version for q in items} == {"v0001"}
    assert job.result["texts"] == len(splits["dev"]) and job.result["queued"] == len(items)
    assert job.step == job.total == len(splits["dev"])


def test_test_split_is_refused(sessions, workspace, csv_tasks):
    status, job = _run(sessions, workspace, {"pool": "dataset:sentiment:test", "task_file": str(csv_tasks)})
    assert status == "failed" and "frozen" in job.message
    with sessions() as s:
        assert s.scalar(select(TextRow.id).limit(1)) is None  # nothing stored
    with pytest.raises(PoolError, match="frozen"):
        parse_pool("dataset:ner:test")
    for bad in ("dataset:ner", "dataset::dev", "elsewhere", "upload:"):
        with pytest.raises(PoolError):
            parse_pool(bad)


def _cls(probs: dict[str, float]) -> ClassPrediction:
    ranked = sorted(probs.values(), reverse=True)
    label = max(probs, key=probs.get)
    return ClassPrediction(label, probs[label], probs, ranked[0] - ranked[1])


class ScriptedPredictor:
    """Stands in for a Predictor: answers chosen per text, so the ranking can be checked exactly."""

    def __init__(self, answers: dict[str, tuple[float, float]]):
        self.answers = answers  # text -> (p(positive), sentiment score)
        self.task_file = load_task_file()
        self.calls = 0

    def predict(self, texts, batch_size=64):
        self.calls += 1
        out = []
        for text in texts:
            positive, score = self.answers[text]
            tasks = {
                "sentiment": _cls({"negative": 1 - positive, "positive": positive}),
                "sentiment_score": RegressionPrediction(score, -4.0, 4.0),
                "spam": _cls({"ham": 0.99, "spam": 0.01}),
                "ner": TokenPrediction([], []),
            }
            out.append(Prediction(text, tasks, n_tokens=5, truncated=False))
        return out


def test_contradiction_ranks_above_confident_agreement(sessions):
    agree, clash = "I loved this film", "I loved hating every minute"
    predictor = ScriptedPredictor({agree: (0.97, 2.8), clash: (0.91, -2.1)})
    with sessions() as s:
        ids = add_texts(s, [agree, clash], source="predict")
        pool = load_pool(s, "predict")
        queued = score_and_store(s, predictor, pool, model_version="scripted")
        ranked = top_queue(s, limit=10)
    assert predictor.calls == 1  # one forward for the pool; predictions stored through on_batch
    assert ranked[0].reason == "contradiction" and ranked[0].text_id == ids[1]
    assert "sentiment=positive (0.91) but sentiment_score=-2.10" in ranked[0].detail
    assert all(q.text_id != ids[0] for q in ranked)  # confident and consistent: not worth a look
    assert queued["contradiction"] == 1


def test_predict_pool_with_previous_version_and_annotator_conflicts(sessions, workspace, tmp_path):
    other = make_tiny_checkpoint(tmp_path / "other", seed=1)
    register_copy(workspace, other, note="second", activate=True)  # v0002 active, v0001 previous
    shutil.rmtree(other)
    texts = [f"Is this sentence number {i} about sport or business?" for i in range(12)]
    with sessions() as s:
        ids = add_texts(s, texts, source="predict")
        add_annotation(s, ids[0], "topic", "sport", "alice")
        add_annotation(s, ids[0], "topic", "business", "bob")
    status, job = _run(sessions, workspace, {"pool": "predict", "previous_version": "v0001", "min_score": 0.0})
    assert status == "done", job.log
    assert job.result["model_version"] == "v0002" and job.result["texts"] == 12
    with sessions() as s:
        items = list(s.scalars(select(QueueItem)))
        old = load_predictions(s, ids, "v0001")
    assert all(p is not None for p in old)  # the previous version's answers were stored too
    by_reason = {q.reason for q in items}
    assert {"uncertain", "version_vs_version", "annotator_conflict"} <= by_reason
    conflict = next(q for q in items if q.reason == "annotator_conflict")
    assert (conflict.text_id, conflict.task, conflict.score) == (ids[0], "topic", 1.0)
    assert "alice=sport" in conflict.detail and conflict.model_version is None
    vv = next(q for q in items if q.reason == "version_vs_version")
    assert "(v0001)" in vv.detail and vv.model_version == "v0002"


def test_cancel_keeps_finished_rounds(sessions, workspace, monkeypatch):
    import mtl_core.review.jobs as rj

    monkeypatch.setattr(rj, "CHUNK", 8)
    texts = [f"text {i} for a cancelled run" for i in range(40)]
    with sessions() as s:
        add_texts(s, texts, source="upload:many.csv")
        job_id = create_job(s, "score_pool", {"pool": "upload:many.csv", "min_score": 0.0}).id
    calls = {"n": 0}
    original = worker.JobContext.check_cancelled

    def cancel_on_third(self):
        calls["n"] += 1
        if calls["n"] >= 3:
            raise Cancelled()
        return original(self)

    monkeypatch.setattr(worker.JobContext, "check_cancelled", cancel_on_third)
    assert worker.run_job(job_id, workspace) == "cancelled"
    with sessions() as s:
        queued_texts = {q.text_id for q in s.scalars(select(QueueItem))}
    assert 0 < len(queued_texts) < 40  # rounds finished before the cancel stay queued


def test_bio_spans_match_the_decoder_convention():
    ex = Example("Tom Hanks visited Paris .", words=("Tom", "Hanks", "visited", "Paris", "."),
                 tags=("B-person", "I-person", "O", "B-geo-loc", "O"))
    assert bio_spans(ex) == [{"start": 0, "end": 9, "label": "person"}, {"start": 18, "end": 23, "label": "geo-loc"}]
    trailing = Example("Go Lakers!", words=("Go", "Lakers!"), tags=("O", "B-sportsteam"))
    assert bio_spans(trailing) == [{"start": 3, "end": 9, "label": "sportsteam"}]


def test_pool_spec_round_trip():
    assert parse_pool("predict") == PoolSpec("predict", "predict")
    assert parse_pool("upload:a.csv").kind == "upload"
    assert parse_pool("dataset:ner:train") == PoolSpec("dataset", "dataset:ner:train", "ner", "train")
    assert Pool(parse_pool("predict"), [], []).labels is None
