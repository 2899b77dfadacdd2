"""Review page: the session-state keys and titles its sections share, and the one-shot flash message.

A button callback cannot draw: it leaves a (level, message) here, shown once on the next run.
"""

from __future__ import annotations

import streamlit as st

ANNOTATOR = "review_annotator"  # the name, kept for the whole session (not a widget key)
PIN = "review_pin"  # (text id, task) to show next, set by undo
FLASH = "review_flash"  # (level, message) shown once after a callback
ITEM = "review_item"  # id of the queue item the editors were filled for
REASON_TITLES = {
    "uncertain": "Model unsure",
    "contradiction": "Answers contradict each other",
    "model_vs_label": "Model disagrees with the data-set label",
    "version_vs_version": "Model versions disagree",
    "annotator_conflict": "Annotators disagree",
}
REASON_COLORS = {"uncertain": "orange", "contradiction": "red", "model_vs_label": "violet",
                 "version_vs_version": "blue", "annotator_conflict": "gray"}


def flash(level: str, message: str) -> None:
    st.session_state[FLASH] = (level, message)


def show_flash() -> None:
    pending = st.session_state.pop(FLASH, None)
    if pending:
        level, message = pending
        {"success": st.success, "error": st.error, "warning": st.warning}.get(level, st.info)(message)
