"""Texts, model predictions and data-set labels."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mtl_core.store.db import chunks, dialect_insert, execute_many, refresh_planner_stats, retry_locked
from mtl_core.store.limits import check_string, free_text
from mtl_core.store.models import DatasetLabel, PredictionRow, TextRow, utcnow
from mtl_core.types import (
    ClassPrediction,
    MultiLabelPrediction,
    Prediction,
    RegressionPrediction,
    Span,
    TaskPrediction,
    TokenPrediction,
)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@retry_locked
def add_texts(
    session: Session, texts: Sequence[str], source: str = "predict", dataset_split: str | None = None
) -> list[int]:
    """Store texts (deduplicated by content within `source`) and commit; returns one id per input, in order."""
    return insert_texts(session, texts, source, dataset_split)


def insert_texts(
    session: Session, texts: Sequence[str], source: str = "predict", dataset_split: str | None = None
) -> list[int]:
    """`add_texts` without the commit, for use inside a larger unit of work.

    A NUL character in a text becomes U+FFFD (`store.limits`); a bad source or split is refused.
    """
    check_string("source", source, TextRow.source)
    check_string("dataset_split", dataset_split, TextRow.dataset_split, optional=True)
    texts = [free_text(f"texts[{i}]", t) for i, t in enumerate(texts)]
    hashes = [content_hash(t) for t in texts]
    unique = dict(zip(hashes, texts, strict=True))
    now = utcnow()
    rows = [
        {"text": t, "source": source, "dataset_split": dataset_split, "content_hash": h, "created_at": now}
        for h, t in unique.items()
    ]
    rows.sort(key=lambda r: r["content_hash"])  # one lock order for all writers: no deadlocks
    stmt = dialect_insert(session, TextRow)
    conn = session.connection()
    if rows and conn.dialect.insert_executemany_returning:
        # A no-op upsert returns the ids of new and existing rows in one pass; a SELECT back by
        # hash can fall into a per-batch scan on PostgreSQL while statistics are stale.
        upsert = stmt.on_conflict_do_update(
            index_elements=["source", "content_hash"], set_={"source": stmt.excluded.source}
        )
        ids = dict(conn.execute(upsert.returning(TextRow.content_hash, TextRow.id), rows).all())
        refresh_planner_stats(session, len(rows), "texts")
        return [ids[h] for h in hashes]
    # Old SQLite (< 3.35) has no RETURNING. DO NOTHING: another process may insert the same text now.
    execute_many(session, stmt.on_conflict_do_nothing(index_elements=["source", "content_hash"]), rows)
    ids = {}
    for batch in chunks(list(unique)):
        found = select(TextRow.content_hash, TextRow.id).where(
            TextRow.source == source, TextRow.content_hash.in_(batch)
        )
        ids.update(session.execute(found).all())
    return [ids[h] for h in hashes]


def get_texts(session: Session, text_ids: Sequence[int]) -> dict[int, str]:
    """id -> text for the given ids."""
    out: dict[int, str] = {}
    for batch in chunks(list(set(text_ids))):
        out.update(session.execute(select(TextRow.id, TextRow.text).where(TextRow.id.in_(batch))).all())
    return out


def prediction_payload(pred: TaskPrediction) -> tuple[dict[str, Any], float | None]:
    """JSON payload of one head's answer, plus the number kept in the `score` column."""
    if isinstance(pred, ClassPrediction):
        payload = {
            "kind": pred.kind,
            "label": pred.label,
            "score": pred.score,
            "probs": dict(pred.probs),
            "margin": pred.margin,
        }
        if pred.fewshot:
            payload.update(fewshot=True, estimated_accuracy=pred.estimated_accuracy)
        return payload, pred.score
    if isinstance(pred, RegressionPrediction):
        return {"kind": pred.kind, "value": pred.value, "low": pred.low, "high": pred.high}, pred.value
    if isinstance(pred, MultiLabelPrediction):  # score column: the most probable label's probability
        payload = {"kind": pred.kind, "labels": list(pred.labels), "probs": dict(pred.probs),
                   "thresholds": dict(pred.thresholds)}
        if pred.fewshot:
            payload.update(fewshot=True, estimated_accuracy=pred.estimated_accuracy)
        return payload, max(pred.probs.values(), default=None)
    spans = [asdict(s) for s in pred.spans]
    return {"kind": pred.kind, "spans": spans}, min((s.score for s in pred.spans), default=None)


