"""Review page sections: annotator, queue and labelling, pool scoring, agreement, import/export.

All st.* calls run in the script thread (callbacks and fragments included); the scoring itself runs
in a worker process that this page only launches, polls and cancels. User text reaches the page
escaped (`esc_text`) or through plain-text elements, never as markup.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mtl_core import worker
from mtl_core.inference import NoModelError, Predictor
from mtl_core.registry import Registry
from mtl_core.review_jobs import SCORABLE_SPLITS
from mtl_core.store import QueueEntry
from mtl_core.store.models import QUEUE_REASONS
from mtl_core.tasks import TaskFile, TaskSpec, load_task_file
from mtl_core.types import ClassPrediction, Prediction, RegressionPrediction, Span, TokenPrediction

from . import auth_view, batch, services
from . import review_service as rs
from .components.html import entity_colors, esc_text, ner_html
from .components.results import render_results, task_title
from .store_service import get_sessions

ANNOTATOR = "review_annotator"  # the name, kept for the whole session (not a widget key)
PIN = "review_pin"  # (text id, task) to show next, set by undo
FLASH = "review_flash"  # (level, message) shown once after a callback
ITEM = "review_item"  # id of the queue item the editors were filled for
JOB = "review_job_id"
ITEM_KEYS = ("review_value_", "review_spans_", "review_ner_", "review_task_choice")
UNSURE_BELOW = 0.6
REASON_TITLES = {
    "uncertain": "Model unsure",
    "contradiction": "Answers contradict each other",
    "model_vs_label": "Model disagrees with the data-set label",
    "version_vs_version": "Model versions disagree",
    "annotator_conflict": "Annotators disagree",
}
REASON_COLORS = {"uncertain": "orange", "contradiction": "red", "model_vs_label": "violet",
                 "version_vs_version": "blue", "annotator_conflict": "gray"}
POOL_TITLES = {"predict": "Texts sent from Predict", "upload": "Upload a file", "dataset": "Bundled data set"}


# ---------------------------------------------------------------- page


def render_review_page() -> None:
    sessions = get_sessions()
    home = services.workspace_home()
    predictor, version = _model()
    task_file = predictor.task_file if predictor is not None else load_task_file()
    annotator = render_annotator()
    _show_flash()
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


def _flash(level: str, message: str) -> None:
    st.session_state[FLASH] = (level, message)


def _show_flash() -> None:
    flash = st.session_state.pop(FLASH, None)
    if flash:
        level, message = flash
        {"success": st.success, "error": st.error, "warning": st.warning}.get(level, st.info)(message)


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


def render_queue(sessions, annotator: str | None, predictor: Predictor | None, version: str | None,
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
        st.button("Undo my last action", key="review_undo", on_click=_undo, args=(sessions, annotator))
        return
    _reset_on_item_change(entry)
    render_item(sessions, entry, annotator, predictor, version, task_file)


def _current_entry(sessions, annotator: str, task: str | None, reason: str | None) -> QueueEntry | None:
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


def _prediction(sessions, entry: QueueEntry, predictor: Predictor | None, version: str | None
                ) -> Prediction | None:
    if predictor is not None and version is not None:
        try:
            return services.predict_one(predictor, version, entry.text)[0]
        except ValueError as exc:
            st.error(str(exc))
            return None
    return rs.stored_prediction(sessions, entry)


def render_item(sessions, entry: QueueEntry, annotator: str, predictor: Predictor | None,
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
        from .predict_view import render_explain

        render_explain(predictor, version, prediction)
    with st.expander("Event log of this text", key="review_log_expander"):
        log = rs.event_log(sessions, entry.text_id)
        if log:
            st.dataframe(pd.DataFrame([vars(r) for r in log]), hide_index=True, key="review_event_log")
        else:
            st.caption("No labels yet.")


def render_editor(sessions, entry: QueueEntry, annotator: str, prediction: Prediction | None,
                  task_file: TaskFile) -> None:
    """Correct any task; label / accept / skip / undo are each one append-only event."""
    names = [t.name for t in task_file.tasks]
    _default("review_task_choice", entry.task if entry.task in names else names[0])
    task = st.selectbox("Task to label", names, key="review_task_choice", format_func=task_title,
                        help="The item was queued for the task preselected here; you may correct any other.")
    spec = task_file.by_name(task)
    answer = prediction.tasks.get(task) if prediction is not None else None
    if spec.kind == "classification":
        _class_editor(spec, answer)
    elif spec.kind == "regression":
        _regression_editor(spec, answer)
    else:
        _span_editor(spec, answer, entry.text)
    accept_value = rs.model_value(answer) if answer is not None else None
    cols = st.columns([1.1, 1.7, 0.8, 0.9])
    cols[0].button("Save label", key="review_save", type="primary", icon=":material/check:",
                   on_click=_act, args=(sessions, entry, spec, annotator, "label", None))
    cols[1].button("Accept model answer", key="review_accept", disabled=answer is None, icon=":material/done_all:",
                   on_click=_act, args=(sessions, entry, spec, annotator, "accept", accept_value))
    cols[2].button("Skip", key="review_skip", icon=":material/skip_next:",
                   on_click=_act, args=(sessions, entry, spec, annotator, "skip", None))
    cols[3].button("Undo", key="review_undo", icon=":material/undo:", on_click=_undo, args=(sessions, annotator))
    if task != entry.task and entry.task is not None:
        st.caption(f"This item asks about {task_title(entry.task)}: saving {task_title(task)} records that "
                   f"label too, and the item stays until {task_title(entry.task)} is labelled or skipped.")


def _default(key: str, value) -> None:
    """Start a widget from `value` through session state: unlike a default argument, this also resets what
    the browser shows when a new item reuses the widget's key."""
    if key not in st.session_state:
        st.session_state[key] = value


