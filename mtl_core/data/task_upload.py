"""A user's file for a new task: labelled rows (CSV/TSV/JSONL: a text and a label column; CoNLL for token
tasks) or unlabelled texts (the task's pool). Bad rows are reported by line and skipped; good rows are kept.

`preview` reads the columns and first rows so the user can map columns before anything is stored.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from mtl_core.data.bio import tags_to_spans
from mtl_core.data.errors import DataSourceError
from mtl_core.data.loaders import parse_label_set
from mtl_core.data.readers import sniff_delimiter
from mtl_core.data.uploads import JsonTooDeep, decode_upload, loads_json, upload_problem
from mtl_core.tasks import TaskSpec

MAX_TEXT_CHARS = 20_000  # longer rows are reported, not stored: a training text, not a document dump


class TaskUploadError(ValueError):
    """The file cannot be read at all (binary, empty, no rows, unknown column); the message says why."""


@dataclass
class Labelled:
    """What a file gave: good rows (text, label), and the problems of the rows that were skipped."""

    rows: list[tuple[str, Any]] = field(default_factory=list)  # label: class name, float, or spans list
    problems: list[str] = field(default_factory=list)  # "line 7: label 'urgnt' is not one of [...]"
    warnings: list[str] = field(default_factory=list)  # decoding warnings (the rows were kept)

    @property
    def skipped(self) -> int:
        return len(self.problems)


def file_format(filename: str) -> str:
    """'jsonl' | 'conll' | 'table' from the file name's extension."""
    name = filename.lower()
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".conll", ".bio", ".iob")):
        return "conll"
    return "table"


def records(data: bytes, filename: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]], list[str]]:
    """(columns, [(line, record)], warnings) of a CSV/TSV/JSONL file; TaskUploadError when unreadable."""
    problem = upload_problem(data)
    if problem:
        raise TaskUploadError(problem)
    text, warnings = decode_upload(data)
    rows = _jsonl(text) if file_format(filename) == "jsonl" else _table(text)
    if not rows:
        raise TaskUploadError("The file has no data rows.")
    columns = list(dict.fromkeys(k for _, rec in rows for k in rec))
    return columns, rows, warnings