def payload_prediction(payload: dict[str, Any]) -> TaskPrediction:
    """Inverse of `prediction_payload` (token tags are not stored, so they come back empty)."""
    kind = payload.get("kind")
    if kind == "classification":
        return ClassPrediction(payload["label"], payload["score"], payload["probs"], payload["margin"],
                               fewshot=bool(payload.get("fewshot")),
                               estimated_accuracy=payload.get("estimated_accuracy"))
    if kind == "regression":
        return RegressionPrediction(payload["value"], payload["low"], payload["high"])
    if kind == "multilabel_classification":
        return MultiLabelPrediction(list(payload["labels"]), dict(payload["probs"]), dict(payload["thresholds"]),
                                    fewshot=bool(payload.get("fewshot")),
                                    estimated_accuracy=payload.get("estimated_accuracy"))
    return TokenPrediction(spans=[Span(**s) for s in payload.get("spans", [])], tags=[])


@retry_locked
def record_predictions(
    session: Session, text_ids: Sequence[int], predictions: Sequence[Prediction], model_version: str
) -> int:
    """Store every head's answer; re-scoring with the same version replaces the old rows. Returns rows written."""
    if len(text_ids) != len(predictions):
        raise ValueError(f"{len(text_ids)} text ids but {len(predictions)} predictions")
    check_string("model_version", model_version, PredictionRow.model_version)
    for task in {task for pred in predictions for task in pred.tasks}:
        check_string("task", task, PredictionRow.task)
    now = utcnow()
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for text_id, pred in zip(text_ids, predictions, strict=True):
        for task, answer in pred.tasks.items():
            payload, score = prediction_payload(answer)
            rows[(text_id, task)] = {
                "text_id": text_id,
                "model_version": model_version,
                "task": task,
                "payload": payload,
                "score": score,
                "created_at": now,
            }
    stmt = dialect_insert(session, PredictionRow)
    stmt = stmt.on_conflict_do_update(
        index_elements=["model_version", "task", "text_id"],
        set_={
            "payload": stmt.excluded.payload,
            "score": stmt.excluded.score,
            "created_at": stmt.excluded.created_at,
        },
    )
    execute_many(session, stmt, list(rows.values()))
    refresh_planner_stats(session, len(rows), "predictions")
    return len(rows)


def load_predictions(
    session: Session, text_ids: Sequence[int], model_version: str
) -> list[Prediction | None]:
    """Stored predictions of one version, aligned with `text_ids` (None where nothing is stored)."""
    tasks: dict[int, dict[str, TaskPrediction]] = {}
    for batch in chunks(list(set(text_ids))):
        query = select(PredictionRow.text_id, PredictionRow.task, PredictionRow.payload).where(
            PredictionRow.model_version == model_version, PredictionRow.text_id.in_(batch)
        )
        for text_id, task, payload in session.execute(query):
            tasks.setdefault(text_id, {})[task] = payload_prediction(payload)
    texts = get_texts(session, list(tasks))
    return [
        Prediction(texts[t], tasks[t], n_tokens=0, truncated=False) if t in tasks else None for t in text_ids
    ]


@retry_locked
def set_dataset_labels(session: Session, text_ids: Sequence[int], task: str, values: Sequence[Any]) -> int:
    """Attach gold labels from a data set (upsert); returns how many were written."""
    check_string("task", task, DatasetLabel.task)
    rows = {tid: {"text_id": tid, "task": task, "value": v} for tid, v in zip(text_ids, values, strict=True)}
    stmt = dialect_insert(session, DatasetLabel)
    stmt = stmt.on_conflict_do_update(index_elements=["text_id", "task"], set_={"value": stmt.excluded.value})
    execute_many(session, stmt, list(rows.values()))
    return len(rows)


def get_dataset_labels(session: Session, task: str) -> dict[int, Any]:
    """text id -> gold value for one task."""
    query = select(DatasetLabel.text_id, DatasetLabel.value).where(DatasetLabel.task == task)
    return dict(session.execute(query).all())