def _class_editor(spec: TaskSpec, answer) -> None:
    known = isinstance(answer, ClassPrediction) and answer.label in spec.labels
    _default(f"review_value_{spec.name}", answer.label if known else spec.labels[0])
    st.radio(f"{task_title(spec.name)}: correct class", spec.labels, horizontal=True, key=f"review_value_{spec.name}")


def _regression_editor(spec: TaskSpec, answer) -> None:
    lo, hi = (float(v) for v in spec.value_range)
    start = answer.value if isinstance(answer, RegressionPrediction) else (lo + hi) / 2
    _default(f"review_value_{spec.name}", min(hi, max(lo, round(float(start), 1))))
    st.slider(f"{task_title(spec.name)}: correct value ({lo:g} to {hi:g})", min_value=lo, max_value=hi,
              step=0.1, key=f"review_value_{spec.name}")


def _span_editor(spec: TaskSpec, answer, text: str) -> None:
    key = f"review_spans_{spec.name}"
    if key not in st.session_state:
        st.session_state[key] = rs.model_value(answer) if isinstance(answer, TokenPrediction) else []
    spans: list[dict] = st.session_state[key]
    colors = entity_colors(list(spec.labels))
    shown = [Span(s["start"], s["end"], s["label"], text[s["start"]:s["end"]], 1.0) for s in spans]
    st.markdown(ner_html(text, shown, colors), unsafe_allow_html=True)  # escaped inside ner_html
    st.caption(f"{task_title(spec.name)}: {len(spans)} span(s) in your answer")
    for i, span in enumerate(spans):
        left, right = st.columns([5, 1], vertical_alignment="center")
        left.text(f"{text[span['start']:span['end']]}  [{span['label']}]  chars {span['start']}-{span['end']}")
        right.button("Remove", key=f"review_ner_remove_{i}", on_click=_remove_span, args=(spec.name, i))
    words = rs.words_of(text)
    a, b, c = st.columns([4, 2, 1], vertical_alignment="bottom")
    a.multiselect("Words of the new span (neighbours only)", list(range(len(words))), key="review_ner_words",
                  format_func=lambda i: f"{i}: {words[i].text}")
    b.selectbox("Entity type", spec.labels, key="review_ner_type")
    c.button("Add span", key="review_ner_add", on_click=_add_span, args=(spec.name, text))
    with st.expander("Words and character offsets", key="review_ner_words_table"):
        st.dataframe(pd.DataFrame([{"#": w.index, "word": w.text, "start": w.start, "end": w.end} for w in words]),
                     hide_index=True, key="review_ner_offsets")


