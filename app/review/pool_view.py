"""Review page, tab "Score a pool": pick a pool, launch the `score_pool` worker, follow and cancel it.

The scoring runs in a worker process that this tab only launches, polls and cancels.
"""

from __future__ import annotations

import streamlit as st

from app.components.results import task_title
from app.components.text import md_literal
from app.predict import batch
from app.review import pool_service
from app.review import service as rs
from app.review.common import REASON_TITLES, flash
from app.shared import auth_view
from app.shared.job_view import job_header
from app.shared.upload_view import read_once
from mtl_core.model.registry import Registry
from mtl_core.ops import worker
from mtl_core.review.pools import SCORABLE_SPLITS
from mtl_core.serve.predictor import Predictor
from mtl_core.store.db import Sessions
from mtl_core.tasks import load_task_file

JOB = "review_job_id"
POOL_PARSED = "review_pool_parsed"  # session state: the latest pool upload, parsed (see read_once)
POOL_TITLES = {"predict": "Texts sent from Predict", "upload": "Upload a file", "dataset": "Bundled data set"}


def render_pools(sessions: Sessions, home: str, predictor: Predictor | None, version: str | None) -> None:
    if not auth_view.allowed("score_pool"):  # annotators follow the job, nothing more
        auth_view.denied_note("score_pool")
        _render_job(sessions, home)
        return
    if predictor is None:
        st.info("Scoring a pool needs a trained model: the first one is training in the background (progress on "
                "the Predict page).")
        _render_job(sessions, home)
        return
    kind = st.radio("Pool", list(POOL_TITLES), format_func=POOL_TITLES.get, horizontal=True,
                    key="review_pool_kind")
    pool, upload = None, None
    if kind == "predict":
        n = pool_service.pool_size(sessions, rs.PREDICT_POOL)
        st.caption(f"{n:,} text(s) sent with **Send to review** on the Predict page.")
        pool = rs.PREDICT_POOL if n else None
    elif kind == "upload":
        upload = _upload_texts()
    else:
        pool = _dataset_pool(predictor)
    limit = st.number_input("Score at most this many texts", min_value=10, max_value=100_000, value=2_000,
                            step=500, key="review_pool_limit")
    others = [v.id for v in Registry(home).versions() if v.id != version]
    previous = st.selectbox("Also compare with an earlier version", [None, *others], key="review_pool_previous",
                            format_func=lambda v: "(no comparison)" if v is None else v,
                            help="Queues every text whose answer changed between the two versions.")
    ready = pool is not None or upload is not None
    if st.button("Score pool", key="review_score_button", type="primary", disabled=not ready,
                 icon=":material/play_arrow:"):
        _score(sessions, home, pool, upload, version, int(limit), previous)
    _render_job(sessions, home)


def _score(sessions: Sessions, home: str, pool: str | None, upload: tuple[str, list[str]] | None,
           version: str | None, limit: int, previous: str | None) -> None:
    """The click: role checked again (it may have changed since the page was drawn), then store and launch."""
    if not auth_view.allowed("score_pool"):
        st.error(md_literal(auth_view.denied_message("score_pool")))
        return
    if upload is not None:
        pool, n = pool_service.store_upload(sessions, *upload)
        st.caption(f"Stored {n:,} distinct text(s) as pool {md_literal(pool)}.")
    try:
        st.session_state[JOB] = pool_service.start_scoring(sessions, home, pool, version, limit, previous)
    except worker.JobBusy as exc:
        st.warning(f"A scoring job is already running: wait for it or cancel it below. ({md_literal(exc)})")


def _upload_texts() -> tuple[str, list[str]] | None:
    up = st.file_uploader("CSV, TSV or JSONL with a text column (no labels needed)",
                          type=["csv", "tsv", "jsonl", "ndjson", "json"], key="review_pool_upload")
    if up is None:
        st.session_state.pop(POOL_PARSED, None)  # the file is gone: so is its parse
        return None
    parsed = read_once(up, POOL_PARSED, batch.read_upload)  # once per upload, not on every rerun
    if parsed is None:
        return None
    for problem in parsed.problems:
        st.warning(md_literal(problem))
    if parsed.frame is None:
        return None
    columns = batch.text_columns(parsed.frame)
    if not columns:
        st.error("No column with text was found.")
        return None
    column = st.selectbox("Text column", columns, key="review_pool_column")
    _rows, texts, problems = batch.texts_from(parsed.frame, column)
    for problem in problems:
        st.warning(md_literal(problem))
    st.caption(f"{len(texts):,} text(s) in {md_literal(up.name)}.")
    return (up.name, texts) if texts else None


def _dataset_pool(predictor: Predictor) -> str | None:
    bundled = [t.name for t in load_task_file().tasks if t.source is not None and t.name in predictor.task_names]
    if not bundled:
        st.caption("No bundled data set matches this model's tasks.")
        return None
    a, b = st.columns(2)
    task = a.selectbox("Data set (task)", bundled, key="review_pool_task", format_func=task_title)
    split = b.selectbox("Split", list(SCORABLE_SPLITS), key="review_pool_split")
    st.caption("Only train and dev are offered: the test split stays frozen for evaluation, so it is never "
               "queued or relabelled. Gold labels come along: disagreements are queued as model-vs-label.")
    return f"dataset:{task}:{split}"


def _render_job(sessions: Sessions, home: str) -> None:
    view = pool_service.job_view(sessions, st.session_state.get(JOB))
    if view is None:
        return
    if view.active:
        _live_job(sessions, home, view.id)
    else:
        _job_summary(view)


@st.fragment(run_every=2)
def _live_job(sessions: Sessions, home: str, job_id: int) -> None:
    """Polls the job row every 2 s while it runs; a full rerun when it ends refreshes the queue."""
    view = pool_service.job_view(sessions, job_id)
    if view is None or not view.active:
        st.rerun()
    _job_summary(view)
    st.button("Cancel scoring", key="review_cancel_job", icon=":material/stop:",
              on_click=_cancel, args=(job_id, home), disabled=not auth_view.allowed("score_pool"))


def _cancel(job_id: int, home: str) -> None:
    if not auth_view.allowed("score_pool"):  # a disabled button can still be clicked by a forged message
        flash("error", auth_view.denied_message("score_pool"))
        return
    worker.request_cancel(job_id, home)
    flash("info", f"Cancelling job {job_id}: it stops after the current batch; what it scored stays queued.")


def _job_summary(view: pool_service.JobView) -> None:
    pool = view.params.get("pool", "?")
    with st.container(border=True, key="review_job_box"):
        job_header(view, "Scoring job", f"pool {pool}")
        result = view.result or {}
        if view.status == "done" and result:
            reasons = ", ".join(f"{REASON_TITLES.get(r, r).lower()} {n:,}" for r, n in result.get("by_reason", {}).items())
            st.success(f"Scored {result.get('texts', 0):,} texts with {md_literal(result.get('model_version'))} in "
                       f"{result.get('seconds', 0):.0f} s ({result.get('texts_per_s') or 0:.0f} texts/s): "
                       f"{result.get('queued', 0):,} queue items ({md_literal(reasons) or 'none'}), "
                       f"{result.get('annotator_conflicts', 0):,} annotator conflict(s).")
        elif view.status == "failed":
            st.error(f"Scoring failed: {md_literal(view.message)}")
        elif view.status == "cancelled":
            st.warning("Scoring was cancelled; items queued before that stay in the queue.")
