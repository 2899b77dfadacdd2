"""Annotation export/import (JSONL, idempotent) and NER export as CoNLL BIO."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from mtl_core.data.bio import CharSpan, spans_to_tags, whitespace_offsets
from mtl_core.store.annotations import current_labels, event_key
from mtl_core.store.db import chunks, refresh_planner_stats, retry_locked
from mtl_core.store.import_file import ImportFileError, all_or_nothing, parse_time, read_records
from mtl_core.store.models import AnnotationEvent, TextRow
from mtl_core.store.texts import content_hash, get_texts, insert_texts


def export_annotations_jsonl(session: Session, path: str | Path) -> int:
    """Write every event (oldest first, undos included) as one JSON object per line; returns the count."""
    undone = aliased(AnnotationEvent)
    query = (
        select(AnnotationEvent, TextRow.text, TextRow.source, undone.event_key)
        .join(TextRow, TextRow.id == AnnotationEvent.text_id)
        .outerjoin(undone, undone.id == AnnotationEvent.undoes_event_id)
        .order_by(AnnotationEvent.created_at, AnnotationEvent.id)
    )
    count = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for event, text, source, undoes_key in session.execute(query):
            record = {
                "event_key": event.event_key,
                "text": text,
                "source": source,
                "task": event.task,
                "kind": event.kind,
                "value": event.value,
                "annotator": event.annotator,
                "reason": event.reason,
                "undoes_key": undoes_key,
                "created_at": event.created_at.isoformat(),
            }
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def _record_key(rec: dict[str, Any]) -> str:
    if rec.get("event_key"):
        return rec["event_key"]
    return event_key(
        content_hash(rec["text"]),
        rec["task"],
        rec["kind"],
        rec.get("value"),
        rec["annotator"],
        parse_time(rec["created_at"]),
        rec.get("undoes_key"),
    )


def _existing_keys(session: Session, keys: list[str]) -> dict[str, int]:
    known: dict[str, int] = {}
    for batch in chunks(keys):
        query = select(AnnotationEvent.event_key, AnnotationEvent.id).where(
            AnnotationEvent.event_key.in_(batch)
        )
        known.update(session.execute(query).all())
    return known


def _text_ids(session: Session, records: list[dict[str, Any]]) -> list[int]:
    by_source: dict[str, list[str]] = {}
    for rec in records:
        by_source.setdefault(rec.get("source") or "import", []).append(rec["text"])
    ids = {
        (src, t): i
        for src, texts in by_source.items()
        for t, i in zip(texts, insert_texts(session, texts, src), strict=True)
    }
    return [ids[(rec.get("source") or "import", rec["text"])] for rec in records]


def import_annotations_jsonl(session: Session, path: str | Path) -> int:
    """Add the events of an export that this database lacks (re-importing adds nothing); returns new events.

    All or nothing: a file with any bad line raises ImportFileError (naming the lines) and stores nothing.
    """
    return import_annotation_records(session, read_records(Path(path).read_bytes()))


@retry_locked
def import_annotation_records(session: Session, records: list[dict[str, Any]]) -> int:
    """Store validated records (`read_records`) in one transaction; returns how many events were new."""
    try:
        keys = [_record_key(rec) for rec in records]
        known = _existing_keys(session, keys)
        _check_undo_targets(records, keys, known)
        added = _insert_events(session, records, keys, known)
    except Exception:
        session.rollback()  # nothing half-written, whatever went wrong
        raise
    refresh_planner_stats(session, added, "annotation_events")
    return added


def _check_undo_targets(records: list[dict[str, Any]], keys: list[str], known: dict[str, int]) -> None:
    seen, errors = set(known), []
    for rec, key in zip(records, keys, strict=True):
        if rec.get("undoes_key") and rec["undoes_key"] not in seen:
            errors.append(f"line {rec['_line']}: undoes an event found neither here nor earlier in the file")
        seen.add(key)
    if errors:
        raise ImportFileError(all_or_nothing(errors, len(records)))


def _insert_events(session: Session, records: list[dict[str, Any]], keys: list[str], known: dict[str, int]) -> int:
    added = 0
    for rec, key, text_id in zip(records, keys, _text_ids(session, records), strict=True):
        if key in known:
            continue
        event = AnnotationEvent(
            event_key=key,
            text_id=text_id,
            task=rec["task"],
            kind=rec["kind"],
            value=rec.get("value"),
            annotator=rec["annotator"],
            reason=rec.get("reason"),
            undoes_event_id=known.get(rec["undoes_key"]) if rec.get("undoes_key") else None,
            created_at=parse_time(rec["created_at"]),
        )
        session.add(event)
        session.flush()
        known[key] = event.id
        added += 1
    return added


def bio_tags(text: str, spans: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Whitespace tokens of `text` with BIO tags: a token overlapping a span takes its label (the first
    listed span wins where spans overlap): `data.bio.spans_to_tags`."""
    offsets = whitespace_offsets(text)
    tags = spans_to_tags(offsets, [CharSpan.from_dict(s) for s in spans])
    return [(text[start:end], tag) for (start, end), tag in zip(offsets, tags, strict=True)]


def export_conll(session: Session, path: str | Path, task: str) -> int:
    """Write each labelled text of a span task as `token TAB tag` lines; returns the sentence count.

    Where several annotators labelled a text, the most recent label wins.
    """
    newest: dict[int, Any] = {}
    for label in sorted(current_labels(session, task), key=lambda lab: (lab.created_at, lab.event_id)):
        newest[label.text_id] = label.value
    texts = get_texts(session, list(newest))
    with Path(path).open("w", encoding="utf-8") as fh:
        for text_id in sorted(newest):
            rows = bio_tags(texts[text_id], newest[text_id] or [])
            fh.write("".join(f"{word}\t{tag}\n" for word, tag in rows) + "\n")
    return len(newest)
