"""Reading an annotation export for import: every line is checked before anything is written.

An import is all or nothing: one bad line and no event is stored, and the error names every bad line
(up to a few) with the reason, so the user can fix the file and import it again (re-importing never
duplicates events).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from mtl_core.data.uploads import (
    MAX_UPLOAD_BYTES,
    UTF16_BOMS,
    JsonTooDeep,
    loads_json,
    too_deep_message,
    upload_problem,
)
from mtl_core.store.models import EVENT_KINDS

REQUIRED_FIELDS = ("text", "task", "kind", "annotator", "created_at")
STRING_FIELDS = ("text", "task", "kind", "annotator", "created_at", "source", "reason", "event_key", "undoes_key",
                 "bulk_id")
SHOWN_ERRORS = 5


class ImportFileError(ValueError):
    """The file cannot be imported; nothing was written."""


def parse_time(raw: str) -> datetime:
    """An ISO time as naive UTC (the store's convention)."""
    stamp = datetime.fromisoformat(raw)
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(timezone.utc).replace(tzinfo=None)
    return stamp


def read_records(data: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> list[dict[str, Any]]:
    """The validated records of a JSONL annotation export; ImportFileError names every bad line."""
    refused = upload_problem(data, max_bytes)
    if refused:
        raise ImportFileError(refused)
    records, errors, lines = [], [], 0
    for number, line in enumerate(_decode_strict(data).splitlines(), start=1):
        if not line.strip():
            continue
        lines += 1
        record, why = parse_record(line)
        if why:
            errors.append(f"line {number}: {why}")
        else:
            record["_line"] = number
            records.append(record)
    if errors:
        raise ImportFileError(all_or_nothing(errors, lines))
    if not records:
        raise ImportFileError("The file has no annotation records.")
    return records


def all_or_nothing(errors: list[str], lines: int) -> str:
    shown = "; ".join(errors[:SHOWN_ERRORS]) + (f"; and {len(errors) - SHOWN_ERRORS} more" if
                                                  len(errors) > SHOWN_ERRORS else "")
    return (f"{len(errors)} of {lines} line(s) are invalid, so none were imported (an import is all or "
            f"nothing): {shown}. Fix them and import again; events already stored are never added twice.")


def _decode_strict(data: bytes) -> str:
    """Exports are UTF-8; a file that is not (re-saved by a spreadsheet?) is refused, naming the line."""
    encoding = "utf-16" if data.startswith(UTF16_BOMS) else "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(
            f"line {line} is not valid {encoding.upper().replace('-SIG', '')} ({exc.reason}), so nothing "
            "was imported. Annotation exports are UTF-8: was the file re-saved in another encoding?"
        ) from None


def parse_record(line: str) -> tuple[dict[str, Any], str | None]:
    """(record, None) or ({}, why the line cannot be imported)."""
    try:
        record = loads_json(line)
    except JsonTooDeep:
        return {}, too_deep_message()
    except json.JSONDecodeError as exc:
        return {}, f"not valid JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(record, dict):
        return {}, f"not a JSON object but {type(record).__name__}"
    return record, _record_problem(record)


def _record_problem(record: dict[str, Any]) -> str | None:
    missing = [name for name in REQUIRED_FIELDS if record.get(name) in (None, "")]
    if missing:
        return "missing field(s) " + ", ".join(repr(name) for name in missing)
    wrong = [name for name in STRING_FIELDS if record.get(name) is not None and not isinstance(record[name], str)]
    if wrong:
        return "field(s) " + ", ".join(repr(name) for name in wrong) + " must be text"
    if "\x00" in record["text"]:
        return "the text contains a NUL character"
    if record["kind"] not in EVENT_KINDS:
        return f"kind {record['kind']!r} is not one of {', '.join(EVENT_KINDS)}"
    if record["kind"] == "undo" and not record.get("undoes_key"):
        return "an 'undo' event without 'undoes_key'"
    try:
        parse_time(record["created_at"])
    except ValueError:
        return f"created_at {record['created_at']!r} is not an ISO date-time"
    return None
