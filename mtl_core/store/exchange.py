"""Annotation export/import (JSONL, idempotent; the import itself is `store.importer`) and NER export as CoNLL BIO."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from mtl_core.data.bio import CharSpan, spans_to_tags, whitespace_offsets
from mtl_core.store.annotations import current_labels
from mtl_core.store.import_file import read_records
from mtl_core.store.importer import import_annotation_records
from mtl_core.store.models import AnnotationEvent, TextRow
from mtl_core.store.texts import get_texts
from mtl_core.tasks import TaskFile


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
                **({"source_annotator": event.source_annotator} if event.source_annotator else {}),
                "reason": event.reason,
                **({"bulk_id": event.bulk_id} if event.bulk_id else {}),
                "undoes_key": undoes_key,
                "created_at": event.created_at.isoformat(),
            }
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def import_annotations_jsonl(
    session: Session, path: str | Path, task_file: TaskFile | None = None, *, importer: str | None = None
) -> int:
    """Add the events of an export that this database lacks (re-importing adds nothing); returns new events.

    All or nothing: a file with any bad line raises ImportFileError (naming the lines) and stores nothing.
    `task_file` and `importer`: see `store.importer.import_annotation_records`.
    """
    records = read_records(Path(path).read_bytes())
    return import_annotation_records(session, records, task_file, importer=importer)


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