def _table(text: str) -> list[tuple[int, dict[str, Any]]]:
    text = text.lstrip("\r\n")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text.splitlines()[0]))
    try:
        header = [h.strip() for h in next(reader)]
        return [(reader.line_num, dict(zip(header, row))) for row in reader if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise TaskUploadError(f"Line {reader.line_num}: malformed CSV ({exc}).") from None


def _jsonl(text: str) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = loads_json(line)
        except (JsonTooDeep, json.JSONDecodeError):
            obj = None
        out.append((n, obj if isinstance(obj, dict) else {"__bad__": line[:80]}))
    return out


def preview(data: bytes, filename: str, n: int = 5) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, first `n` records) for the column-mapping step."""
    if file_format(filename) == "conll":
        return ["tokens", "tags"], []
    columns, rows, _ = records(data, filename)
    return [c for c in columns if c != "__bad__"], [rec for _, rec in rows[:n]]


def read_labelled(data: bytes, filename: str, spec: TaskSpec, text_column: str = "text",
                  label_column: str = "label") -> Labelled:
    """Good (text, label) rows of a labelled file for `spec`, and a problem line per skipped row."""
    if spec.kind == "token_classification" or file_format(filename) == "conll":
        return _conll(data, spec)
    columns, rows, warnings = records(data, filename)
    for col in (text_column, label_column):
        if col not in columns:
            raise TaskUploadError(f"No column {col!r} in the file; its columns are {columns}.")
    out = Labelled(warnings=warnings)
    for line, rec in rows:
        text, problem = _text(rec.get(text_column))
        label, label_problem = parse_value(rec.get(label_column), spec)
        problem = "not a JSON object" if "__bad__" in rec else problem or label_problem
        if problem:
            out.problems.append(f"line {line}: {problem}")
        else:
            out.rows.append((text, label))
    return out


def read_texts(data: bytes, filename: str, text_column: str = "text") -> Labelled:
    """An unlabelled pool: the texts of one column (labels None); plain .txt files give one text per line."""
    if filename.lower().endswith(".txt"):
        problem = upload_problem(data)
        if problem:
            raise TaskUploadError(problem)
        text, warnings = decode_upload(data)
        return Labelled(rows=[(t.strip(), None) for t in text.splitlines() if t.strip()], warnings=warnings)
    columns, rows, warnings = records(data, filename)
    if text_column not in columns:
        raise TaskUploadError(f"No column {text_column!r} in the file; its columns are {columns}.")
    out = Labelled(warnings=warnings)
    for line, rec in rows:
        text, problem = _text(rec.get(text_column))
        if problem:
            out.problems.append(f"line {line}: {problem}")
        else:
            out.rows.append((text, None))
    return out


def _text(raw: Any) -> tuple[str, str | None]:
    if not isinstance(raw, str) or not raw.strip():
        return "", "empty text"
    if len(raw) > MAX_TEXT_CHARS:
        return "", f"text of {len(raw):,} characters (limit {MAX_TEXT_CHARS:,})"
    return raw.strip(), None


def parse_value(raw: Any, spec: TaskSpec) -> tuple[Any, str | None]:
    """A label cell -> (value, None) or (None, why it is unusable) for a sentence-level task. Multi-label: a JSON
    list or "a|b" (loaders.parse_label_set); an empty cell there means no label applies."""
    if spec.kind == "multilabel_classification":
        try:
            return list(parse_label_set(raw, spec.labels, "", "label")), None
        except DataSourceError as exc:
            return None, str(exc).lstrip(": ")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, "empty label"
    if spec.kind == "regression":
        try:
            value = float(raw)
        except (TypeError, ValueError):
            return None, f"label {str(raw)[:40]!r} is not a number"
        lo, hi = spec.value_range
        if not lo <= value <= hi:
            return None, f"value {value:g} is outside the task's range [{lo:g}, {hi:g}]"
        return value, None
    label = str(raw).strip()
    if label not in spec.labels:
        return None, f"label {label[:40]!r} is not one of {spec.labels}"
    return label, None


def _conll(data: bytes, spec: TaskSpec) -> Labelled:
    """`token ... tag` lines, blank line between sentences -> (text joined by spaces, spans) rows."""
    problem = upload_problem(data)
    if problem:
        raise TaskUploadError(problem)
    text, warnings = decode_upload(data)
    out, words, tags, start = Labelled(warnings=warnings), [], [], 1
    for n, line in enumerate([*text.splitlines(), ""], 1):
        parts = line.split()
        if parts and len(parts) >= 2 and parts[0] != "-DOCSTART-":
            start = start if words else n
            words.append(parts[0])
            tags.append(parts[-1])
        elif words:
            row, why = _sentence(words, tags, spec)
            (out.problems.append(f"line {start}: {why}") if why else out.rows.append(row))
            words, tags = [], []
    if not out.rows and not out.problems:
        raise TaskUploadError("No sentences found: expected 'token tag' lines with a blank line between sentences.")
    return out


def _sentence(words: list[str], tags: list[str], spec: TaskSpec) -> tuple[tuple[str, list], str | None]:
    bad = sorted({t for t in tags if t != "O" and t.split("-", 1)[-1] not in spec.labels})
    if bad:
        return ("", []), f"tag(s) {bad[:3]} not among the task's entity types {spec.labels}"
    offsets, pos = [], 0
    for w in words:
        offsets.append((pos, pos + len(w)))
        pos += len(w) + 1
    spans = [{"start": s.start, "end": s.end, "label": s.label} for s in tags_to_spans(offsets, tags)]
    return (" ".join(words), spans), None
