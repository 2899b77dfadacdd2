"""Review page: the page entry, the annotator, the queue and the item being labelled.

The other tabs live in `review_pool_view` (scoring jobs), `review_agreement_view` (kappa,
adjudication) and `review_exchange_view` (import/export); the label editors in `review_editor_view`.
All st.* calls run in the script thread (callbacks and fragments included). User text reaches the
page escaped (`esc_text`) or through plain-text elements, never as markup.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.components.html import esc_text
from app.components.results import render_results, task_title
from app.review import service as rs
from app.review.agreement_view import render_agreement
from app.review.common import ANNOTATOR, ITEM, PIN, REASON_COLORS, REASON_TITLES, show_flash
from app.review.editor_view import render_editor, undo_action
from app.review.exchange_view import render_exchange
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
UNSURE_BELOW = 0.6


# ---------------------------------------------------------------- page


def render_review_page() -> None:
    sessions = get_sessions()
    home = services.workspace_home()
    predictor, version = _model()
    task_file = predictor.task_file if predictor is not None else load_task_file()
    annotator = render_annotator()
    show_flash()
    queue, pools, agreement, exchange = st.tabs(
        ["Queue", "Score a pool", "Agreement", "Import / export"], key="review_tabs")
    with queue:
        render_queue(sessions, annotator, predictor, version, task_file)
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
        st.warning(f"The model could not be loaded: {exc}")
    return None, None


def send_to_review(predictor: Predictor, version: str, prediction: Prediction) -> None:
    """The Predict page's "Send to review" button: store the text, its answers and its queue items."""
    try:
        sent = rs.send_to_review(get_sessions(), prediction, version, predictor.task_file)
    except Exception as exc:  # the store is optional for predicting: say what failed, keep the page
        st.error(f"Could not send the text to review: {exc}")
        return
    st.success(f"Sent to review: {sent.queued} queue item(s) for this text. Open **Review** to label it.",
               icon=":material/rate_review:")


# ---------------------------------------------------------------- annotator


def _set_annotator() -> None:
    name = " ".join(str(st.session_state.get("review_annotator_input", "")).split())[:128]
    if name:
        st.session_state[ANNOTATOR] = name


def _clear_annotator() -> None:
    st.session_state.pop(ANNOTATOR, None)
    st.session_state.pop(PIN, None)


def render_annotator() -> str | None:
    """The annotator's name, asked once per session; None until given. Team mode: the signed-in user."""
    if auth_view.team_mode():
        return auth_view.team_annotator()
    name = st.session_state.get(ANNOTATOR)
    if name:
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


def render_queue(sessions: Sessions, annotator: str | None, predictor: Predictor | None, version: str | None,
                 task_file: TaskFile) -> None:
    if not annotator:
        st.caption("The queue opens once you have entered your name.")
        return
    names = [t.name for t in task_file.tasks]
    a, b = st.columns(2)
    task = a.selectbox("Task", [None, *names], key="review_filter_task",
                       format_func=lambda t: "All tasks" if t is None else task_title(t))
    reason = b.selectbox("Reason", [None, *QUEUE_REASONS], key="review_filter_reason",
                         format_func=lambda r: "All reasons" if r is None else REASON_TITLES[r])
    done, total = rs.progress(sessions, annotator, task, reason)
    st.progress(done / total if total else 0.0, text=f"{done:,} / {total:,} done")
    entry = _current_entry(sessions, annotator, task, reason)
    if entry is None:
        if total:
            st.success("Nothing left for you under these filters: well done.", icon=":material/task_alt:")
        else:
            st.info("The queue is empty here: score a pool (tab **Score a pool**) or send texts from Predict.")
        st.button("Undo my last action", key="review_undo", on_click=undo_action, args=(sessions, annotator))
        return
    _reset_on_item_change(entry)
    render_item(sessions, entry, annotator, predictor, version, task_file)


def _current_entry(sessions: Sessions, annotator: str, task: str | None, reason: str | None) -> QueueEntry | None:
    pin = st.session_state.get(PIN)
    if pin:
        entry = rs.item_for(sessions, *pin)
        if entry is not None:
            return entry
        st.session_state.pop(PIN, None)
    return rs.next_item(sessions, annotator, task, reason)


def _reset_on_item_change(entry: QueueEntry) -> None:
    """A new item starts from the model's answers, not from the previous item's edits."""
    if st.session_state.get(ITEM) != entry.id:
        for key in [k for k in st.session_state if str(k).startswith(ITEM_KEYS)]:
            del st.session_state[key]
        st.session_state["review_ner_words"] = []  # through state, so the browser's selection clears too
        st.session_state[ITEM] = entry.id


def _prediction(sessions: Sessions, entry: QueueEntry, predictor: Predictor | None, version: str | None
                ) -> Prediction | None:
    if predictor is not None and version is not None:
        try:
            return services.predict_one(predictor, version, entry.text)[0]
        except ValueError as exc:
            st.error(str(exc))
            return None
    return rs.stored_prediction(sessions, entry)


def render_item(sessions: Sessions, entry: QueueEntry, annotator: str, predictor: Predictor | None,
                version: str | None, task_file: TaskFile) -> None:
    with st.container(border=True, key="review_item_box"):
        st.markdown(f'<div class="mtl-review-text" style="white-space:pre-wrap;font-size:1.1em">'
                    f"{esc_text(entry.text)}</div>", unsafe_allow_html=True)
        st.badge(REASON_TITLES.get(entry.reason, entry.reason), color=REASON_COLORS.get(entry.reason, "gray"))
        where = [f"score {entry.score:.2f}", f"task {entry.task or 'any'}"]
        if entry.model_version:
            where.append(f"queued by model {entry.model_version}")
        st.caption(" · ".join(where))
        st.text(entry.detail)  # plain text: details quote user text (entity spans)
    prediction = _prediction(sessions, entry, predictor, version)
    render_editor(sessions, entry, annotator, prediction, task_file)
    if prediction is not None:
        shown = "active model " + version if predictor is not None else f"stored answers of {entry.model_version}"
        with st.expander(f"Model answers for every task ({shown})", expanded=True, key="review_answers"):
            entity_types = {t.name: list(t.labels) for t in task_file.tasks if t.kind == "token_classification"}
            render_results(prediction, entity_types, UNSURE_BELOW)
    if predictor is not None and prediction is not None and prediction.attentions is not None:
        from app.predict.view import render_explain

        render_explain(predictor, version, prediction)
    with st.expander("Event log of this text", key="review_log_expander"):
        log = rs.event_log(sessions, entry.text_id)
        if log:
            st.dataframe(pd.DataFrame([vars(r) for r in log]), hide_index=True, key="review_event_log")
        else:
            st.caption("No labels yet.")
