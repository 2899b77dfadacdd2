"""Prediction files: one row per text (the Predict page's table and download) and the `batch_predict` job.

The job predicts a whole uploaded file in the background worker: it reads the file row by row
(`mtl_core.data.upload_stream`), predicts CHUNK texts at a time, and appends to `jobs/<id>/predictions.csv`
(spreadsheet-safe: `mtl_core.data.csv_safe`) and `predictions.jsonl`, written as `.part` files and renamed
when complete. The page stages the upload under `jobs/uploads/` (`stage_upload`); the job deletes that copy
when it ends.

Nothing here imports streamlit.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

import pandas as pd

from mtl_core.data.csv_safe import safe_frame
from mtl_core.data.upload_stream import StreamProblems, count_lines, iter_row_cells
from mtl_core.data.workspace_tasks import load_workspace_tasks, new_tasks
from mtl_core.progress import JobRun
from mtl_core.serve.predictor import MAX_CHARS, load_version_predictor
from mtl_core.tasks import MULTILABEL
from mtl_core.types import (
    ClassPrediction,
    MultiLabelPrediction,
    Prediction,
    RegressionPrediction,
    TokenPrediction,
)

JOB_KIND = "batch_predict"
CHUNK = 256  # texts predicted (and appended to the result files) between progress reports
BATCH_SIZE = 64
UPLOADS = "uploads"  # under jobs/: staged copies of uploaded files, one per launched job
RESULT_FILES = {"csv": "predictions.csv", "jsonl": "predictions.jsonl"}
LABEL_SEPARATOR = "|"  # multi-label: the chosen labels in one cell (the task files' "a|b" form)


def summarize(task_pred) -> str | float:
    """One table cell per task: class label, regression value, entity spans, or the chosen labels joined by "|"."""
    if isinstance(task_pred, ClassPrediction):
        return task_pred.label
    if isinstance(task_pred, MultiLabelPrediction):
        return LABEL_SEPARATOR.join(task_pred.labels)
    if isinstance(task_pred, RegressionPrediction):
        return round(task_pred.value, 3)
    if isinstance(task_pred, TokenPrediction):
        return "; ".join(f"{s.text} [{s.label}]" for s in task_pred.spans)
    return str(task_pred)


def detail(task_pred) -> Any:
    """One task's answer with its scores (every class's probability), for JSONL."""
    if isinstance(task_pred, ClassPrediction):
        out = {"label": task_pred.label, "score": round(task_pred.score, 4),
               "probs": {k: round(v, 4) for k, v in task_pred.probs.items()}}
        if task_pred.fewshot:  # a new task's few-shot head: say so, with its estimated accuracy
            out.update(fewshot=True, estimated_accuracy=task_pred.estimated_accuracy)
        return out
    if isinstance(task_pred, RegressionPrediction):
        return {"value": round(task_pred.value, 4)}
    if isinstance(task_pred, MultiLabelPrediction):
        out = {"labels": list(task_pred.labels), "probs": {k: round(v, 4) for k, v in task_pred.probs.items()},
               "thresholds": {k: round(v, 4) for k, v in task_pred.thresholds.items()}}
        return {**out, "fewshot": True, "estimated_micro_f1": task_pred.estimated_accuracy} if task_pred.fewshot else out
    return [{"text": s.text, "label": s.label, "start": s.start, "end": s.end, "score": round(s.score, 4)}
            for s in task_pred.spans]


CONFIDENCE = "_confidence"  # suffix of a task's confidence column in the table
CONFIDENT_KINDS = ("classification", "token_classification")  # regression has no confidence
PROB = "_prob_"  # multi-label: `<task>_prob_<label>`, one probability column per label
APPLIES = "_applies"  # suffix of a task's applicability column: probability that the task applies, empty = unknown
FIXED = ("row", "text", "truncated")


def confidence_cell(task_pred) -> float | None:
    """A class's probability, or the weakest entity's score (None without entities)."""
    if isinstance(task_pred, ClassPrediction):
        return round(task_pred.score, 4)
    if isinstance(task_pred, TokenPrediction) and task_pred.spans:
        return round(min(s.score for s in task_pred.spans), 4)
    return None


def applies_cell(pred: Prediction, task: str) -> float | None:
    """Probability that `task` applies to the text (model/applicability.py); None when the model cannot tell."""
    p = pred.applies.get(task)
    return None if p is None else round(float(p), 4)


def id_header(id_name: str) -> str:
    """The input's id column as named in the results (prefixed only if it would clash with ours)."""
    return f"input_{id_name}" if id_name in FIXED else id_name


