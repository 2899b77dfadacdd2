"""Uploaded files in the pages: parsed once per upload, and a failure is a message, never a traceback.

Streamlit reruns the whole page on every click, so a parse of a 20 MB file in the page body would run again
on every unrelated interaction; `read_once` keeps the result in the session state, keyed by the upload's
`file_id` (a new upload of the same file is a new id). An unexpected error while reading is logged with its
traceback on the server only; the page says what failed in plain words, with no server paths.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from app.components.text import md_literal

LOG = logging.getLogger(__name__)
T = TypeVar("T")


def failure_message(what: str, exc: BaseException) -> str:
    """Log `exc` with its traceback (server side) and return the page's message (plain text: md_literal it)."""
    LOG.error("%s failed", what, exc_info=exc)
    return (f"{what} failed ({type(exc).__name__}); nothing was changed. Check that the file is "
            "CSV, TSV or JSONL text as described here; the details are in the server log.")


def read_once(upload: Any, state_key: str, parse: Callable[[str, bytes], T]) -> T | None:
    """`parse(name, data)` for this upload, run once per uploaded file; None (after an error message) when it
    raised. Only the latest upload's result is kept under `state_key`."""
    ident = (upload.file_id, upload.name, upload.size)
    cached = st.session_state.get(state_key)
    if cached is None or cached[0] != ident:
        try:
            cached = (ident, parse(upload.name, upload.getvalue()), None)
        except Exception as exc:  # RecursionError, MemoryError...: a message, not a traceback on the page
            cached = (ident, None, failure_message(f"Reading {upload.name}", exc))
        st.session_state[state_key] = cached
    if cached[2]:
        st.error(md_literal(cached[2]))
    return cached[1]
