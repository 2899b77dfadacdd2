"""Data page → "New task": define a task, map an uploaded file's columns (previewed, bad rows reported),
create it; its few-shot head is fitted in the background and Review → "New tasks" labels it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.components.text import md_literal
from app.shared import task_service
from app.shared.upload_view import read_once
from mtl_core.data.task_upload import Labelled, file_format, parse_value, preview, read_labelled, read_texts
from mtl_core.tasks import KINDS, TaskFileError, TaskSpec

KIND_TITLES = {"classification": "Classification (one label per text)",
               "multilabel_classification": "Multi-label (any number of labels per text)",
               "regression": "Regression (a number)",
               "token_classification": "Token classification (entity spans, CoNLL files)"}
DATA_CHOICES = ("Start empty", "Labelled file", "Unlabelled texts (a pool to label)")
PREVIEW_ROWS = 8


def render_new_task() -> None:
    st.caption("Your own task joins the model in two steps: a few-shot head on the shared encoder answers it "
               "as soon as each class has 2 labels; a training round (Train page) then joins it to the shared model. "
               "Heads transfer best from a base trained to stay general: the Lab's keep_general strategy, or "
               "`python -m mtl_core train --keep-general 20` (docs/TASKS.md).")
    spec = _definition()
    choice = st.radio("Data", DATA_CHOICES, horizontal=True, key="nt_data_choice", format_func=md_literal)
    files = [] if spec is None or choice == DATA_CHOICES[0] else _file(spec, labelled=choice == DATA_CHOICES[1])
    if files is None:
        return
    if st.button("Create task", type="primary", key="nt_create", disabled=spec is None):
        _create(spec, files)


def _definition() -> TaskSpec | None:
    """The form's task, or None (with the reason shown) while it is not valid."""
    a, b = st.columns(2)
    name = a.text_input("Name", key="nt_name", placeholder="ticket_routing", max_chars=60,
                        help="Letters, digits and _ (it names the head and the columns of exports).")
    kind = b.selectbox("Kind", [k for k in KINDS if k in KIND_TITLES], key="nt_kind", format_func=KIND_TITLES.get)
    extra: dict = {}
    if kind == "regression":
        lo, hi = st.columns(2)
        extra["value_range"] = (lo.number_input("Lowest value", value=0.0, key="nt_low"),
                                hi.number_input("Highest value", value=1.0, key="nt_high"))
        labels = []
    else:
        raw = st.text_input("Entity types (comma-separated)" if kind == "token_classification" else "Labels (comma-separated)",
                            key="nt_labels", placeholder="urgent, normal, later")
        labels = [x.strip() for x in raw.split(",") if x.strip()]
    description = st.text_input("Description (optional)", key="nt_description", max_chars=300)
    if not name:
        return None
    try:
        return TaskSpec(name=name.strip(), kind=kind, labels=labels, description=description, **extra)
    except TaskFileError as exc:
        st.warning(md_literal(str(exc).replace("task ", "Task ", 1)))
        return None


def _file(spec: TaskSpec, labelled: bool) -> list[Labelled] | None:
    """The uploaded file's good rows after the column mapping, with its problems listed; None = wait."""
    upload = st.file_uploader("CSV / TSV / JSONL" + (" / CoNLL" if labelled else " / TXT (one text per line)"),
                              key=f"nt_upload_{'labelled' if labelled else 'pool'}",
                              type=["csv", "tsv", "txt", "jsonl", "json", "conll", "bio"])
    if upload is None:
        st.caption("No file yet: the task can still start empty.")
        return []
    cols = read_once(upload, "nt_preview", lambda name, data: preview(data, name))
    if cols is None:
        return None
    columns, head = cols
    text_col = label_col = "text"
    if file_format(upload.name) != "conll" and not upload.name.lower().endswith(".txt"):
        a, b = st.columns(2)
        text_col = a.selectbox("Text column", columns, key="nt_text_col", index=_guess(columns, ("text", "message")))
        if labelled:
            label_col = b.selectbox("Label column", columns, key="nt_label_col",
                                    index=_guess(columns, ("label", "labels", "target", "class"), avoid=text_col))
            st.caption("How the first rows map (label checked against the task's labels):")
            st.dataframe(_mapping(head, text_col, label_col, spec), hide_index=True, key="nt_mapping")
    data = upload.getvalue()
    try:
        got = (read_labelled(data, upload.name, spec, text_col, label_col) if labelled
               else read_texts(data, upload.name, text_col))
    except ValueError as exc:
        st.error(md_literal(str(exc)))
        return None
    for w in got.warnings:
        st.warning(md_literal(w))
    st.caption(f"{len(got.rows):,} good rows will be kept; {got.skipped:,} skipped.")
    if got.problems:
        with st.expander(f"Skipped rows ({got.skipped:,})", key="nt_problems"):
            st.dataframe(pd.DataFrame({"problem": got.problems[:1000]}), hide_index=True, key="nt_problem_rows")
    return [got]


def _guess(columns: list[str], names: tuple[str, ...], avoid: str | None = None) -> int:
    """The first column with a usual name; else the first that is not `avoid` (the text column)."""
    lowered = [c.lower() for c in columns]
    found = next((lowered.index(n) for n in names if n in lowered), None)
    if found is None:
        found = next((i for i, c in enumerate(columns) if c != avoid), 0)
    return found


def _mapping(head: list[dict], text_col: str, label_col: str, spec: TaskSpec) -> pd.DataFrame:
    rows = []
    for rec in head[:PREVIEW_ROWS]:
        value, problem = parse_value(rec.get(label_col), spec)
        rows.append({"text": str(rec.get(text_col, ""))[:200], "label": "" if value is None else str(value),
                     "problem": problem or ""})
    return pd.DataFrame(rows)


def _create(spec: TaskSpec, files: list[Labelled]) -> None:
    try:
        with st.spinner("Creating the task and fitting its head…"):
            texts, labels = task_service.create_task(spec, files, annotator=_annotator())
    except (TaskFileError, ValueError) as exc:
        st.error(md_literal(str(exc)))
        return
    st.success(md_literal(f"Task {spec.name} created: {texts:,} texts, {labels:,} labels stored. "
                          "Label it on Review → New tasks; its answers appear on Predict once each class has "
                          "2 labels."), icon=":material/check_circle:")


def _annotator() -> str:
    return str(st.session_state.get("annotator") or "import")