def columns(task_kinds: dict[str, str], id_name: str | None = None,
            labels: dict[str, list[str]] | None = None) -> list[str]:
    """The table's columns: the input's id (if any), row, text, each task (+ its confidence, or a multi-label
    task's probability per label from `labels` (`task_labels`), + whether it applies), truncated."""
    out = [id_header(id_name)] if id_name else []
    out += ["row", "text"]
    for name, kind in task_kinds.items():
        out += [name, name + CONFIDENCE] if kind in CONFIDENT_KINDS else [name]
        out += [f"{name}{PROB}{label}" for label in (labels or {}).get(name, [])]
        out.append(name + APPLIES)
    return out + ["truncated"]


def task_kinds(predictor) -> dict[str, str]:
    return predictor.answered_tasks  # few-shot heads of new tasks included


def task_labels(predictor) -> dict[str, list[str]]:
    """Multi-label task -> its labels: the per-label probability columns of `columns`."""
    return {name: list(spec.labels) for name, spec in predictor.model.tasks.items() if spec.kind == MULTILABEL}


def table_record(row: int, pred: Prediction, task_names: list[str], ident: Any = None,
                 id_name: str | None = None) -> dict:
    rec: dict[str, Any] = {id_header(id_name): ident} if id_name else {}
    rec.update({"row": row, "text": pred.text})
    for name in task_names:
        rec[name] = summarize(pred.tasks[name])
        if isinstance(pred.tasks[name], MultiLabelPrediction):
            rec.update({f"{name}{PROB}{label}": round(p, 4) for label, p in pred.tasks[name].probs.items()})
        elif not isinstance(pred.tasks[name], RegressionPrediction):
            rec[name + CONFIDENCE] = confidence_cell(pred.tasks[name])
        rec[name + APPLIES] = applies_cell(pred, name)
    rec["truncated"] = pred.truncated
    return rec


def json_record(row: int, pred: Prediction, ident: Any = None, id_name: str | None = None) -> dict:
    head = {id_header(id_name): ident} if id_name else {}
    return {**head, "row": row, "text": pred.text, "truncated": pred.truncated,
            **{name: detail(p) for name, p in pred.tasks.items()},
            "applies": {name: applies_cell(pred, name) for name in pred.tasks}}


# ---------------------------------------------------------------- files in the workspace


def stage_upload(home: Path, name: str, data: bytes) -> str:
    """Save an upload for a job; returns its path relative to the workspace (the job's `input` param)."""
    folder = Path(home) / "jobs" / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    suffix = re.sub(r"[^a-z]", "", Path(name).suffix.lower())[:8]  # only the format matters here
    path = folder / f"{secrets.token_hex(8)}.{suffix or 'csv'}"
    path.write_bytes(data)
    return path.relative_to(home).as_posix()


def staged_input(home: Path, relative: str) -> Path:
    """The staged file named by a job's `input` param; ValueError unless it lies in jobs/uploads/."""
    folder = (Path(home) / "jobs" / UPLOADS).resolve()
    path = (Path(home) / relative).resolve()
    if path.parent != folder:
        raise ValueError("the job's input is not a staged upload")
    if not path.is_file():
        raise ValueError("the uploaded file's copy is gone: upload the file again")
    return path


def result_path(home: Path, job_id: int, fmt: str) -> Path:
    return Path(home) / "jobs" / str(job_id) / RESULT_FILES[fmt]


# ---------------------------------------------------------------- the job


def _predict_chunk(predictor, rows: list[int], texts: list[str], ids: list[Any], id_name: str | None, csv_out,
                   jsonl_out, first: bool) -> None:
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # batches pad to similar lengths
    preds: list[Prediction] = [None] * len(texts)  # type: ignore[list-item]
    for i, pred in zip(order, predictor.predict([texts[i] for i in order], batch_size=BATCH_SIZE)):
        preds[i] = pred
    names = list(predictor.answered_tasks)
    table = pd.DataFrame([table_record(r, p, names, i, id_name) for r, p, i in zip(rows, preds, ids)],
                         columns=columns(task_kinds(predictor), id_name, task_labels(predictor)))
    csv_out.write(_csv_chunk(table, header=first))
    jsonl_out.write("".join(json.dumps(json_record(r, p, i, id_name), ensure_ascii=False) + "\n"
                            for r, p, i in zip(rows, preds, ids)))


