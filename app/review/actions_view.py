"""Review page: the action buttons of one drawn item, each with its keyboard shortcut, and their callbacks.

A click must act on the item the person saw, never on the one drawn next. Two guards, because Streamlit sends
a click as "widget X was pressed" and nothing more:
- the page echoes what the browser shows: each run writes the drawn item's token into a hidden widget placed
  after the item's text (`render_shown_token`); the browser sends that widget's value with every click, so a
  callback whose arguments (those of the latest run) name another item than the browser had on the screen is
  refused;
- the store refuses an action whose item changed since it was drawn (`store.actions`), so a click delivered
  twice, or one whose arguments are still those of the item before, is never recorded twice or late.
Button keys are stable (`review_accept`, `review_class_0`...): a new key per item would leave the old item's
buttons, with their keyboard shortcuts, in the browser until Streamlit clears them, and a key press would go
to the old one.
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
from app.review.common import CLASS_KEYS, ITEM, KEYS, PIN, SHOWN, flash
from app.shared import auth_view
from mtl_core.store.db import Sessions
from mtl_core.tasks import TaskSpec

HIDE_SHOWN = "<style>.st-key-review_shown_box {display: none}</style>"
STALE = ("Not recorded: that click or key was for the item shown before this one. The item on the screen now "
         "is the one to label.")


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

    @property
    def token(self) -> str:
        """The drawn item, the task and the bulk members: what the browser must show for a click to count."""
        bulk = f"_b{zlib.crc32(repr(self.members).encode())}" if self.members else ""
        return f"{self.drawn.token}_{self.spec.name}{bulk}"


def render_shown_token(token: str) -> None:
    """The hidden widget that echoes, with every click, which drawn item the browser has on the screen."""
    st.session_state[SHOWN] = token  # a new value for the browser, set before the widget is drawn
    with st.container(key="review_shown_box"):
        st.html(HIDE_SHOWN)  # a constant style rule (a style-only st.html takes no room)
        st.text_input("shown item", key=SHOWN, label_visibility="collapsed")


def _seen(token: str) -> bool:
    """Was the item `token` the one on the screen when this click was made?"""
    return st.session_state.get(SHOWN) == token


def render_actions(click: Click, model_value: Any, gold: Any, undo_id: int | None, model_label: str | None) -> None:
    spec = click.spec
    if spec.kind == "classification":
        cols = st.columns(min(len(spec.labels), 6))
        for i, label in enumerate(spec.labels):
            cols[i % len(cols)].button(
                md_literal(label), key=f"review_class_{i}", type="primary" if label == model_label else "secondary",
                shortcut=CLASS_KEYS[i] if i < len(CLASS_KEYS) else None, width="stretch",
                help="Save this class and go to the next item (the model's answer is highlighted)",
                on_click=act, kwargs={"click": click, "kind": "label", "value": label})
    row = st.container(horizontal=True, key="review_action_row")
    if spec.kind != "classification":
        row.button("Save label", key="review_save", type="primary", icon=":material/check:",
                   shortcut=KEYS["save"], on_click=act, kwargs={"click": click, "kind": "label", "value": None})
    row.button("Accept model answer", key="review_accept", disabled=model_value is None,
               icon=":material/done_all:", shortcut=KEYS["accept"],
               on_click=act, kwargs={"click": click, "kind": "accept", "value": model_value})
    row.button("Keep data-set label", key="review_keep", icon=":material/verified:", disabled=gold is None,
               shortcut=KEYS["keep"], help=None if gold is not None else "This text has no data-set label for the task",
               on_click=act, kwargs={"click": click, "kind": "label", "value": gold})
    row.button("Skip", key="review_skip", icon=":material/skip_next:", shortcut=KEYS["skip"],
               on_click=act, kwargs={"click": click, "kind": "skip", "value": None})
    undo_button(row, click.sessions, click.annotator, undo_id, click.token)


def undo_button(where, sessions: Sessions, annotator: str, undo_id: int | None, token: str) -> None:
    where.button("Undo", key="review_undo", icon=":material/undo:", shortcut=KEYS["undo"], disabled=undo_id is None,
                 on_click=undo_action, args=(sessions, annotator, undo_id, token))


def _editor_value(spec: TaskSpec) -> Any:
    key = f"review_spans_{spec.name}" if spec.kind == "token_classification" else f"review_value_{spec.name}"
    return st.session_state.get(key, [] if spec.kind == "token_classification" else None)


def act(click: Click, kind: str, value: Any) -> None:
    """Button callback: one action on the drawn item (plus its near-identical items for a bulk label)."""
    if not auth_view.acting_as(click.annotator):
        flash("error", auth_view.denied_message("annotate"))
        return
    if not _seen(click.token):
        flash("warning", STALE)
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
    shown = "" if kind == "skip" else f" = {rs.format_value(value, kind=spec.kind)}" if spec.kind != "token_classification" \
        else f" ({len(value)} span(s))"
    more = f" — and {written - 1} near-identical item(s): one Undo takes them all back" if written > 1 else ""
    flash("success", f"{what} {task_title(task)}{shown}{more}.")


def undo_action(sessions: Sessions, annotator: str, expect_event_id: int | None = None, token: str | None = None
                ) -> None:
    if not auth_view.acting_as(annotator):
        flash("error", auth_view.denied_message("annotate"))
        return
    if token is not None and not _seen(token):
        flash("warning", STALE.replace("label", "undo from"))
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
