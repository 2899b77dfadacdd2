"""A background job's panel pieces: title line and progress bar (batch prediction, pool scoring), Cancel."""

from __future__ import annotations

import streamlit as st

from app.components.text import md_literal
from app.shared import auth_view
from mtl_core.ops import worker
from mtl_core.workspace import workspace_dir


def job_header(view, title: str, subject: str, unit: str = "") -> None:
    """`view`: a job view with id, status, step, total, progress (0..1) and message."""
    st.markdown(f"**{md_literal(title)} {view.id:d}** · {md_literal(subject)} · {md_literal(view.status)}")
    step = f"{view.step:,} / {view.total:,}{unit}" if view.step is not None and view.total else ""
    st.progress(min(1.0, view.progress), text=md_literal(" · ".join(x for x in (step, view.message or "") if x)))


def cancel_training_job(job_id: int, flash) -> None:
    """A Cancel button's callback for a training job (round, lab): needs the train permission, checked at the
    click; `flash(kind, text)` says why not on the next run."""
    if not auth_view.allowed("train"):
        flash("error", auth_view.denied_message("train"))
        return
    worker.request_cancel(job_id, str(workspace_dir()))
