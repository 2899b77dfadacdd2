"""Batch files: read an uploaded CSV/JSONL leniently, and turn predictions into a table / JSONL.

Pure functions (no streamlit), so they are tested directly; a bad row is reported and skipped,
never a reason to lose the good ones.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

import pandas as pd

from mtl_core.data.csv_safe import to_csv_bytes
from mtl_core.data.upload_stream import column_names
from mtl_core.data.uploads import (
    MAX_UPLOAD_BYTES,
    JsonTooDeep,
    decode_upload,
    line_list,
    loads_json,
    too_deep_message,
    upload_problem,
)
from mtl_core.serve.batch import columns, json_record, table_record
from mtl_core.serve.predictor import MAX_CHARS
from mtl_core.types import Prediction

JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
MAX_PAGE_ROWS = 10_000  # rows the Batch tab reads and predicts in the page; whole files: the batch_predict job


@dataclass
class Upload:
    frame: pd.DataFrame | None  # None when nothing usable was read
    problems: list[str] = field(default_factory=list)  # user-facing messages, one per kind of problem
    more_rows: bool = False  # the file goes on past `max_rows`: those rows were not read


def read_upload(name: str, data: bytes, max_bytes: int = MAX_UPLOAD_BYTES, max_rows: int | None = None) -> Upload:
    """Parse a CSV/TSV/JSONL/JSON upload; undecodable or malformed lines are skipped and reported.

    Too big, empty, binary or compressed files are refused before anything is parsed. With `max_rows`,
    reading stops after that many data rows (`more_rows` says whether the file has more).
    """
    refused = upload_problem(data, max_bytes)
    if refused:
        return Upload(None, [refused])
    text, problems = decode_upload(data)
    lower = name.lower()
    if lower.endswith(JSON_SUFFIXES):
        frame, more = _read_json_lines(text, max_rows)
    else:
        frame, more = _read_csv(text, sep="\t" if lower.endswith(".tsv") else ",", max_rows=max_rows)
    problems += more
    if frame is not None and frame.empty:
        problems.append("The file has no data rows (only a header, or nothing but blank lines).")
        frame = None
    capped = frame is not None and max_rows is not None and len(frame) > max_rows
    return Upload(frame.iloc[:max_rows] if capped else frame, problems, more_rows=capped)


def _read_csv(text: str, sep: str, max_rows: int | None = None) -> tuple[pd.DataFrame | None, list[str]]:
    """Rows with more fields than the header are skipped and named; short rows are padded with ''.
    Stops after max_rows + 1 rows (the one extra tells the caller that the file goes on)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    try:
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    except csv.Error as exc:
        return None, [f"Could not read the header (line {reader.line_num}): {exc}."]
    if header is None:
        return None, ["The file has no columns: is it empty?"]
    width, rows, too_long, broken = len(header), [], [], []
    while max_rows is None or len(rows) <= max_rows:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field over the csv module's size limit: skip that line
            broken.append(f"line {reader.line_num}: {exc}")
            continue
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) > width:
            too_long.append(reader.line_num)
        else:
            rows.append(row + [""] * (width - len(row)))
    problems = [f"Could not read {len(broken)} line(s), skipped: {'; '.join(broken[:3])}."] if broken else []
    if too_long:
        problems.append(
            f"{len(too_long)} malformed row(s) with more fields than the header's {width} were skipped "
            f"(line(s) {line_list(too_long)}). Put text that contains a '{sep}' in double quotes.")
    return pd.DataFrame(rows, columns=column_names(header), dtype=object), problems