def _csv_chunk(table: pd.DataFrame, header: bool) -> str:
    """The one place this job writes CSV: every text cell defused (as `csv_safe.to_csv_bytes` does)."""
    return safe_frame(table).to_csv(index=False, header=header, lineterminator="\r\n")


def predict_file(predictor, source: Path, name: str, column: str, out_dir: Path, reporter: JobRun,
                 id_column: str | None = None) -> dict:
    """Predict every row's `column` into out_dir's result files, each row with its `id_column` value when given;
    returns counts and what was skipped."""
    problems, total = StreamProblems(), count_lines(source)
    parts = {fmt: out_dir / (file + ".part") for fmt, file in RESULT_FILES.items()}
    counts = {"read": 0, "predicted": 0, "empty": 0, "too_long": 0}
    rows: list[int] = []
    texts: list[str] = []
    ids: list[Any] = []
    with parts["csv"].open("w", encoding="utf-8", newline="") as csv_out, \
            parts["jsonl"].open("w", encoding="utf-8") as jsonl_out:
        def flush() -> None:
            _predict_chunk(predictor, rows, texts, ids, id_column, csv_out, jsonl_out, first=counts["predicted"] == 0)
            counts["predicted"] += len(texts)
            rows.clear()
            texts.clear()
            ids.clear()
            reporter.progress(counts["read"], max(total, counts["read"]),
                              f"predicted {counts['predicted']:,} of about {total:,} rows")
            reporter.check_cancelled()

        wanted = [column] + ([id_column] if id_column else [])
        for row, (value, *ident) in iter_row_cells(source, name, wanted, problems):
            counts["read"] += 1
            if not isinstance(value, str) or not value.strip():
                counts["empty"] += 1
            elif len(value) > MAX_CHARS:
                counts["too_long"] += 1
            else:
                rows.append(row)
                texts.append(value)
                ids.append(ident[0] if ident else None)
                if len(texts) >= CHUNK:
                    flush()
        if texts:
            flush()
        if not counts["predicted"]:  # nothing to predict: still a CSV with its header
            csv_out.write(_csv_chunk(pd.DataFrame(columns=columns(task_kinds(predictor), id_column,
                                                                  task_labels(predictor))), header=True))
    for fmt, part in parts.items():
        os.replace(part, out_dir / RESULT_FILES[fmt])
    messages = problems.messages()
    if counts["empty"]:
        messages.append(f"{counts['empty']:,} row(s) with an empty '{column}' were skipped.")
    if counts["too_long"]:
        messages.append(f"{counts['too_long']:,} row(s) over {MAX_CHARS:,} characters were skipped.")
    return {**counts, "problems": messages}


def batch_predict_job(ctx: JobRun) -> dict:
    """params: input (a staged upload, see `stage_upload`), name (the file's name), column, id_column (optional:
    kept with each row), model_version."""
    started = time.perf_counter()
    params = ctx.params
    home = Path(ctx.home)
    out_dir = result_path(home, ctx.job_id, "csv").parent
    source = staged_input(home, str(params["input"]))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        ctx.progress(0, None, "loading the model")
        predictor = load_version_predictor(home, params.get("model_version") or None)
        workspace = load_workspace_tasks(home, predictor.task_file)  # new tasks: answered by their few-shot heads
        predictor.refresh_fewshot(home, {t.name for t in new_tasks(workspace, predictor.task_file)})
        version = predictor.version or "unversioned"
        name, column = str(params.get("name") or source.name), str(params.get("column") or "text")
        ctx.log(f"file {name}, column {column!r}, model {version}")
        id_column = str(params["id_column"]) if params.get("id_column") else None
        counts = predict_file(predictor, source, name, column, out_dir, ctx, id_column)
    finally:
        source.unlink(missing_ok=True)  # the user still has the file; the copy only served this job
        for part in out_dir.glob("*.part"):  # a cancelled or failed job leaves no half file behind
            part.unlink()
    seconds = time.perf_counter() - started
    result = {"file": name, "column": column, "model_version": version, **counts, "seconds": round(seconds, 2),
              "files": {fmt: result_path(home, ctx.job_id, fmt).relative_to(home).as_posix() for fmt in RESULT_FILES}}
    ctx.progress(counts["read"], counts["read"], f"done: {counts['predicted']:,} rows predicted")
    ctx.log(json.dumps({k: v for k, v in result.items() if k != "problems"}))
    return result
