"""Pool scoring sharded over processes (torchrun, gloo) and resumed after a crash: review/sharded.py."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from sqlalchemy import select

from mtl_core.ops import worker
from mtl_core.store import add_texts, create_job, get_job, load_predictions, record_predictions
from mtl_core.store.db import open_store
from mtl_core.store.models import QueueItem
from mtl_core.types import ClassPrediction
from tests.helpers import ROOT
from tests.helpers.workspace import register_copy

TEXTS = [f"text {i}: the film was {'wonderful' if i % 3 else 'dreadful'} and Paris {'loved' if i % 2 else 'hated'} it"
         for i in range(40)]
FAKED = 5  # texts whose answers are already stored before the job: a crashed run's work


def _workspace(home, checkpoint):
    home.mkdir()
    register_copy(home, checkpoint)
    _, sessions = open_store(home)
    with sessions() as s:
        ids = add_texts(s, TEXTS, source="predict")
    return sessions, ids


def _fake_stored(sessions, predictor, ids: list[int]) -> dict[int, str]:
    """Store made-up answers for the first FAKED texts (sentiment flipped to a 50/50 call); -> id -> label."""
    preds = predictor.predict(TEXTS[:FAKED])
    fakes, labels = [], {}
    for text_id, pred in zip(ids, preds):
        old = pred.tasks["sentiment"]
        flipped = "negative" if old.label == "positive" else "positive"
        tasks = {**pred.tasks, "sentiment": ClassPrediction(flipped, 0.5, {"negative": 0.5, "positive": 0.5}, 0.0)}
        fakes.append(replace(pred, tasks=tasks))
        labels[text_id] = flipped
    with sessions() as s:
        record_predictions(s, ids[:FAKED], fakes, "v0001")
    return labels


def _score(sessions, home, **params):
    with sessions() as s:
        job_id = create_job(s, "score_pool", {"pool": "predict", "min_score": 0.0, **params}).id
    status = worker.run_job(job_id, home)
    with sessions() as s:
        job = get_job(s, job_id)
        items = {(q.text_id, q.task, q.reason) for q in s.scalars(select(QueueItem))}
    assert status == "done", (job.message, job.log)
    return job.result, items


def test_resume_in_one_process_skips_stored_answers(tmp_path, tiny_checkpoint, tiny_predictor, monkeypatch):
    home = tmp_path / "ws"
    monkeypatch.setenv("MTL_STUDIO_HOME", str(home))
    sessions, ids = _workspace(home, tiny_checkpoint)
    labels = _fake_stored(sessions, tiny_predictor, ids)
    result, items = _score(sessions, home, resume=True)
    assert result["resumed"] == FAKED and result["texts"] == len(TEXTS) and result["processes"] == 1
    with sessions() as s:
        stored = load_predictions(s, ids, "v0001")
    assert all(p is not None for p in stored)
    assert {i: stored[k].tasks["sentiment"].label for k, i in enumerate(ids[:FAKED])} == labels  # not recomputed
    # the stored 50/50 answers are queued as uncertain: a crash between storing and queueing loses nothing
    assert {(i, "sentiment", "uncertain") for i in ids[:FAKED]} <= items


@pytest.mark.distributed
def test_two_processes_score_like_one_and_resume(tmp_path, tiny_checkpoint, tiny_predictor, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    one_home, two_home = tmp_path / "one", tmp_path / "two"
    one_sessions, ids = _workspace(one_home, tiny_checkpoint)
    monkeypatch.setenv("MTL_STUDIO_HOME", str(one_home))
    _, one_items = _score(one_sessions, one_home)  # the plain single-process job

    two_sessions, two_ids = _workspace(two_home, tiny_checkpoint)
    assert two_ids == ids
    labels = _fake_stored(two_sessions, tiny_predictor, ids)
    monkeypatch.setenv("MTL_STUDIO_HOME", str(two_home))
    result, two_items = _score(two_sessions, two_home, nproc=2)
    assert result["processes"] == 2 and result["resumed"] == FAKED

    with one_sessions() as s:
        one = load_predictions(s, ids, "v0001")
    with two_sessions() as s:
        two = load_predictions(s, ids, "v0001")
    assert {i: two[k].tasks["sentiment"].label for k, i in enumerate(ids[:FAKED])} == labels
    for a, b in zip(one[FAKED:], two[FAKED:]):  # every other text: answered once, as one process answers
        assert a.tasks["sentiment"].label == b.tasks["sentiment"].label
        assert a.tasks["sentiment"].score == pytest.approx(b.tasks["sentiment"].score, abs=1e-4)
        assert a.tasks["sentiment_score"].value == pytest.approx(b.tasks["sentiment_score"].value, abs=1e-4)
    rest = set(ids[FAKED:])
    assert {i for i in one_items if i[0] in rest} == {i for i in two_items if i[0] in rest}


def test_bad_nproc_fails_the_job_with_a_clear_message(workspace, sessions):
    with sessions() as s:
        job_id = create_job(s, "score_pool", {"pool": "predict", "nproc": 0}).id
    assert worker.run_job(job_id, workspace) == "failed"
    with sessions() as s:
        assert "must be >= 1" in get_job(s, job_id).message