def _add_span(task: str, text: str) -> None:
    key = f"review_spans_{task}"
    try:
        span = rs.span_from_words(rs.words_of(text), list(st.session_state.get("review_ner_words") or []),
                                  st.session_state.get("review_ner_type"))
        st.session_state[key] = rs.add_span(list(st.session_state.get(key, [])), span)
    except ValueError as exc:
        _flash("error", f"Span not added: {exc}")
        return
    st.session_state["review_ner_words"] = []


def _remove_span(task: str, index: int) -> None:
    key = f"review_spans_{task}"
    spans = list(st.session_state.get(key, []))
    if 0 <= index < len(spans):
        del spans[index]
    st.session_state[key] = spans


def _act(sessions, entry: QueueEntry, spec: TaskSpec, annotator: str, kind: str, accept_value) -> None:
    """Button callback: append one event, then the page shows the next item."""
    if not auth_view.acting_as(annotator):
        _flash("error", auth_view.denied_message("annotate"))
        return
    task = spec.name
    if kind == "skip":
        task, value = entry.task or spec.name, None
    elif kind == "accept":
        value = accept_value
    elif spec.kind == "token_classification":
        value = st.session_state.get(f"review_spans_{task}", [])
    else:
        value = st.session_state.get(f"review_value_{task}")
    try:
        if kind != "skip":
            value = rs.check_value(spec, value, entry.text)
        rs.record(sessions, entry.text_id, task, value, annotator, kind, entry.reason)
    except ValueError as exc:
        _flash("error", f"Not saved: {exc}")
        return
    st.session_state.pop(PIN, None)
    what = {"label": "Saved", "accept": "Accepted the model's answer for", "skip": "Skipped"}[kind]
    shown = "" if kind == "skip" else f" = {rs.format_value(value)}" if spec.kind != "token_classification" \
        else f" ({len(value)} span(s))"
    _flash("success", f"{what} {task_title(task)}{shown}.")


def _undo(sessions, annotator: str) -> None:
    if not auth_view.acting_as(annotator):
        _flash("error", auth_view.denied_message("annotate"))
        return
    undone = rs.undo(sessions, annotator)
    if undone is None:
        _flash("info", "Nothing of yours left to undo.")
        return
    st.session_state[PIN] = (undone.text_id, undone.task)
    st.session_state.pop(ITEM, None)  # the editors start again from the model's answers
    _flash("info", f"Undid your {undone.kind} on {task_title(undone.task)}: the item is back.")


# ---------------------------------------------------------------- pools and scoring jobs


def render_pools(sessions, home: str, predictor: Predictor | None, version: str | None) -> None:
    if predictor is None:
        st.info("Scoring a pool needs a trained model: `python -m mtl_core train --quick`.")
        _render_job(sessions, home)
        return
    kind = st.radio("Pool", list(POOL_TITLES), format_func=POOL_TITLES.get, horizontal=True,
                    key="review_pool_kind")
    pool, upload = None, None
    if kind == "predict":
        n = rs.pool_size(sessions, rs.PREDICT_POOL)
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
        if upload is not None:
            pool, n = rs.store_upload(sessions, *upload)
            st.caption(f"Stored {n:,} distinct text(s) as pool {pool}.")
        try:
            st.session_state[JOB] = rs.start_scoring(sessions, home, pool, version, int(limit), previous)
        except worker.JobBusy as exc:
            st.warning(f"A scoring job is already running: wait for it or cancel it below. ({exc})")
    _render_job(sessions, home)


