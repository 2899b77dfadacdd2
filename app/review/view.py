"""Review page: the page entry, the annotator, and the queue (a fragment: labelling reruns only it).

The item itself lives in `item_view` (card, model vs data set) with `editor_view` (editors), `actions_view`
(buttons, shortcuts, callbacks), `bulk_view` and `panel_view` (the annotator's figures, skipped items); the
other tabs in `pool_view` (scoring jobs), `agreement_view` (kappa, adjudication) and `exchange_view`
(import/export). All st.* calls run in the script thread (callbacks and fragments included). User text
reaches the page escaped (`esc_text`, `md_literal`) or through plain-text elements, never as markup.
"""

from __future__ import annotations

import streamlit as st

from app.components.results import task_title
from app.components.text import md_literal
from app.review import action_service as acts
from app.review import service as rs
from app.review.actions_view import render_shown_token, undo_button
from app.review.agreement_view import render_agreement
from app.review.common import ANNOTATOR, ITEM, NAME_PARAM, PIN, REASON_TITLES, show_flash
from app.review.exchange_view import render_exchange
from app.review.item_view import render_item
from app.review.new_task_view import render_new_tasks
from app.review.panel_view import render_panel
from app.review.pool_view import render_pools
from app.shared import auth_view, services
from app.shared.store_service import get_sessions
from mtl_core.serve.predictor import NoModelError, Predictor
from mtl_core.store import QueueEntry
from mtl_core.store.db import Sessions
from mtl_core.store.models import QUEUE_REASONS
from mtl_core.tasks import TaskFile, load_task_file
from mtl_core.types import Prediction

ITEM_KEYS = ("review_value_", "review_spans_", "review_ner_", "review_task_choice")


# ---------------------------------------------------------------- page


def render_review_page() -> None:
    sessions = get_sessions()
    home = services.workspace_home()
    predictor, version = _model()
    task_file = predictor.task_file if predictor is not None else load_task_file()
    annotator = render_annotator()
    show_flash()
    queue, fresh, pools, agreement, exchange = st.tabs(
        ["Queue", "New tasks", "Score a pool", "Agreement", "Import / export"], key="review_tabs")
    with queue:
        render_queue(sessions, annotator, predictor, version, task_file)
    with fresh:
        render_new_tasks(annotator)
    with pools:
        render_pools(sessions, home, predictor, version)
    with agreement:
        render_agreement(sessions, annotator, task_file)
    with exchange:
        render_exchange(sessions, task_file)


def _model() -> tuple[Predictor | None, str | None]:
    """The active predictor, or (None, None): labelling still works from stored predictions."""
    try:
        return services.current_predictor()
    except NoModelError:
        st.caption("No trained model in this workspace: stored predictions are shown where they exist.")
    except Exception as exc:  # a corrupted registry: say what, keep the page usable
        st.warning(f"The model could not be loaded: {md_literal(exc)}")
    return None, None


def send_to_review(predictor: Predictor, version: str, prediction: Prediction,
                   unsure_below: float = rs.UNSURE_BELOW) -> None:
    """The Predict page's "Send to review" button: store the text and its answers, queue the tasks that
    deserve a look (unsure below `unsure_below`, or contradicting each other) and say which."""
    try:
        sent = rs.send_to_review(get_sessions(), prediction, version, predictor.task_file, unsure_below)
    except Exception as exc:  # the store is optional for predicting: say what failed, keep the page
        st.error(f"Could not send the text to review: {md_literal(exc)}")
        return
    if not sent.queued:
        st.info(f"Stored, but nothing was queued: every answer is confident (at least {unsure_below:.0%}) and "
                "consistent with the others.", icon=":material/rate_review:")
        return
    st.success(f"Sent to review: {sent.queued:,} queue item(s) for this text ({md_literal('; '.join(sent.why))}). "
               "Open **Review** to label it.", icon=":material/rate_review:")


# ---------------------------------------------------------------- annotator


def _clean_name(value: object) -> str:
    """Whitespace runs as one space, at most 128 characters, no NUL (the store refuses it)."""
    return " ".join(str(value or "").replace("\x00", " ").split())[:128]


