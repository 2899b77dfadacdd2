"""What an annotation import checks beyond the file's structure (`import_file`): every field fits its
column (`store.limits`), and, given the task file, every task exists and every value is one its task can
hold. All lines are checked before anything is written; the error names the bad lines."""

from __future__ import annotations

import math
from typing import Any

from mtl_core.store.import_file import ImportFileError, all_or_nothing
from mtl_core.store.limits import string_problem
from mtl_core.store.models import EVENT_REASONS, AnnotationEvent, TextRow
from mtl_core.tasks import MULTILABEL, TaskFile, TaskSpec

# field -> the column it is stored in (or compared with), for the width check
COLUMNS = {
    "task": AnnotationEvent.task,
    "annotator": AnnotationEvent.annotator,
    "source_annotator": AnnotationEvent.source_annotator,
    "source": TextRow.source,
    "event_key": AnnotationEvent.event_key,
    "undoes_key": AnnotationEvent.event_key,
    "bulk_id": AnnotationEvent.bulk_id,
}
SPAN_KEYS = {"start", "end", "label"}


def short(value: Any, limit: int = 60) -> str:
    """repr of a value from the file, cut: the message must stay readable whatever the file holds."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_records(records: list[dict[str, Any]], task_file: TaskFile | None = None) -> None:
    """Raise ImportFileError naming every bad line (`read_records` records); nothing is written either way."""
    specs = {t.name: t for t in task_file.tasks} if task_file is not None else None
    errors = []
    for rec in records:
        why = record_problem(rec, specs)
        if why:
            errors.append(f"line {rec.get('_line', '?')}: {why}")
    if errors:
        raise ImportFileError(all_or_nothing(errors, len(records)))


def record_problem(rec: dict[str, Any], specs: dict[str, TaskSpec] | None) -> str | None:
    for field, column in COLUMNS.items():
        if rec.get(field) is not None:
            why = string_problem(rec[field], column, nonempty=field in ("task", "annotator"))
            if why:
                return f"{field} {why}"
    if rec.get("reason") is not None and rec["reason"] not in EVENT_REASONS:
        return f"reason {short(rec['reason'])} is not one of {', '.join(EVENT_REASONS)} (or null)"
    if specs is None:
        return None
    spec = specs.get(rec["task"])
    if spec is None:
        return f"unknown task {short(rec['task'])} (the task file has {', '.join(specs)})"
    value = rec.get("value")
    if value is None and rec["kind"] in ("skip", "undo"):
        return None  # a skip or an undo carries no label
    why = value_problem(spec, value, rec["text"])
    return f"value for task {spec.name!r} {why}" if why else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def value_problem(spec: TaskSpec, value: Any, text: str) -> str | None:
    """Why `value` is no label of `spec` for `text` (None when it is one)."""
    if spec.kind == "classification":
        if isinstance(value, str) and value in spec.labels:
            return None
        return f"is {short(value)}, not one of its labels ({', '.join(spec.labels)})"
    if spec.kind == "regression":
        lo, hi = spec.value_range
        if _is_number(value) and math.isfinite(value) and lo <= value <= hi:
            return None
        return f"is {short(value)}, not a number from {lo:g} to {hi:g}"
    if spec.kind == MULTILABEL:
        ok = isinstance(value, list) and all(isinstance(v, str) and v in spec.labels for v in value)
        if ok and len(set(value)) == len(value):
            return None
        return f"is {short(value)}, not a list of distinct labels from ({', '.join(spec.labels)})"
    if not isinstance(value, list):
        return f"is {short(value)}, not a list of entity spans"
    for span in value:
        why = span_problem(spec, span, len(text))
        if why:
            return why
    return None


def span_problem(spec: TaskSpec, span: Any, text_length: int) -> str | None:
    if not isinstance(span, dict) or set(span) != SPAN_KEYS:
        return f"has span {short(span)}; each span is {{start, end, label}}"
    start, end = span["start"], span["end"]
    if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or isinstance(end, bool):
        return f"has span {short(span)}; start and end must be whole numbers"
    if not 0 <= start < end <= text_length:
        return f"has span {short(span)} outside the text (0 <= start < end <= {text_length})"
    if span["label"] not in spec.labels:
        return f"has span {short(span)}; the entity type must be one of {', '.join(spec.labels)}"
    return None
