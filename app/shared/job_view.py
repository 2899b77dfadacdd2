"""The title line and progress bar of a background job's panel (batch prediction, pool scoring)."""

from __future__ import annotations

import streamlit as st

from app.components.text import md_literal


def job_header(view, title: str, subject: str, unit: str = "") -> None:
    """`view`: a job view with id, status, step, total, progress (0..1) and message."""
    st.markdown(f"**{md_literal(title)} {view.id:d}** · {md_literal(subject)} · {md_literal(view.status)}")
    step = f"{view.step:,} / {view.total:,}{unit}" if view.step is not None and view.total else ""
    st.progress(min(1.0, view.progress), text=md_literal(" · ".join(x for x in (step, view.message or "") if x)))
