"""The Data page's Browse tab: one task's split as a searchable table with the model's answers, its label
distribution and text lengths, the confusion matrix (click a cell: its examples) and Send to review."""

from __future__ import annotations

from functools import partial

import pandas as pd
import streamlit as st

from app.components.text import md_literal
from app.data import browse
from app.data.browse_charts import confusion_heatmap, histogram, label_bars
from app.data.source import DataSource
from app.review import service as rs
from app.shared import services
from app.shared.store_service import get_sessions
from mtl_core.data.examples import Example
from mtl_core.data.prepare import fingerprint, prepare_task
from mtl_core.data.splits import SPLITS
from mtl_core.eval.compare import REGRESSION_TOLERANCE
from mtl_core.review.pools import FROZEN_SPLIT
from mtl_core.tasks import TaskSpec
from mtl_core.workspace import data_cache_dir

KEY = "data_browse"
ANSWERED_SPLITS = ("dev", "test")  # train (up to ~20k texts) shows gold only: the model's answers cost minutes
MAX_SEND = 100  # texts one click sends to review (each is a forward pass)
COLUMNS = {
    "#": st.column_config.NumberColumn("#", help="position in the split", width="small"),
    "text": st.column_config.TextColumn("text", width="large"),
    "words": st.column_config.NumberColumn("words", width="small"),
    "correct": st.column_config.CheckboxColumn("correct", width="small"),
}


@st.cache_resource(max_entries=4, show_spinner=False)
def _prepared(home: str, task: str, key: str, seed: int, _spec: TaskSpec) -> dict[str, list[Example]]:
    """A task's splits from the workspace's data cache (shared, never modified: no copy per rerun)."""
    del task, key  # part of the cache key only: `key` is the data's fingerprint (spec, seed, source files)
    return prepare_task(_spec, data_cache_dir(home), seed=seed)


@st.cache_data(max_entries=16, show_spinner=False)
def _rows(home: str, version: str | None, task: str, split: str, key: str, _spec: TaskSpec, _examples: list,
          _answers: list | None) -> pd.DataFrame:
    del home, version, task, split, key  # the cache key
    return browse.example_rows(_spec, _examples, _answers)


def render_browse(src: DataSource) -> None:
    """Pick a task and split; see its data, the model's answers and mistakes; send examples to review."""
    tasks = [t.name for t in src.task_file.tasks if t.source is not None]
    if not tasks:
        st.info("No task of this task file has a data source to browse.")
        return
    left, right = st.columns([2, 3])
    name = left.selectbox("Task", tasks, key=f"{KEY}_task", persist_state="page")
    split = right.radio("Split", SPLITS, index=SPLITS.index("dev"), key=f"{KEY}_split", horizontal=True,
                        format_func=str.capitalize, persist_state="page")
    spec = src.task_file.by_name(name)
    try:
        key = fingerprint(spec, src.data_seed)
        with st.spinner("Preparing the data (only the first time)…"):
            examples = _prepared(src.home, spec.name, key, src.data_seed, spec)[split]
    except Exception as exc:  # a missing corpus package or file, a bad row: say which, keep the page
        st.warning(f"The data of this task could not be loaded: {md_literal(exc)}")
        return
    answers = _answers(src, spec, split, key, examples)
    rows = _rows(src.home, src.version, spec.name, split, key, spec, examples, answers)
    _render_charts(spec, examples, rows)
    if answers is not None and spec.kind == "classification":
        _render_confusion(spec, split, rows)
    shown = _render_table(spec, split, rows)
    _render_send(src, split, shown)


def _answers(src: DataSource, spec: TaskSpec, split: str, key: str, examples: list) -> list | None:
    """The active model's answers on dev/test (None on train, or without a model), with a word on which."""
    if src.predictor is None:
        st.caption("No trained model: gold labels only.")
        return None
    if split not in ANSWERED_SPLITS:
        st.caption("Train split: gold labels only. The model's answers, mistakes and confusion matrix are on "
                   "Dev and Test.")
        return None
    with st.spinner(f"Running model {md_literal(src.version)} on the {len(examples):,} {md_literal(split)} "
                    f"examples of {md_literal(spec.name)} (once per model version)…"):
        answers = services.split_answers(src.version, src.home, spec.name, split, key, src.predictor, examples)
    if answers is None:
        st.caption(f"Model {md_literal(src.version)} has no head for this task: gold labels only.")
    return answers


def _render_charts(spec: TaskSpec, examples: list, rows: pd.DataFrame) -> None:
    dist, lengths = st.columns(2)
    with dist:
        if spec.kind == "regression":
            st.markdown("**Gold values**")
            st.plotly_chart(histogram(rows["gold"].tolist(), "gold value"), key=f"{KEY}_distribution")
        else:
            ner = spec.kind == "token_classification"
            st.markdown("**Entities per type**" if ner else "**Examples per label**")
            st.plotly_chart(label_bars(browse.label_counts(spec, examples), "entities" if ner else "examples"),
                            key=f"{KEY}_distribution")
    with lengths:
        st.markdown("**Text length**")
        st.plotly_chart(histogram(rows["words"].tolist(), "words"), key=f"{KEY}_lengths")


def _filter_keys(spec: TaskSpec) -> tuple[str, str, str]:
    """Gold, answer and only-wrong filter keys: per task, since each task has its own labels."""
    return f"{KEY}_gold_{spec.name}", f"{KEY}_answer_{spec.name}", f"{KEY}_wrong_{spec.name}"