def _set_annotator() -> None:
    name = _clean_name(st.session_state.get("review_annotator_input", ""))
    if name:
        st.session_state[ANNOTATOR] = name
        st.query_params[NAME_PARAM] = name  # a reload of the page keeps it


def _clear_annotator() -> None:
    st.session_state.pop(ANNOTATOR, None)
    st.session_state.pop(PIN, None)
    st.query_params.pop(NAME_PARAM, None)


def render_annotator() -> str | None:
    """The annotator's name, asked once and kept in the URL (`?annotator=`), so a reload keeps it; None until
    given. Team mode: the signed-in user."""
    if auth_view.team_mode():
        return auth_view.team_annotator()
    name = st.session_state.get(ANNOTATOR) or _clean_name(st.query_params.get(NAME_PARAM))
    if name:
        st.session_state[ANNOTATOR] = name
        if st.query_params.get(NAME_PARAM) != name:
            st.query_params[NAME_PARAM] = name  # back in the URL after a visit to another page
        st.sidebar.text(f"Annotating as {name}")
        st.sidebar.button("Switch annotator", key="review_switch_annotator", on_click=_clear_annotator)
        return name
    st.info("Enter your name to start labelling: it is recorded with every label, skip and undo.",
            icon=":material/badge:")
    left, right, _ = st.columns([2, 1, 2], vertical_alignment="bottom")
    left.text_input("Your name", key="review_annotator_input", max_chars=128, on_change=_set_annotator,
                    placeholder="e.g. alice")
    right.button("Start labelling", key="review_annotator_set", on_click=_set_annotator)
    return None


# ---------------------------------------------------------------- queue


@st.fragment
def render_queue(sessions: Sessions, annotator: str | None, predictor: Predictor | None, version: str | None,
                 task_file: TaskFile) -> None:
    """The queue tab, a fragment: a label, skip or undo reruns only this, not the other tabs."""
    if not annotator:
        st.caption("The queue opens once you have entered your name.")
        return
    show_flash()  # an action's message, on a rerun of this fragment alone
    names = [t.name for t in task_file.tasks]
    a, b = st.columns(2)
    task = a.selectbox("Task", [None, *names], key="review_filter_task",
                       format_func=lambda t: "All tasks" if t is None else task_title(t))
    reason = b.selectbox("Reason", [None, *QUEUE_REASONS], key="review_filter_reason",
                         format_func=lambda r: "All reasons" if r is None else REASON_TITLES[r])
    counts = rs.progress(sessions, annotator, task, reason)
    st.progress(counts.labelled / counts.total if counts.total else 0.0,
                text=f"{counts.labelled:,} / {counts.total:,} done · {counts.skipped:,} skipped")
    render_panel(sessions, annotator)
    entry, following = _current_entry(sessions, annotator, task, reason)
    if entry is None:
        if counts.total:
            st.success("Nothing left for you under these filters: well done.", icon=":material/task_alt:")
        else:
            st.info("The queue is empty here: score a pool (tab **Score a pool**) or send texts from Predict.")
        render_shown_token("empty")
        undo_button(st, sessions, annotator, acts.undo_target(sessions, annotator), "empty")
        return
    _reset_on_item_change(entry)
    render_item(sessions, entry, annotator, predictor, version, task_file, following)


def _current_entry(sessions: Sessions, annotator: str, task: str | None, reason: str | None
                   ) -> tuple[QueueEntry | None, QueueEntry | None]:
    """(the item to show, the one after it: prefetched). A pinned item (undo, re-open) comes first."""
    pin = st.session_state.get(PIN)
    if pin:
        entry = rs.item_for(sessions, *pin)
        if entry is not None:
            return entry, rs.next_item(sessions, annotator, task, reason)
        st.session_state.pop(PIN, None)
    found = rs.next_items(sessions, annotator, task, reason, limit=2)
    return (found[0] if found else None), (found[1] if len(found) > 1 else None)


def _reset_on_item_change(entry: QueueEntry) -> None:
    """A new item starts from the model's answers, not from the previous item's edits."""
    if st.session_state.get(ITEM) != entry.id:
        for key in [k for k in st.session_state if str(k).startswith(ITEM_KEYS)]:
            del st.session_state[key]
        st.session_state[ITEM] = entry.id
