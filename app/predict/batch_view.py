"""Batch tab: upload CSV/JSONL, choose the text column, predict up to MAX_PAGE_ROWS rows in the page (or the
whole file in the background worker: batch_job_view), download CSV/JSONL.

File names, column names and the problems quoting them are user input: shown through `md_literal`.
"""

from __future__ import annotations

import streamlit as st

from app.components.text import md_literal
from app.predict import batch
from app.predict.batch_job_view import launch_button, render_job
from app.shared import services
from app.shared.upload_view import read_once
from mtl_core.serve.batch import task_kinds, task_labels
from mtl_core.serve.predictor import Predictor

PARSED = "batch_parsed"  # session state: (upload identity, (Upload, text columns), error) of the latest upload


def render_batch(predictor: Predictor, version: str) -> None:
    _render_upload(predictor, version)
    render_job()  # this session's background job, also once the upload is gone


def _render_upload(predictor: Predictor, version: str) -> None:
    upload = st.file_uploader("CSV, TSV or JSONL file (UTF-8)", type=["csv", "tsv", "jsonl", "ndjson", "json"],
                              key="batch_file")
    if upload is None:
        st.session_state.pop(PARSED, None)  # the file is gone: so is its parse
        st.caption(f"Every task is predicted for every row (up to {batch.MAX_PAGE_ROWS:,} in the page, any number "
                   "in the background); results can be downloaded as CSV or JSONL.")
        return
    read = read_once(upload, PARSED, _parse)  # once per upload, not on every rerun of the page
    if read is None:
        return
    parsed, columns = read
    for problem in parsed.problems:
        st.error(md_literal(problem))
    if parsed.frame is None:
        return
    if not columns:
        st.error(f"No column with text was found (columns: {md_literal(', '.join(map(str, parsed.frame.columns)))}).")
        return
    column = st.selectbox("Text column", columns, key="batch_column")
    others = [c for c in parsed.frame.columns if c != column]
    guess = batch.guess_id_column(parsed.frame, column)
    id_column = st.selectbox("ID column (kept with each row's predictions)", [None, *others],
                             index=([None, *others].index(guess) if guess in others else 0), key="batch_id_column",
                             format_func=lambda c: "(none)" if c is None else str(c))
    if parsed.more_rows:
        st.info(f"Read the first {batch.MAX_PAGE_ROWS:,} rows of {md_literal(upload.name)}: the page predicts at "
                f"most {batch.MAX_PAGE_ROWS:,} rows. To predict every row, use **Predict the whole file in the "
                "background** (progress shows here, the result is a download), or split the file.")
    else:
        st.caption(f"{len(parsed.frame):,} row(s) read from {md_literal(upload.name)}.")
    run_key = (version, upload.file_id, column, id_column)
    if st.button(f"Predict {'these rows' if parsed.more_rows else 'file'}", key="batch_run",
                 type="secondary" if parsed.more_rows else "primary"):
        _run(predictor, parsed.frame, column, id_column, run_key)
    result = st.session_state.get("batch_result")
    if result and result["key"] == run_key:
        _show(result)
    launch_button(upload, column, version, over_cap=parsed.more_rows, id_column=id_column)


def _parse(name: str, data: bytes) -> tuple[batch.Upload, list[str]]:
    parsed = batch.read_upload(name, data, max_rows=batch.MAX_PAGE_ROWS)
    return parsed, batch.text_columns(parsed.frame) if parsed.frame is not None else []


def _run(predictor: Predictor, frame, column: str, id_column: str | None, run_key: tuple) -> None:
    rows, texts, problems = batch.texts_from(frame, column)
    for problem in problems:
        st.warning(md_literal(problem))
    if not texts:
        st.error(f"Column '{md_literal(column)}' has no text to predict.")
        return
    bar = st.progress(0.0, text=f"0 / {len(texts):,}")
    preds = services.predict_many(
        predictor, texts, on_progress=lambda done, total: bar.progress(done / total, text=f"{done:,} / {total:,}"))
    ids = batch.ids_of(frame, id_column, rows)
    table = batch.result_table(rows, preds, task_kinds(predictor), ids, id_column, task_labels(predictor))
    st.session_state["batch_result"] = {
        "key": run_key, "table": table, "csv": batch.to_csv(table), "jsonl": batch.to_jsonl(rows, preds, ids, id_column),
    }


def _show(result: dict) -> None:
    table = result["table"]
    st.success(f"Predicted {len(table):,} row(s).")
    st.dataframe(table, hide_index=True, key="batch_table")
    a, b, _ = st.columns([1, 1, 3])
    a.download_button("Download CSV", result["csv"], file_name="predictions.csv", mime="text/csv",
                      key="batch_download_csv", on_click="ignore")
    b.download_button("Download JSONL", result["jsonl"], file_name="predictions.jsonl",
                      mime="application/jsonl", key="batch_download_jsonl", on_click="ignore")
