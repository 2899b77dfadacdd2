"""One-shot messages: a button callback cannot draw, so it leaves (level, message) in the session state,
shown once at the top of the next run of the page. Messages are plain text: they quote user input
(names, labels, errors), so they are shown through `md_literal`, never as Markdown."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from app.components.text import md_literal


def one_shot(key: str) -> tuple[Callable[[str, str], None], Callable[[], None]]:
    """(flash, show_flash) keeping their message under session-state `key`; level is success/error/warning/info."""

    def flash(level: str, message: str) -> None:
        st.session_state[key] = (level, message)

    def show_flash() -> None:
        pending = st.session_state.pop(key, None)
        if pending:
            level, message = pending
            show = {"success": st.success, "error": st.error, "warning": st.warning}.get(level, st.info)
            show(md_literal(message))

    return flash, show_flash
