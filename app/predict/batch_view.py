"""Batch tab: upload CSV/JSONL, choose the text column, predict in batches, download CSV/JSONL."""

from __future__ import annotations

import streamlit as st

from app.predict import batch
from app.shared import services
from mtl_core.serve.predictor import Predictor


def render_batch(predictor: Predictor, version: str) -> None:
    upload = st.file_uploader("CSV, TSV or JSONL file (UTF-8)", type=["csv", "tsv", "jsonl", "ndjson", "json"],
                              key="batch_file")
    if upload is None:
        st.caption("Every task is predicted for every row; results can be downloaded as CSV or JSONL.")
        return
    parsed = batch.read_upload(upload.name, upload.getvalue())
    for problem in parsed.problems:
        st.error(problem)
    if parsed.frame is None:
        return
    columns = batch.text_columns(parsed.frame)
    if not columns:
        st.error(f"No column with text was found (columns: {', '.join(map(str, parsed.frame.columns))}).")
        return
    column = st.selectbox("Text column", columns, key="batch_column")
    st.caption(f"{len(parsed.frame):,} row(s) read from {upload.name}.")
    run_key = (version, upload.file_id, column)
    if st.button("Predict file", key="batch_run", type="primary"):
        _run(predictor, parsed.frame, column, run_key)
    result = st.session_state.get("batch_result")
    if result and result["key"] == run_key:
        _show(result)


def _run(predictor: Predictor, frame, column: str, run_key: tuple) -> None:
    rows, texts, problems = batch.texts_from(frame, column)
    for problem in problems:
        st.warning(problem)
    if not texts:
        st.error(f"Column '{column}' has no text to predict.")
        return
    bar = st.progress(0.0, text=f"0 / {len(texts):,}")
    preds = services.predict_many(
        predictor, texts, on_progress=lambda done, total: bar.progress(done / total, text=f"{done:,} / {total:,}"))
    table = batch.result_table(rows, preds, predictor.task_names)
    st.session_state["batch_result"] = {
        "key": run_key, "table": table, "csv": batch.to_csv(table), "jsonl": batch.to_jsonl(rows, preds),
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
