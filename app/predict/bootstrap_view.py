"""The Predict page before the first model: its training in the background worker, live (progress, phase, ETA,
curves), a failed or cancelled run with Retry, or how to start one; then the sidebar line while the default
model still trains behind the quick one. The job itself: mtl_core/train/bootstrap.py."""

from __future__ import annotations

import streamlit as st

from app.components import curves
from app.components.text import md_literal
from app.shared import auth_view
from app.shared import bootstrap_service as boot
from app.shared.store_service import get_sessions

TRAIN_HELP = """No trained model in this workspace yet, and automatic training is off (`MTL_STUDIO_AUTO_TRAIN=0`).
Start it here, or from a shell:

```bash
python -m mtl_core train --quick   # about 3 minutes, small but usable
python -m mtl_core train           # the full model
```"""
ABOUT = ("The first model is training in the background: a quick model first (about 3 minutes on 2 CPU cores), "
         "used as soon as it exists; then the default model (about 15 minutes), which replaces it if it does "
         "better on the dev sets. Leaving this page does not stop it.")


def render_no_model() -> None:
    """The page body while no model is active: never blocks, never raises for a missing model."""
    try:
        job = boot.ensure_training(get_sessions())
    except Exception as exc:  # e.g. the database cannot be opened: say so, the rest of the app still works
        st.error(f"Could not start training the first model: {md_literal(exc)}")
        return
    if job is None:
        st.info(TRAIN_HELP, icon=":material/model_training:")
        _start_button("Train the first model now", "bootstrap_start")
    elif job.status in boot.ACTIVE_STATUSES:
        _training_panel(job.id)
    elif job.status == "failed":
        st.error(f"Training the first model failed (job {job.id:d}): {md_literal(job.message or 'no message')}")
        with st.expander("Log", expanded=False, key="bootstrap_log"):
            st.code(job.log or "(empty)", language="text")
        _start_button("Retry", "bootstrap_retry")
    else:  # cancelled, or done without leaving a model (the registry was emptied since)
        st.info(f"Training the first model (job {job.id:d}) was {md_literal(job.status)}: "
                f"{md_literal(job.message or '')}")
        _start_button("Train the first model again", "bootstrap_retry")


def _start() -> None:
    if not auth_view.allowed("train"):  # checked again at the click: the role may have changed since
        st.session_state["bootstrap_denied"] = True
        return
    boot.start(get_sessions())


def _start_button(label: str, key: str) -> None:
    may = auth_view.allowed("train")
    st.button(md_literal(label), key=key, type="primary", on_click=_start, disabled=not may)
    if not may or st.session_state.pop("bootstrap_denied", False):
        auth_view.denied_note("train")


def _cancel(job_id: int) -> None:
    if auth_view.allowed("train"):
        boot.cancel(job_id)


@st.fragment(run_every=2)
def _training_panel(job_id: int) -> None:
    sessions = get_sessions()
    job = boot.refresh(sessions, job_id)
    if boot.has_model() or job is None or job.status not in boot.ACTIVE_STATUSES:
        st.rerun()  # the quick model exists (or the job ended): the whole page shows what is there now
        return
    st.subheader("Training the first model")
    st.caption(ABOUT)
    # the job's message says the phase, its step and the time left (mtl_core/train/bootstrap.py: Pace)
    st.progress(min(1.0, job.progress or 0.0),
                text=md_literal(f"{job.message or 'starting…'} · {100 * (job.progress or 0.0):.0f} % done"))
    st.button("Cancel training", key="bootstrap_cancel", on_click=_cancel, args=(job.id,),
              disabled=not auth_view.allowed("train"))
    points = boot.curves(sessions, job.id)
    marks = boot.phase_starts(points)
    left, right = st.columns(2)
    if curves.has_points(points, curves.LOSS):
        left.plotly_chart(curves.loss_figure(points, marks), key="bootstrap_loss_chart")
    if curves.has_points(points, curves.DEV):
        right.plotly_chart(curves.dev_figure(points, marks), key="bootstrap_dev_chart")
    if not curves.has_points(points, curves.LOSS):
        st.caption("Curves appear after the first logged steps (the data is read and tokenised first).")


def render_sidebar_progress(where) -> None:
    """In `where` (the sidebar's status box): "default model training: 40 % · about … left" while the first-run
    job still runs behind an active quick model; nothing otherwise. Once a session has seen no such job it stops
    asking the store: every Predict rerun passes here."""
    if st.session_state.get("_bootstrap_over"):
        return
    try:
        job = boot.running_job(get_sessions())
    except Exception:  # the store is optional for predicting: no line rather than a broken sidebar
        return
    if job is None:
        st.session_state["_bootstrap_over"] = True
        return
    with where:
        _sidebar_line(job.id)


@st.fragment(run_every=10)
def _sidebar_line(job_id: int) -> None:
    job = boot.refresh(get_sessions(), job_id)
    if job is None or job.status not in boot.ACTIVE_STATUSES:
        st.rerun()  # finished: the default model may be the active one now
        return
    left = boot.time_left(job)
    st.caption(md_literal(f"default model training: {100 * (job.progress or 0.0):.0f} %" + (f" · {left}" if left else "")))
