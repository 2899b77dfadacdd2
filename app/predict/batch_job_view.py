"""Batch tab, whole files in the background: launch the `batch_predict` worker, follow it, cancel it, download.

The job runs in a worker process that this tab only launches and polls, so a file of any size (up to the
upload cap) is predicted without holding the page; only the job this session launched is shown.
"""

from __future__ import annotations

import streamlit as st

from app.components.text import md_literal
from app.predict import batch_service
from app.shared import services
from app.shared.flash import one_shot
from app.shared.job_view import job_header
from app.shared.store_service import get_sessions
from mtl_core.ops import worker
from mtl_core.store.db import Sessions

JOB = "batch_job_id"
POLL_S = 2
flash, show_flash = one_shot("batch_flash")


def launch_button(upload, column: str, version: str, over_cap: bool, id_column: str | None = None) -> None:
    """The button that sends the whole uploaded file to the worker."""
    if st.button("Predict the whole file in the background", key="batch_background", icon=":material/play_arrow:",
                 type="primary" if over_cap else "secondary",
                 help="A worker process predicts every row and writes CSV and JSONL files to download here."):
        try:
            st.session_state[JOB] = batch_service.start_batch_job(
                get_sessions(), services.workspace_home(), upload.name, upload.getvalue(), column, version, id_column)
        except worker.JobBusy:
            st.warning("A batch job is already running: wait for it or cancel it below.")


def render_job() -> None:
    """The job this session launched: live progress and Cancel while it runs, the downloads when done."""
    show_flash()
    job_id = st.session_state.get(JOB)
    if job_id is None:
        return
    sessions, home = get_sessions(), services.workspace_home()
    view = batch_service.job_view(sessions, job_id)
    if view is None:
        return
    if view.active:
        _live_job(sessions, home, job_id)
    else:
        _job_summary(view, home)


@st.fragment(run_every=POLL_S)
def _live_job(sessions: Sessions, home: str, job_id: int) -> None:
    """Polls the job row every POLL_S seconds; a full rerun when it ends shows the downloads."""
    view = batch_service.job_view(sessions, job_id)
    if view is None or not view.active:
        st.rerun()
    _job_summary(view, home)
    st.button("Cancel", key="batch_cancel_job", icon=":material/stop:", on_click=_cancel, args=(job_id, home))


def _cancel(job_id: int, home: str) -> None:
    worker.request_cancel(job_id, home)
    flash("info", f"Cancelling batch job {job_id}: it stops after the current rows.")


def _job_summary(view: batch_service.JobView, home: str) -> None:
    name = view.params.get("name", "?")
    with st.container(border=True, key="batch_job_box"):
        job_header(view, "Batch job", name, " rows read")
        result = view.result or {}
        if view.status == "done" and result:
            st.success(f"Predicted {result.get('predicted', 0):,} of {result.get('read', 0):,} rows with "
                       f"{md_literal(result.get('model_version'))} in {result.get('seconds', 0):.0f} s.")
            for problem in result.get("problems", []):
                st.warning(md_literal(problem))
            _downloads(view.id, home)
        elif view.status == "failed":
            st.error(f"The batch job failed: {md_literal(view.message)}")
        elif view.status == "cancelled":
            st.warning("The batch job was cancelled; its partial result was discarded.")


def _downloads(job_id: int, home: str) -> None:
    a, b, _ = st.columns([1, 1, 3])
    for col, fmt, mime in ((a, "csv", "text/csv"), (b, "jsonl", "application/jsonl")):
        if not batch_service.result_path(home, job_id, fmt).is_file():
            col.caption(md_literal(f"predictions.{fmt} is no longer in the workspace."))
            continue
        col.download_button(md_literal(f"Download {fmt.upper()}"), data=lambda fmt=fmt: batch_service.result_bytes(home, job_id, fmt),
                            file_name=f"predictions.{fmt}", mime=mime, key=f"batch_job_download_{fmt}",
                            on_click="ignore", icon=":material/download:")
