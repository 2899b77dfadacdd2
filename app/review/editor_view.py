"""Review page: the label editors of one queue item and its label / accept / skip / undo buttons.

Each action is one append-only event, written from a button callback (script thread).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.components.html import entity_colors, ner_html
from app.components.results import task_title
from app.review import service as rs
from app.review import span_service
from app.review.common import ITEM, PIN, flash
from app.shared import auth_view
from mtl_core.store import QueueEntry
from mtl_core.store.db import Sessions
from mtl_core.tasks import TaskFile, TaskSpec
from mtl_core.types import ClassPrediction, Prediction, RegressionPrediction, Span, TokenPrediction


def render_editor(sessions: Sessions, entry: QueueEntry, annotator: str, prediction: Prediction | None,
                  task_file: TaskFile) -> None:
    """Correct any task; label / accept / skip / undo are each one append-only event."""
    names = [t.name for t in task_file.tasks]
    _default("review_task_choice", entry.task if entry.task in names else names[0])
    task = st.selectbox("Task to label", names, key="review_task_choice", format_func=task_title,
                        help="The item was queued for the task preselected here; you may correct any other.")
    spec = task_file.by_name(task)
    answer = prediction.tasks.get(task) if prediction is not None else None
    if spec.kind == "classification":
        _class_editor(spec, answer)
    elif spec.kind == "regression":
        _regression_editor(spec, answer)
    else:
        _span_editor(spec, answer, entry.text)
    accept_value = rs.model_value(answer) if answer is not None else None
    cols = st.columns([1.1, 1.7, 0.8, 0.9])
    cols[0].button("Save label", key="review_save", type="primary", icon=":material/check:",
                   on_click=_act, args=(sessions, entry, spec, annotator, "label", None))
    cols[1].button("Accept model answer", key="review_accept", disabled=answer is None, icon=":material/done_all:",
                   on_click=_act, args=(sessions, entry, spec, annotator, "accept", accept_value))
    cols[2].button("Skip", key="review_skip", icon=":material/skip_next:",
                   on_click=_act, args=(sessions, entry, spec, annotator, "skip", None))
    cols[3].button("Undo", key="review_undo", icon=":material/undo:", on_click=undo_action, args=(sessions, annotator))
    if task != entry.task and entry.task is not None:
        st.caption(f"This item asks about {task_title(entry.task)}: saving {task_title(task)} records that "
                   f"label too, and the item stays until {task_title(entry.task)} is labelled or skipped.")


def _default(key: str, value) -> None:
    """Start a widget from `value` through session state: unlike a default argument, this also resets what
    the browser shows when a new item reuses the widget's key."""
    if key not in st.session_state:
        st.session_state[key] = value


def _class_editor(spec: TaskSpec, answer) -> None:
    known = isinstance(answer, ClassPrediction) and answer.label in spec.labels
    _default(f"review_value_{spec.name}", answer.label if known else spec.labels[0])
    st.radio(f"{task_title(spec.name)}: correct class", spec.labels, horizontal=True, key=f"review_value_{spec.name}")


def _regression_editor(spec: TaskSpec, answer) -> None:
    lo, hi = (float(v) for v in spec.value_range)
    start = answer.value if isinstance(answer, RegressionPrediction) else (lo + hi) / 2
    _default(f"review_value_{spec.name}", min(hi, max(lo, round(float(start), 1))))
    st.slider(f"{task_title(spec.name)}: correct value ({lo:g} to {hi:g})", min_value=lo, max_value=hi,
              step=0.1, key=f"review_value_{spec.name}")


