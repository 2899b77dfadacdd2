"""Low-level readers for user files (CSV/TSV, JSONL, CoNLL). They return raw rows with line numbers
so that callers can name the offending line in errors; label meaning is decided by the loaders."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from mtl_core.data.errors import DataSourceError
from mtl_core.data.uploads import JsonTooDeep, loads_json, too_deep_message

FALLBACK_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")  # latin-1 decodes any byte: last resort
DELIMITERS = (",", "\t", ";", "|")


def read_text(path: Path, encoding: str | None = None) -> str:
    """Decode a whole file; without `encoding`, try UTF-8 (BOM-aware), then cp1252, then latin-1."""
    if not path.is_file():
        raise DataSourceError(f"file not found: {path}")
    data = path.read_bytes()
    for enc in (encoding,) if encoding else FALLBACK_ENCODINGS:
        try:
            return data.decode(enc)
        except UnicodeDecodeError as exc:
            if encoding:
                raise DataSourceError(
                    f"file {path.name}: cannot decode as {encoding} ({exc.reason} at byte {exc.start}); "
                    "fix the 'encoding' option or remove it to auto-detect"
                ) from None
        except LookupError:
            raise DataSourceError(f"file {path.name}: unknown encoding {encoding!r}") from None
    raise AssertionError("unreachable: latin-1 decodes everything")


def _non_empty(path: Path, text: str) -> str:
    if not text.strip():
        raise DataSourceError(f"file {path.name} is empty")
    return text


def sniff_delimiter(header_line: str) -> str:
    """The candidate delimiter that occurs most in the header (column names rarely contain it)."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # max() keeps the first on ties: ',' wins
    return best if counts[best] else ","


def read_table(
    path: Path, delimiter: str | None = None, encoding: str | None = None
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """CSV/TSV with a header row -> (column names, [(line number, {column: value})])."""
    text = _non_empty(path, read_text(path, encoding)).lstrip("\r\n")  # header = first non-blank line
    delimiter = delimiter or sniff_delimiter(text.splitlines()[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
        rows = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # blank line
            if len(row) != len(header):
                raise DataSourceError(
                    f"file {path.name}, line {reader.line_num}: {len(row)} fields but the header has "
                    f"{len(header)} ({header}); quote fields that contain the delimiter {delimiter!r}"
                )
            rows.append((reader.line_num, dict(zip(header, row, strict=True))))
    except csv.Error as exc:
        raise DataSourceError(f"file {path.name}, line {reader.line_num}: malformed CSV ({exc})") from None
    if not rows:
        raise DataSourceError(f"file {path.name} has a header but no data rows")
    return header, rows


def read_jsonl(path: Path, encoding: str | None = None) -> list[tuple[int, dict[str, Any]]]:
    """One JSON object per line -> [(line number, object)]; blank lines are skipped."""
    text = _non_empty(path, read_text(path, encoding))
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = loads_json(line)
        except JsonTooDeep:
            raise DataSourceError(f"file {path.name}, line {n}: {too_deep_message()}") from None
        except json.JSONDecodeError as exc:
            raise DataSourceError(f"file {path.name}, line {n}: invalid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise DataSourceError(
                f"file {path.name}, line {n}: expected a JSON object, got {type(obj).__name__}"
            )
        rows.append((n, obj))
    return rows


def read_conll(path: Path, encoding: str | None = None) -> list[tuple[int, list[str], list[str]]]:
    """`token ... tag` per line, blank line between sentences -> [(first line, words, tags)].

    The token is the first column and the tag the last. Whitespace-only lines count as blank
    (the WNUT-16 file separates sentences with a lone TAB)."""
    text = _non_empty(path, read_text(path, encoding))
    sentences: list[tuple[int, list[str], list[str]]] = []
    words: list[str] = []
    tags: list[str] = []
    start = 0
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if parts and parts[0] == "-DOCSTART-":
            parts = []  # CoNLL-2003 document marker: acts as a sentence break
        if not parts:
            if words:
                sentences.append((start, words, tags))
            words, tags = [], []
            continue
        if len(parts) < 2:
            raise DataSourceError(f"file {path.name}, line {n}: expected 'token tag', got {line.strip()!r}")
        if not words:
            start = n
        words.append(parts[0])
        tags.append(parts[-1])
    if words:
        sentences.append((start, words, tags))
    return sentences
