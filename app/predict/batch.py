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

from mtl_core.data.uploads import MAX_UPLOAD_BYTES, decode_upload, line_list, upload_problem
from mtl_core.serve.predictor import MAX_CHARS
from mtl_core.types import ClassPrediction, Prediction, RegressionPrediction, TokenPrediction

JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass
class Upload:
    frame: pd.DataFrame | None  # None when nothing usable was read
    problems: list[str] = field(default_factory=list)  # user-facing messages, one per kind of problem


def read_upload(name: str, data: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> Upload:
    """Parse a CSV/TSV/JSONL/JSON upload; undecodable or malformed lines are skipped and reported.

    Too big, empty, binary or compressed files are refused before anything is parsed.
    """
    refused = upload_problem(data, max_bytes)
    if refused:
        return Upload(None, [refused])
    text, problems = decode_upload(data)
    lower = name.lower()
    if lower.endswith(JSON_SUFFIXES):
        frame, more = _read_json_lines(text)
    else:
        frame, more = _read_csv(text, sep="\t" if lower.endswith(".tsv") else ",")
    problems += more
    if frame is not None and frame.empty:
        problems.append("The file has no data rows (only a header, or nothing but blank lines).")
        frame = None
    return Upload(frame, problems)


def _read_csv(text: str, sep: str) -> tuple[pd.DataFrame | None, list[str]]:
    """Rows with more fields than the header are skipped and named; short rows are padded with ''."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    try:
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    except csv.Error as exc:
        return None, [f"Could not read the header (line {reader.line_num}): {exc}."]
    if header is None:
        return None, ["The file has no columns: is it empty?"]
    width, rows, too_long, broken = len(header), [], [], []
    while True:
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
    return pd.DataFrame(rows, columns=_column_names(header), dtype=object), problems


def _column_names(header: list[str]) -> list[str]:
    """Header cells as unique, non-empty column names ('column 3' for a blank one, 'x.1' for a repeat)."""
    names: list[str] = []
    for number, cell in enumerate(header, start=1):
        base = cell.strip() or f"column {number}"
        name, repeat = base, 0
        while name in names:
            repeat += 1
            name = f"{base}.{repeat}"
        names.append(name)
    return names


def _read_json_lines(text: str) -> tuple[pd.DataFrame | None, list[str]]:
    stripped = text.lstrip()
    if stripped.startswith("["):  # a whole JSON array rather than JSON lines
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError as exc:
            return None, [f"Could not parse the JSON array: {exc}"]
        rows, bad = _json_rows(enumerate(items, start=1))
    else:
        parsed, bad = [], []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                parsed.append((number, json.loads(line)))
            except json.JSONDecodeError:
                bad.append(number)
        rows, not_objects = _json_rows(parsed)
        bad = sorted(bad + not_objects)
    problems = ([f"{len(bad)} malformed line(s) were skipped (not a JSON object or string: line(s) "
                 f"{line_list(bad)})."] if bad else [])
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


def summarize(task_pred) -> str | float:
    """One table cell per task: class label, regression value, or entity spans."""
    if isinstance(task_pred, ClassPrediction):
        return task_pred.label
    if isinstance(task_pred, RegressionPrediction):
        return round(task_pred.value, 3)
    if isinstance(task_pred, TokenPrediction):
        return "; ".join(f"{s.text} [{s.label}]" for s in task_pred.spans)
    return str(task_pred)


def result_table(rows: list[int], predictions: list[Prediction], task_names: list[str]) -> pd.DataFrame:
    records = []
    for row, pred in zip(rows, predictions):
        rec = {"row": row, "text": pred.text}
        rec.update({name: summarize(pred.tasks[name]) for name in task_names})
        rec["truncated"] = pred.truncated
        records.append(rec)
    return pd.DataFrame(records, columns=["row", "text", *task_names, "truncated"])


def _detail(task_pred):
    if isinstance(task_pred, ClassPrediction):
        return {"label": task_pred.label, "score": round(task_pred.score, 4)}
    if isinstance(task_pred, RegressionPrediction):
        return {"value": round(task_pred.value, 4)}
    return [{"text": s.text, "label": s.label, "start": s.start, "end": s.end, "score": round(s.score, 4)}
            for s in task_pred.spans]


def to_jsonl(rows: list[int], predictions: list[Prediction]) -> bytes:
    lines = []
    for row, pred in zip(rows, predictions):
        rec = {"row": row, "text": pred.text, "truncated": pred.truncated}
        rec.update({name: _detail(p) for name, p in pred.tasks.items()})
        lines.append(json.dumps(rec, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode("utf-8")


def to_csv(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False).encode("utf-8")