def _read_json_lines(text: str, max_rows: int | None = None) -> tuple[pd.DataFrame | None, list[str]]:
    stripped = text.lstrip()
    if stripped.startswith("["):  # a whole JSON array rather than JSON lines
        try:
            items = loads_json(stripped)
        except json.JSONDecodeError as exc:  # JsonTooDeep included
            return None, [f"Could not parse the JSON array: {exc}"]
        rows, bad = _json_rows(enumerate(items, start=1))
        deep: list[int] = []
    else:
        parsed, bad, deep, records = [], [], [], 0
        for number, line in enumerate(text.splitlines(), start=1):
            if max_rows is not None and records > max_rows:
                break  # enough to fill the page (and to know there is more)
            if not line.strip():
                continue
            try:
                parsed.append((number, loads_json(line)))
                records += isinstance(parsed[-1][1], (dict, str))
            except JsonTooDeep:
                deep.append(number)
            except json.JSONDecodeError:
                bad.append(number)
        rows, not_objects = _json_rows(parsed)
        bad = sorted(bad + not_objects)
    problems = ([f"{len(bad)} malformed line(s) were skipped (not a JSON object or string: line(s) "
                 f"{line_list(bad)})."] if bad else [])
    if deep:
        problems.append(f"{len(deep)} line(s) were skipped, {too_deep_message()}: line(s) {line_list(deep)}.")
    if not rows:
        return None, problems + ["No valid JSON records were found."]
    return pd.DataFrame(rows), problems


def _json_rows(items) -> tuple[list[dict], list[int]]:
    rows, bad = [], []
    for number, item in items:
        if isinstance(item, dict):
            rows.append(item)
        elif isinstance(item, str):  # a bare string line is a text
            rows.append({"text": item})
        else:
            bad.append(number)
    return rows, bad


def text_columns(frame: pd.DataFrame) -> list[str]:
    """Columns holding at least one non-empty string, best guess first ("text", then longest)."""
    def mean_len(col: str) -> float:
        return frame[col].map(lambda v: len(v) if isinstance(v, str) else 0).mean()

    cols = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, str) and bool(v.strip())).any()]
    cols.sort(key=lambda c: (c.lower() != "text", -mean_len(c)))
    return cols


def texts_from(frame: pd.DataFrame, column: str) -> tuple[list[int], list[str], list[str]]:
    """-> (row numbers, texts, problems): empty / non-text / oversized cells are skipped and reported."""
    rows, texts, empty, huge = [], [], 0, 0
    for i, value in enumerate(frame[column].tolist(), start=1):
        if not isinstance(value, str) or not value.strip():
            empty += 1
        elif len(value) > MAX_CHARS:
            huge += 1
        else:
            rows.append(i)
            texts.append(value)
    problems = []
    if empty:
        problems.append(f"{empty} row(s) with an empty '{column}' were skipped.")
    if huge:
        problems.append(f"{huge} row(s) over {MAX_CHARS:,} characters were skipped.")
    return rows, texts, problems


ID_NAMES = ("id", "uuid", "guid", "key")  # column names taken for an id column without asking


def guess_id_column(frame: pd.DataFrame, text_column: str) -> str | None:
    """The column that most likely identifies a row ("id", "review_id", "Tweet ID"...), or None."""
    for column in frame.columns:
        name = str(column).strip().lower()
        if column != text_column and (name in ID_NAMES or name.endswith(("_id", " id", "-id"))):
            return column
    return None


def ids_of(frame: pd.DataFrame, id_column: str | None, rows: list[int]) -> list:
    """The id cell of each (1-based) row; all None without an id column."""
    if not id_column:
        return [None] * len(rows)
    cells = frame[id_column].tolist()
    return [cells[r - 1] for r in rows]


def result_table(rows: list[int], predictions: list[Prediction], task_kinds: dict[str, str],
                 ids: list | None = None, id_column: str | None = None,
                 labels: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """One row per text: the input's id (if any), row, text, each task's answer and confidence (multi-label
    tasks: a probability per label of `labels`, see `serve.batch.task_labels`)."""
    ids = ids or [None] * len(rows)
    return pd.DataFrame([table_record(row, pred, list(task_kinds), i, id_column)
                         for row, pred, i in zip(rows, predictions, ids)],
                        columns=columns(task_kinds, id_column, labels))


def to_jsonl(rows: list[int], predictions: list[Prediction], ids: list | None = None,
             id_column: str | None = None) -> bytes:
    ids = ids or [None] * len(rows)
    lines = [json.dumps(json_record(row, pred, i, id_column), ensure_ascii=False, default=str)
             for row, pred, i in zip(rows, predictions, ids)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def to_csv(table: pd.DataFrame) -> bytes:
    """The download: texts and spans that start like a formula are defused for spreadsheets."""
    return to_csv_bytes(table)
