"""Review page: the action buttons of one drawn item, each with its keyboard shortcut, and their callbacks.

Every button's key ends with the item's `Drawn.token`, and its arguments carry the `Drawn` item: a click is
always for the item the button was drawn with (a stale click is refused by the store, never applied to the
item shown next), and a new item never re-uses an old item's button. Buttons come after the item's text in
the page, so a button is never bound to an item whose text is not on the screen yet.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import streamlit as st

from app.components.results import task_title
from app.components.text import md_literal
from app.review import action_service as acts
from app.review import service as rs
from app.review.common import CLASS_KEYS, ITEM, KEYS, PIN, flash
from app.shared import auth_view
from mtl_core.store.db import Sessions
from mtl_core.tasks import TaskSpec


@dataclass(frozen=True)
class Click:
    """What a button was drawn for: everything its callback needs, fixed at draw time."""

    sessions: Sessions
    drawn: acts.Drawn
    annotator: str
    spec: TaskSpec  # the task being labelled (may differ from the item's own task)
    reason: str
    text: str
    members: tuple[tuple[int, str], ...] = ()  # (text id, reason) of near-identical items a label also gets


def render_actions(click: Click, model_value: Any, gold: Any, undo_id: int | None, model_label: str | None) -> None:
    spec, token = click.spec, click.drawn.token + (f"_b{zlib.crc32(repr(click.members).encode())}" if click.members else "")
    if spec.kind == "classification":
        cols = st.columns(min(len(spec.labels), 6))
        for i, label in enumerate(spec.labels):
            cols[i % len(cols)].button(
                md_literal(label), key=f"review_class_{i}__{token}", type="primary" if label == model_label else "secondary",
                shortcut=CLASS_KEYS[i] if i < len(CLASS_KEYS) else None, width="stretch",
                help="Save this class and go to the next item" + (" (the model's answer)" if label == model_label else ""),
                on_click=act, kwargs={"click": click, "kind": "label", "value": label})
    row = st.container(horizontal=True, key="review_action_row")
    if spec.kind != "classification":
        row.button("Save label", key=f"review_save__{token}", type="primary", icon=":material/check:",
                   shortcut=KEYS["save"], on_click=act, kwargs={"click": click, "kind": "label", "value": None})
    row.button("Accept model answer", key=f"review_accept__{token}", disabled=model_value is None,
               icon=":material/done_all:", shortcut=KEYS["accept"],
               on_click=act, kwargs={"click": click, "kind": "accept", "value": model_value})
    if gold is not None:
        row.button("Keep data-set label", key=f"review_keep__{token}", icon=":material/verified:",
                   shortcut=KEYS["keep"], on_click=act, kwargs={"click": click, "kind": "label", "value": gold})
    row.button("Skip", key=f"review_skip__{token}", icon=":material/skip_next:", shortcut=KEYS["skip"],
               on_click=act, kwargs={"click": click, "kind": "skip", "value": None})
    row.button("Undo", key=f"review_undo__{undo_id or 0}", icon=":material/undo:", shortcut=KEYS["undo"],
               disabled=undo_id is None, on_click=undo_action, args=(click.sessions, click.annotator, undo_id))


def _editor_value(spec: TaskSpec) -> Any:
    key = f"review_spans_{spec.name}" if spec.kind == "token_classification" else f"review_value_{spec.name}"
    return st.session_state.get(key, [] if spec.kind == "token_classification" else None)


def act(click: Click, kind: str, value: Any) -> None:
    """Button callback: one action on the drawn item (plus its near-identical items for a bulk label)."""
    if not auth_view.acting_as(click.annotator):
        flash("error", auth_view.denied_message("annotate"))
        return
    spec, drawn = click.spec, click.drawn
    task = (drawn.task or spec.name) if kind == "skip" else spec.name
    if kind == "label" and value is None:
        value = _editor_value(spec)
    try:
        if kind != "skip":
            value = rs.check_value(spec, value, click.text)
        actions = [acts.Action(drawn.text_id, task, kind, value, click.reason)]
        if kind == "label" and click.members:
            actions += [acts.Action(text_id, task, kind, value, reason) for text_id, reason in click.members]
        written = acts.act(click.sessions, drawn, click.annotator, actions, bulk=len(actions) > 1)
    except acts.StaleAction as exc:
        flash("warning", f"Not recorded: {exc}. The item on the screen now is the one to label.")
        return
    except ValueError as exc:
        flash("error", f"Not saved: {exc}")
        return
    st.session_state.pop(PIN, None)
    what = {"label": "Saved", "accept": "Accepted the model's answer for", "skip": "Skipped"}[kind]
    shown = "" if kind == "skip" else f" = {rs.format_value(value)}" if spec.kind != "token_classification" \
        else f" ({len(value)} span(s))"
    more = f" — and {written - 1} near-identical item(s): one Undo takes them all back" if written > 1 else ""
    flash("success", f"{what} {task_title(task)}{shown}{more}.")


def undo_action(sessions: Sessions, annotator: str, expect_event_id: int | None = None) -> None:
    if not auth_view.acting_as(annotator):
        flash("error", auth_view.denied_message("annotate"))
        return
    try:
        undone = rs.undo(sessions, annotator, expect_event_id)
    except acts.StaleAction as exc:
        flash("warning", f"Not undone: {exc}.")
        return
    if undone is None:
        flash("info", "Nothing of yours left to undo.")
        return
    st.session_state[PIN] = (undone.text_id, undone.task)
    st.session_state.pop(ITEM, None)  # the editors start again from the model's answers
    more = f" ({undone.events} items of one bulk label)" if undone.events > 1 else ""
    flash("info", f"Undid your {undone.kind} on {task_title(undone.task)}{more}: the item is back.")


def next_task(names: list[str]) -> None:
    """Button callback: the task selector moves to the next task (wrapping)."""
    current = st.session_state.get("review_task_choice")
    index = names.index(current) if current in names else -1
    st.session_state["review_task_choice"] = names[(index + 1) % len(names)]