def _span_editor(spec: TaskSpec, answer, text: str) -> None:
    key = f"review_spans_{spec.name}"
    if key not in st.session_state:
        st.session_state[key] = rs.model_value(answer) if isinstance(answer, TokenPrediction) else []
    spans: list[dict] = st.session_state[key]
    colors = entity_colors(list(spec.labels))
    shown = [Span(s["start"], s["end"], s["label"], text[s["start"]:s["end"]], 1.0) for s in spans]
    st.markdown(ner_html(text, shown, colors), unsafe_allow_html=True)  # escaped inside ner_html
    st.caption(f"{task_title(spec.name)}: {len(spans)} span(s) in your answer")
    for i, span in enumerate(spans):
        left, right = st.columns([5, 1], vertical_alignment="center")
        left.text(f"{text[span['start']:span['end']]}  [{span['label']}]  chars {span['start']}-{span['end']}")
        right.button("Remove", key=f"review_ner_remove_{i}", on_click=_remove_span, args=(spec.name, i))
    words = span_service.words_of(text)
    a, b, c = st.columns([4, 2, 1], vertical_alignment="bottom")
    a.multiselect("Words of the new span (neighbours only)", list(range(len(words))), key="review_ner_words",
                  format_func=lambda i: f"{i}: {words[i].text}")
    b.selectbox("Entity type", spec.labels, key="review_ner_type")
    c.button("Add span", key="review_ner_add", on_click=_add_span, args=(spec.name, text))
    with st.expander("Words and character offsets", key="review_ner_words_table"):
        st.dataframe(pd.DataFrame([{"#": w.index, "word": w.text, "start": w.start, "end": w.end} for w in words]),
                     hide_index=True, key="review_ner_offsets")


def _add_span(task: str, text: str) -> None:
    key = f"review_spans_{task}"
    try:
        span = span_service.span_from_words(span_service.words_of(text), list(st.session_state.get("review_ner_words") or []),
                                  st.session_state.get("review_ner_type"))
        st.session_state[key] = span_service.add_span(list(st.session_state.get(key, [])), span)
    except ValueError as exc:
        flash("error", f"Span not added: {exc}")
        return
    st.session_state["review_ner_words"] = []


def _remove_span(task: str, index: int) -> None:
    key = f"review_spans_{task}"
    spans = list(st.session_state.get(key, []))
    if 0 <= index < len(spans):
        del spans[index]
    st.session_state[key] = spans


def _act(sessions: Sessions, entry: QueueEntry, spec: TaskSpec, annotator: str, kind: str, accept_value) -> None:
    """Button callback: append one event, then the page shows the next item."""
    if not auth_view.acting_as(annotator):
        flash("error", auth_view.denied_message("annotate"))
        return
    task = spec.name
    if kind == "skip":
        task, value = entry.task or spec.name, None
    elif kind == "accept":
        value = accept_value
    elif spec.kind == "token_classification":
        value = st.session_state.get(f"review_spans_{task}", [])
    else:
        value = st.session_state.get(f"review_value_{task}")
    try:
        if kind != "skip":
            value = rs.check_value(spec, value, entry.text)
        rs.record(sessions, entry.text_id, task, value, annotator, kind, entry.reason)
    except ValueError as exc:
        flash("error", f"Not saved: {exc}")
        return
    st.session_state.pop(PIN, None)
    what = {"label": "Saved", "accept": "Accepted the model's answer for", "skip": "Skipped"}[kind]
    shown = "" if kind == "skip" else f" = {rs.format_value(value)}" if spec.kind != "token_classification" \
        else f" ({len(value)} span(s))"
    flash("success", f"{what} {task_title(task)}{shown}.")


def undo_action(sessions: Sessions, annotator: str) -> None:
    if not auth_view.acting_as(annotator):
        flash("error", auth_view.denied_message("annotate"))
        return
    undone = rs.undo(sessions, annotator)
    if undone is None:
        flash("info", "Nothing of yours left to undo.")
        return
    st.session_state[PIN] = (undone.text_id, undone.task)
    st.session_state.pop(ITEM, None)  # the editors start again from the model's answers
    flash("info", f"Undid your {undone.kind} on {task_title(undone.task)}: the item is back.")
