"""Review page: which task to label, and the label editors of one queue item (the value "Save label" writes).

Classification needs no editor: its class buttons save (actions_view). Regression has a slider; NER the span
picker (app/components/span_picker); multi-label a multiselect of the task's labels. An item queued because the model disagrees with the data set starts
from the data set's label, so saving without a change keeps it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import streamlit as st

from app.components.html import entity_colors
from app.components.results import md_title, task_title
from app.components.span_picker import clean_spans, span_picker
from app.components.text import md_literal
from app.review import service as rs
from app.review.actions_view import next_task
from app.review.common import KEYS
from mtl_core.store import QueueEntry
from mtl_core.tasks import MULTILABEL, TaskFile, TaskSpec
from mtl_core.types import MultiLabelPrediction, RegressionPrediction, TokenPrediction


def render_task_choice(entry: QueueEntry, task_file: TaskFile) -> TaskSpec:
    """The task selector (preset to the item's task) and the Next task button; returns the chosen task."""
    names = [t.name for t in task_file.tasks]
    _default("review_task_choice", entry.task if entry.task in names else names[0])
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    task = left.selectbox("Task to label", names, key="review_task_choice", format_func=task_title,
                          help="The item was queued for the task preselected here; you may correct any other.")
    right.button("Next task", key="review_next_task", icon=":material/arrow_forward:", shortcut=KEYS["next_task"],
                 on_click=next_task, args=(names,), width="stretch")
    if task != entry.task and entry.task is not None:
        st.caption(f"This item asks about {md_title(entry.task)}: saving {md_title(task)} records that "
                   f"label too, and the item stays until {md_title(entry.task)} is labelled or skipped.")
    return task_file.by_name(task)


def _default(key: str, value) -> None:
    """Start a widget from `value` through session state: unlike a default argument, this also resets what
    the browser shows when a new item reuses the widget's key."""
    if key not in st.session_state:
        st.session_state[key] = value


def render_editor(spec: TaskSpec, entry: QueueEntry, answer, gold: Any) -> None:
    """The editor of `spec` for this item, started from the data set's label when there is one, else the model's."""
    if spec.kind == "regression":
        _regression_editor(spec, answer, gold)
    elif spec.kind == "token_classification":
        _span_editor(spec, answer, gold, entry)
    elif spec.kind == MULTILABEL:
        _labels_editor(spec, answer, gold)


def _labels_editor(spec: TaskSpec, answer, gold: Any) -> None:
    """Every label the text carries (none is an answer too); "Save label" reads the same key as the slider."""
    start = gold if isinstance(gold, list) else answer.labels if isinstance(answer, MultiLabelPrediction) else []
    _default(f"review_value_{spec.name}", [label for label in spec.labels if label in start])
    st.multiselect(f"{md_title(spec.name)}: every label that applies (leave empty for none)", list(spec.labels),
                   key=f"review_value_{spec.name}")  # options are plain text (not Markdown)


def _regression_editor(spec: TaskSpec, answer, gold: Any) -> None:
    lo, hi = (float(v) for v in spec.value_range)
    start = gold if isinstance(gold, (int, float)) else answer.value if isinstance(answer, RegressionPrediction) \
        else (lo + hi) / 2
    _default(f"review_value_{spec.name}", min(hi, max(lo, round(float(start), 1))))
    st.slider(f"{md_title(spec.name)}: correct value ({lo:g} to {hi:g})", min_value=lo, max_value=hi,
              step=0.1, key=f"review_value_{spec.name}")


def _span_editor(spec: TaskSpec, answer, gold: Any, entry: QueueEntry) -> None:
    key = f"review_spans_{spec.name}"
    if key not in st.session_state:
        start = gold if isinstance(gold, list) else rs.model_value(answer) if isinstance(answer, TokenPrediction) else []
        st.session_state[key] = [dict(s) for s in start]
    st.caption(f"{md_title(spec.name)}: drag over words (or click one), then press a number key or click a type; "
               f"click a span to change its type or remove it (Delete). Then **Save label** ({KEYS['save']}).")
    value = span_picker(entry.text, st.session_state[key], list(spec.labels), entity_colors(list(spec.labels)),
                        key=f"review_ner_picker_{entry.id}_{spec.name}")
    try:
        apply_picker_value(spec, entry.text, value, st.session_state)
    except ValueError as exc:
        st.error(f"Span edit refused: {md_literal(exc)}")
    spans = st.session_state[key]
    st.text(f"{len(spans)} span(s) in your answer: {rs.format_value(spans, entry.text)}")  # plain text


def apply_picker_value(spec: TaskSpec, text: str, value: Any, state: MutableMapping[str, Any]) -> bool:
    """Take a new edit from the span picker into the editor's `state` (the session state); True when it
    changed something. A value no edit could produce raises ValueError and changes nothing."""
    cleaned = clean_spans(value, text, list(spec.labels))
    rev_key = f"review_ner_rev_{spec.name}"
    if cleaned is None or cleaned[1] == state.get(rev_key):
        return False
    state[f"review_spans_{spec.name}"], state[rev_key] = cleaned
    return True