def cell_filters(points: list, spec: TaskSpec) -> dict:
    """The filter values (gold, answer, only wrong off) that show a clicked confusion cell; {} for no cell."""
    cell = browse.cell_from_points(points, list(spec.labels))
    if cell is None:
        return {}
    gold_key, answer_key, wrong_key = _filter_keys(spec)
    return {gold_key: cell[0], answer_key: cell[1], wrong_key: False}


def _on_cell(chart_key: str, spec: TaskSpec) -> None:
    # callback: runs before the filters are drawn, so it may set their values
    st.session_state.update(cell_filters(st.session_state[chart_key]["selection"]["points"], spec))


def _render_confusion(spec: TaskSpec, split: str, rows: pd.DataFrame) -> None:
    table = browse.confusion(spec.labels, rows)
    st.markdown("**Confusion matrix**")
    st.caption(f"{int(table.to_numpy().sum()):,} {md_literal(split)} examples: rows are the gold labels, columns "
               "the model's answers. Click a cell to list its examples below.")
    chart_key = f"{KEY}_confusion_{spec.name}_{split}"
    st.plotly_chart(confusion_heatmap(table), key=chart_key, on_select=partial(_on_cell, chart_key, spec),
                    selection_mode="points")


def _clear_filters(spec: TaskSpec) -> None:
    gold_key, answer_key, wrong_key = _filter_keys(spec)
    st.session_state.update({f"{KEY}_search": "", gold_key: None, answer_key: None, wrong_key: False})


def _any(value: str | None) -> str:
    return "(any)" if value is None else value  # selectbox options are plain text, never Markdown


def _render_table(spec: TaskSpec, split: str, rows: pd.DataFrame) -> pd.DataFrame:
    """Filters and the table; returns the selected rows."""
    answered = browse.has_answers(rows)
    gold_key, answer_key, wrong_key = _filter_keys(spec)
    search_col, gold_col, answer_col, wrong_col = st.columns([3, 2, 2, 1.3], vertical_alignment="bottom")
    search = search_col.text_input("Search the texts", key=f"{KEY}_search", persist_state="page",
                                   placeholder="words to find (plain text, any case)")
    gold = answer = None
    if spec.kind != "regression":
        ner = spec.kind == "token_classification"
        options = [None, *spec.labels]
        gold = gold_col.selectbox("Gold entity" if ner else "Gold label", options, key=gold_key, format_func=_any,
                                  persist_state="page")
        answer = answer_col.selectbox("Model's entity" if ner else "Model's label", options, key=answer_key,
                                      format_func=_any, disabled=not answered, persist_state="page")
    only_wrong = wrong_col.checkbox("Only wrong", key=wrong_key, disabled=not answered, persist_state="page",
                                    help="the examples the model gets wrong (regression: off by more than "
                                         f"{REGRESSION_TOLERANCE:g})")
    matched = browse.filter_rows(rows, search, gold, answer, only_wrong)
    shown = browse.visible(matched)
    note, clear = st.columns([5, 1], vertical_alignment="center")
    note.caption(f"{len(matched):,} of {len(rows):,} {md_literal(split)} examples match"
                 + (f"; the first {len(shown):,} are shown (narrow the filters to see the others)"
                    if len(shown) < len(matched) else "") + ". Tick rows to send them to review.")
    clear.button("Clear filters", key=f"{KEY}_clear", on_click=_clear_filters, args=(spec,))
    event = st.dataframe(shown, key=f"{KEY}_table_{spec.name}_{split}", on_select="rerun",
                         selection_mode="multi-row", hide_index=True, column_config=COLUMNS)
    picked = [r for r in event.selection.rows if 0 <= r < len(shown)]  # a selection outlives a filter change
    return shown.iloc[picked]


def _render_send(src: DataSource, split: str, selected: pd.DataFrame) -> None:
    """Send to review, as the Predict page does (`review.service.send_to_review`): each text is stored with
    the model's answers and its tasks that deserve a look are queued."""
    if src.predictor is None:
        st.caption("Sending examples to review needs a trained model (its answers go with them).")
        return
    if split == FROZEN_SPLIT:
        st.caption("Test examples cannot be sent to review: they measure every model, and a correction would "
                   "train on them.")
        return
    texts = selected["text"].tolist()
    if not st.button("Send the selected rows to review", key=f"{KEY}_send", disabled=not texts,
                     help="store each text with the model's answers and queue the tasks that deserve a look "
                          "(unsure or contradicting each other) on the Review page"):
        return
    _send(src, texts[:MAX_SEND])
    if len(texts) > MAX_SEND:
        st.info(f"Only the first {MAX_SEND:,} of the {len(texts):,} selected rows were sent: send the rest next.")


def _send(src: DataSource, texts: list[str]) -> None:
    with st.spinner(f"Predicting {len(texts):,} text(s)…"):
        predictions = services.predict_many(src.predictor, texts)
    queued = quiet = 0
    try:
        for prediction in predictions:
            sent = rs.send_to_review(get_sessions(), prediction, src.version, src.predictor.task_file)
            queued += sent.queued
            quiet += not sent.queued
    except Exception as exc:  # the store is optional for browsing: say what failed, keep the page
        st.error(f"Could not send the texts to review: {md_literal(exc)}")
        return
    st.success(f"Sent {len(texts):,} text(s) to review: {queued:,} queue item(s)."
               + (f" {quiet:,} of them stored without a queue item: every answer confident and consistent."
                  if quiet else "") + " Open **Review** to label them.", icon=":material/rate_review:")