def _upload_texts() -> tuple[str, list[str]] | None:
    up = st.file_uploader("CSV, TSV or JSONL with a text column (no labels needed)",
                          type=["csv", "tsv", "jsonl", "ndjson", "json"], key="review_pool_upload")
    if up is None:
        return None
    parsed = batch.read_upload(up.name, up.getvalue())
    for problem in parsed.problems:
        st.warning(problem)
    if parsed.frame is None:
        return None
    columns = batch.text_columns(parsed.frame)
    if not columns:
        st.error("No column with text was found.")
        return None
    column = st.selectbox("Text column", columns, key="review_pool_column")
    _rows, texts, problems = batch.texts_from(parsed.frame, column)
    for problem in problems:
        st.warning(problem)
    st.caption(f"{len(texts):,} text(s) in {up.name}.")
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


def _render_job(sessions, home: str) -> None:
    view = rs.job_view(sessions, st.session_state.get(JOB))
    if view is None:
        return
    if view.active:
        _live_job(sessions, home, view.id)
    else:
        _job_summary(view)


@st.fragment(run_every=2)
def _live_job(sessions, home: str, job_id: int) -> None:
    """Polls the job row every 2 s while it runs; a full rerun when it ends refreshes the queue."""
    view = rs.job_view(sessions, job_id)
    if view is None or not view.active:
        st.rerun()
    _job_summary(view)
    st.button("Cancel scoring", key="review_cancel_job", icon=":material/stop:",
              on_click=_cancel, args=(job_id, home))


def _cancel(job_id: int, home: str) -> None:
    worker.request_cancel(job_id, home)
    _flash("info", f"Cancelling job {job_id}: it stops after the current batch; what it scored stays queued.")


def _job_summary(view: rs.JobView) -> None:
    pool = view.params.get("pool", "?")
    with st.container(border=True, key="review_job_box"):
        st.markdown(f"**Scoring job {view.id}** · pool `{pool}` · {view.status}")
        step = f"{view.step:,} / {view.total:,}" if view.step is not None and view.total else ""
        st.progress(min(1.0, view.progress), text=" · ".join(x for x in (step, view.message or "") if x))
        result = view.result or {}
        if view.status == "done" and result:
            reasons = ", ".join(f"{REASON_TITLES.get(r, r).lower()} {n:,}" for r, n in result.get("by_reason", {}).items())
            st.success(f"Scored {result.get('texts', 0):,} texts with {result.get('model_version')} in "
                       f"{result.get('seconds', 0):.0f} s ({result.get('texts_per_s') or 0:.0f} texts/s): "
                       f"{result.get('queued', 0):,} queue items ({reasons or 'none'}), "
                       f"{result.get('annotator_conflicts', 0)} annotator conflict(s).")
        elif view.status == "failed":
            st.error(f"Scoring failed: {view.message}")
        elif view.status == "cancelled":
            st.warning("Scoring was cancelled; items queued before that stay in the queue.")


# ---------------------------------------------------------------- agreement


def render_agreement(sessions, annotator: str | None, task_file: TaskFile) -> None:
    st.markdown("**Cohen's kappa between annotators** (texts both labelled; 1 = perfect, 0 = chance)")
    rows = rs.kappa_table(sessions, [t.name for t in task_file.tasks])
    if rows:
        table = pd.DataFrame([{"task": r.task, "annotator A": r.annotator_a, "annotator B": r.annotator_b,
                               "shared texts": r.shared, "kappa": round(r.kappa, 3)} for r in rows])
        st.dataframe(table, hide_index=True, key="review_kappa_table")
    else:
        st.caption("Needs two annotators who labelled the same texts.")
    st.markdown("**Adjudication**: pick the final label where annotators disagree")
    names = [t.name for t in task_file.tasks]
    task = st.selectbox("Task", names, key="review_adj_task", format_func=task_title)
    spec = task_file.by_name(task)
    conflicts = rs.open_conflicts(sessions, spec)
    if not conflicts:
        st.caption(f"No open conflicts for {task_title(task)}.")
        return
    if not auth_view.allowed("adjudicate"):
        auth_view.denied_note("adjudicate")
        annotator = None
    elif not annotator:
        st.caption("Enter your name (top of the page) to record final labels.")
    for conflict in conflicts[:20]:
        _conflict_card(sessions, conflict, annotator)


