"""Review → "New tasks": the queue of a task the model has no trained head for yet.

Diverse texts first (no head), then the few-shot head's least certain ones; each label is saved at once and
the head refitted in the background. The status fragment polls, so the estimate updates without a click.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.components.results import task_title
from app.components.text import md_literal
from app.shared import task_service
from app.shared.upload_view import read_once
from mtl_core.data.task_upload import preview, read_texts
from mtl_core.review.fewshot_fit import FEWSHOT_KINDS
from mtl_core.tasks import TaskSpec

STATUS_POLL_S = 2  # seconds between status refreshes while a refit runs


def render_new_tasks(annotator: str) -> None:
    try:
        specs = task_service.new_task_specs()
    except Exception as exc:  # no model: nothing to fit a head on
        st.info(f"New tasks need a trained model to build on: {md_literal(exc)}")
        return
    if not specs:
        st.info("No new task yet: add one on the Data page (New task).", icon=":material/add_task:")
        return
    spec = next(s for s in specs if s.name == st.selectbox(
        "Task", [s.name for s in specs], key="nt_review_task", format_func=task_title))
    if spec.description:
        st.caption(md_literal(spec.description))
    _status(spec)
    if spec.kind == "token_classification":
        st.info("Token tasks get their labels from a CoNLL file (Data → New task, or Review → Import) and their "
                "head in a training round (Train → Join new tasks).")
        return
    if spec.kind not in FEWSHOT_KINDS:
        st.caption(md_literal(f"{spec.kind} tasks get their head in a training round (Train → Join new tasks); "
                              "label them here first (few-shot heads are for classification and multi-label tasks)."))
    _labeller(spec, annotator)
    _add_texts(spec)
    with st.expander("Labels so far", key=f"nt_labels_so_far_{spec.name}"):
        rows = task_service.labelled(spec)
        st.caption(f"{len(rows):,} labelled texts (the latest label per text).")
        st.dataframe(pd.DataFrame(rows, columns=["text", "label"]), hide_index=True, key=f"nt_labelled_{spec.name}")


@st.fragment(run_every=STATUS_POLL_S)
def _status(spec: TaskSpec) -> None:
    s = task_service.status(spec)
    a, b, c = st.columns(3)
    a.metric("Labelled", md_literal(str(sum(s.counts.values()))))
    b.metric("Pool left", md_literal(str(max(s.pool - sum(s.counts.values()), 0))))
    est = "—" if s.head is None or s.head.cv_accuracy is None else f"{s.head.cv_accuracy:.0%}"
    c.metric("Est. micro-F1 (few-shot)" if spec.kind == "multilabel_classification" else "Est. accuracy (few-shot)",
             md_literal(est),
             help="Cross-validated on the labels so far; the Predict page shows this head's answers.")
    st.caption("Labels per class: " + md_literal(", ".join(f"{k} {v}" for k, v in s.counts.items())))
    if s.refitting:
        st.caption("Refitting the few-shot head…")
    elif s.last_report is not None:
        st.caption(md_literal(f"Last refit: {s.last_report.message} ({s.last_report.seconds:.2f} s)."))


def _labeller(spec: TaskSpec, annotator: str) -> None:
    items = task_service.next_to_label(spec, 1) if st.session_state.get("nt_review_started") else None
    if items is None:
        if st.button("Start labelling", key="nt_review_start", type="primary",
                     help="Reads the task's texts with the shared encoder first (a few seconds for 500 texts)."):
            st.session_state["nt_review_started"] = True
            st.rerun()
        return
    if not items:
        st.success("Every text of this task's pool is labelled: add more below (Add texts to label).")
        return
    item = items[0]
    with st.container(border=True, key="nt_review_card"):
        st.caption(md_literal(f"Why this text: {item.why}"))
        st.text(item.text)
    if spec.kind != "classification":
        _value_editor(spec, item.text_id, annotator)
        return
    cols = st.columns(min(len(spec.labels), 6))
    for i, label in enumerate(spec.labels):
        cols[i % len(cols)].button(md_literal(label), key=f"nt_label_{spec.name}_{i}", on_click=_save,
                                   args=(spec, item.text_id, label, annotator), width="stretch")


def _add_texts(spec: TaskSpec) -> None:
    """More unlabelled texts for the task's pool (CSV/TSV/JSONL with a text column, or TXT: one per line)."""
    with st.expander("Add texts to label", key=f"nt_add_{spec.name}"):
        upload = st.file_uploader("CSV / TSV / JSONL / TXT", key=f"nt_pool_upload_{spec.name}",
                                  type=["csv", "tsv", "txt", "jsonl", "json"])
        if upload is None:
            return
        column = "text"
        if not upload.name.lower().endswith(".txt"):
            cols = read_once(upload, f"nt_pool_cols_{spec.name}", lambda name, data: preview(data, name)[0])
            if not cols:
                return
            column = st.selectbox("Text column", cols, key=f"nt_pool_col_{spec.name}", format_func=md_literal)
        try:
            got = read_texts(upload.getvalue(), upload.name, column)
        except ValueError as exc:
            st.error(md_literal(str(exc)))
            return
        st.caption(f"{len(got.rows):,} texts; {got.skipped:,} rows skipped (" + md_literal("; ".join(got.problems[:3]))
                   + ")" if got.problems else f"{len(got.rows):,} texts.")
        if st.button("Add to the pool", key=f"nt_pool_add_{spec.name}", disabled=not got.rows):
            added = task_service.add_pool_texts(spec, got)
            st.success(f"{added:,} texts added (duplicates of stored ones are kept once).")


def _value_editor(spec: TaskSpec, text_id: int, annotator: str) -> None:
    """Multi-label: a multiselect (none chosen = no label applies); regression: a number in the task's range."""
    if spec.kind == "multilabel_classification":
        value = st.multiselect("Labels that apply", spec.labels, key=f"nt_value_{spec.name}_{text_id}",
                               format_func=md_literal)
    else:
        lo, hi = spec.value_range
        value = st.number_input("Value", min_value=float(lo), max_value=float(hi), value=float(lo + hi) / 2,
                                key=f"nt_value_{spec.name}_{text_id}")
    st.button("Save label", key=f"nt_save_{spec.name}", type="primary", on_click=_save,
              args=(spec, text_id, value, annotator))


def _save(spec: TaskSpec, text_id: int, label, annotator: str) -> None:
    task_service.save_label(spec, text_id, label, annotator)
    shown = ", ".join(label) or "(no labels)" if isinstance(label, list) else label
    st.toast(md_literal(f"Saved: {shown}"), icon=":material/check:")
