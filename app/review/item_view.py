"""Review page: one queue item: its text, why it was queued (and what the score means), the model's answer
beside the data set's label, the editor, the action buttons; the next item's prediction is prefetched.

User text reaches the page escaped (`esc_text`, `ner_html`, `md_literal`) or through plain-text elements.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
import streamlit as st

from app.components.html import entity_colors, ner_html, review_text_html
from app.components.results import render_results
from app.components.text import md_literal
from app.review import action_service as acts
from app.review import service as rs
from app.review.actions_view import Click, render_actions, render_shown_token
from app.review.bulk_view import render_bulk
from app.review.common import REASON_COLORS, REASON_TITLES, SCORE_HELP
from app.review.editor_view import render_editor, render_task_choice
from app.shared import services
from mtl_core.review.queue import confidence
from mtl_core.serve.predictor import Predictor
from mtl_core.store import QueueEntry
from mtl_core.store.db import Sessions
from mtl_core.tasks import TaskFile, TaskSpec
from mtl_core.types import ClassPrediction, Prediction, Span, TokenPrediction

UNSURE_BELOW = rs.UNSURE_BELOW
PREFETCH_ENV = "MTL_STUDIO_REVIEW_PREFETCH"  # "0": no prefetch of the next item (bench/system/review_latency.py)


def prediction_for(sessions: Sessions, entry: QueueEntry, predictor: Predictor | None, version: str | None
                   ) -> Prediction | None:
    if predictor is not None and version is not None:
        try:
            return services.predict_one(predictor, version, entry.text)[0]
        except ValueError as exc:
            st.error(md_literal(exc))
            return None
    return rs.stored_prediction(sessions, entry)


def render_item(sessions: Sessions, entry: QueueEntry, annotator: str, predictor: Predictor | None,
                version: str | None, task_file: TaskFile, following: QueueEntry | None) -> None:
    with st.container(border=True, key="review_item_box"):
        st.markdown(review_text_html(entry.text, large=True), unsafe_allow_html=True)
        st.badge(md_literal(REASON_TITLES.get(entry.reason, entry.reason)), color=REASON_COLORS.get(entry.reason, "gray"))
        where = [f"task {entry.task or 'any'}"] + ([f"queued by model {entry.model_version}"] if entry.model_version else [])
        st.caption(f"Score {entry.score:.2f} (higher = shown first) · {md_literal(' · '.join(where))}")
        if entry.reason in SCORE_HELP:
            st.caption(f"The score measures {SCORE_HELP[entry.reason]}.")
        st.text(entry.detail)  # plain text: details quote user text (entity spans)
    prediction = prediction_for(sessions, entry, predictor, version)
    spec = render_task_choice(entry, task_file)
    answer = prediction.tasks.get(spec.name) if prediction is not None else None
    gold = acts.dataset_label(sessions, entry.text_id, spec.name)
    render_comparison(spec, entry.text, answer, gold)
    render_editor(spec, entry, answer, gold)
    members = render_bulk(sessions, predictor, version, entry, annotator, spec)
    click = Click(sessions, acts.draw(sessions, entry, annotator), annotator, spec, entry.reason, entry.text,
                  tuple((m.entry.text_id, m.entry.reason) for m in members))
    render_shown_token(click.token)  # after everything a click acts on, before the buttons
    model_label = answer.label if isinstance(answer, ClassPrediction) else None
    render_actions(click, rs.model_value(answer) if answer is not None else None, gold,
                   acts.undo_target(sessions, annotator), model_label)
    if following is not None and predictor is not None and version is not None and os.environ.get(PREFETCH_ENV) != "0":
        services.prefetch(predictor, version, following.text)
    _details(sessions, entry, predictor, version, prediction, task_file)


def render_comparison(spec: TaskSpec, text: str, answer, gold: Any) -> None:
    """The model's answer, and the data set's label as prominently beside it when the text has one."""
    cols = st.columns(2 if gold is not None else 1)
    with cols[0].container(border=True, key="review_model_answer"):
        st.markdown("**Model says**")
        _show_value(spec, text, answer, None)
    if gold is not None:
        with cols[1].container(border=True, key="review_gold_answer"):
            st.markdown("**Data set says**")
            _show_value(spec, text, None, gold)


def _show_value(spec: TaskSpec, text: str, answer, value: Any) -> None:
    colors = entity_colors(list(spec.labels))
    if spec.kind == "token_classification":
        if answer is not None:
            spans = answer.spans if isinstance(answer, TokenPrediction) else []
            st.markdown(ner_html(text, spans, colors, unsure_below=UNSURE_BELOW), unsafe_allow_html=True)
            if any(s.score < UNSURE_BELOW for s in spans):
                st.caption(f"Dashed outline and “?”: confidence below {UNSURE_BELOW:.0%}.")
        else:
            shown = [Span(s["start"], s["end"], s["label"], text[s["start"]:s["end"]], 1.0) for s in value or []]
            st.markdown(ner_html(text, shown, colors), unsafe_allow_html=True)
        return
    if answer is None and value is None:
        st.caption("No answer stored for this task.")
        return
    shown = rs.format_value(value if answer is None else rs.model_value(answer), kind=spec.kind)
    sure = confidence(answer) if answer is not None else None
    st.markdown(f"### {md_literal(shown)}")
    if sure is not None:
        st.caption(f"confidence {sure:.0%}" + (" · unsure" if sure < UNSURE_BELOW else ""))


def _details(sessions: Sessions, entry: QueueEntry, predictor: Predictor | None, version: str | None,
             prediction: Prediction | None, task_file: TaskFile) -> None:
    """Every task's answers, the explain panel and the event log: collapsed and drawn only when opened."""
    if prediction is not None:
        shown = "active model " + version if predictor is not None else f"stored answers of {entry.model_version}"
        panel = st.expander(f"Model answers for every task ({md_literal(shown)})", key="review_answers",
                            on_change="rerun")
        if panel.open:
            with panel:
                entity_types = {t.name: list(t.labels) for t in task_file.tasks if t.kind == "token_classification"}
                render_results(prediction, entity_types, UNSURE_BELOW)
    if predictor is not None and prediction is not None and prediction.attentions is not None:
        from app.predict.view import render_explain

        render_explain(predictor, version, prediction)
    log_panel = st.expander("Event log of this text", key="review_log_expander", on_change="rerun")
    if log_panel.open:
        with log_panel:
            log = rs.event_log(sessions, entry.text_id)
            if log:
                st.dataframe(pd.DataFrame([vars(r) for r in log]), hide_index=True, key="review_event_log")
            else:
                st.caption("No labels yet.")