def _conflict_card(sessions, conflict: rs.OpenConflict, annotator: str | None) -> None:
    with st.container(border=True, key=f"review_adj_box_{conflict.task}_{conflict.text_id}"):
        st.markdown(f'<div class="mtl-review-text" style="white-space:pre-wrap">{esc_text(conflict.text)}</div>',
                    unsafe_allow_html=True)
        st.dataframe(pd.DataFrame([{"annotator": who, "label": rs.format_value(v, conflict.text)}
                                   for who, v in sorted(conflict.values.items())]),
                     hide_index=True, key=f"review_adj_table_{conflict.task}_{conflict.text_id}")
        options = conflict.options
        pick_key = f"review_adj_pick_{conflict.task}_{conflict.text_id}"
        st.radio("Final label", list(range(len(options))), key=pick_key, horizontal=True,
                 format_func=lambda i: rs.format_value(options[i], conflict.text))
        st.button("Record final label", key=f"review_adj_save_{conflict.task}_{conflict.text_id}",
                  disabled=not annotator, on_click=_adjudicate, args=(sessions, conflict, pick_key, annotator))


def _adjudicate(sessions, conflict: rs.OpenConflict, pick_key: str, annotator: str) -> None:
    if not auth_view.acting_as(annotator, "adjudicate"):
        _flash("error", auth_view.denied_message("adjudicate"))
        return
    value = conflict.options[int(st.session_state.get(pick_key) or 0)]
    rs.adjudicate(sessions, conflict.text_id, conflict.task, value, annotator)
    _flash("success", f"Final {task_title(conflict.task)} label recorded (adjudication by you).")


# ---------------------------------------------------------------- export / import


def render_exchange(sessions, task_file: TaskFile) -> None:
    st.markdown("**Export** every annotation event (labels, accepts, skips, undos) with its annotator and time.")
    cols = st.columns(3)
    cols[0].download_button("Annotations (JSONL)", data=lambda: rs.export_jsonl_bytes(sessions),
                            file_name="annotations.jsonl", mime="application/jsonl", key="review_export_jsonl",
                            on_click="ignore", icon=":material/download:")
    for i, spec in enumerate(t for t in task_file.tasks if t.kind == "token_classification"):
        cols[(i + 1) % 3].download_button(
            f"{task_title(spec.name)} spans (CoNLL)", data=lambda name=spec.name: rs.export_conll_bytes(sessions, name),
            file_name=f"{spec.name}.conll", mime="text/plain", key=f"review_export_conll_{spec.name}",
            on_click="ignore", icon=":material/download:")
    st.markdown("**Import** an annotation export: events already here are recognised and not added twice.")
    up = st.file_uploader("JSONL export", type=["jsonl", "ndjson", "json"], key="review_import_file")
    may_import = auth_view.allowed("import_annotations")
    if not may_import:
        auth_view.denied_note("import_annotations")
    if st.button("Import annotations", key="review_import_button", disabled=up is None or not may_import,
                 icon=":material/upload:") and auth_view.allowed("import_annotations"):
        try:
            new, total = rs.import_jsonl_bytes(sessions, up.getvalue())
        except (ValueError, KeyError, UnicodeDecodeError) as exc:
            st.error(f"Import failed, nothing was added: {exc}")
        else:
            st.success(f"Imported {new:,} new event(s); {total - new:,} of {total:,} were already here.")
