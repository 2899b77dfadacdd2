"""Review page, tab "Agreement": Cohen's kappa between annotators and adjudication of their conflicts.

User text reaches the page escaped (`esc_text`, `md_literal`) or through plain-text elements, never as markup.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.components.html import review_text_html
from app.components.results import task_title
from app.components.text import md_literal
from app.review import agreement_service as agreement
from app.review import service as rs
from app.review.common import flash
from app.shared import auth_view
from mtl_core.store.db import Sessions
from mtl_core.tasks import TaskFile


def render_agreement(sessions: Sessions, annotator: str | None, task_file: TaskFile) -> None:
    st.markdown("**Cohen's kappa between annotators** (texts both labelled; 1 = perfect, 0 = chance)")
    rows = agreement.kappa_table(sessions, [t.name for t in task_file.tasks])
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
    conflicts = agreement.open_conflicts(sessions, spec)
    if not conflicts:
        st.caption(f"No open conflicts for {md_literal(task_title(task))}.")
        return
    if not auth_view.allowed("adjudicate"):
        auth_view.denied_note("adjudicate")
        annotator = None
    elif not annotator:
        st.caption("Enter your name (top of the page) to record final labels.")
    for conflict in conflicts[:20]:
        _conflict_card(sessions, conflict, annotator)


def _conflict_card(sessions: Sessions, conflict: agreement.OpenConflict, annotator: str | None) -> None:
    with st.container(border=True, key=f"review_adj_box_{conflict.task}_{conflict.text_id}"):
        st.markdown(review_text_html(conflict.text), unsafe_allow_html=True)
        st.dataframe(pd.DataFrame([{"annotator": who, "label": rs.format_value(v, conflict.text)}
                                   for who, v in sorted(conflict.values.items())]),
                     hide_index=True, key=f"review_adj_table_{conflict.task}_{conflict.text_id}")
        options = conflict.options
        pick_key = f"review_adj_pick_{conflict.task}_{conflict.text_id}"
        st.radio("Final label", list(range(len(options))), key=pick_key, horizontal=True,
                 format_func=lambda i: md_literal(rs.format_value(options[i], conflict.text)))
        st.button("Record final label", key=f"review_adj_save_{conflict.task}_{conflict.text_id}",
                  disabled=not annotator, on_click=_adjudicate, args=(sessions, conflict, pick_key, annotator))


def _adjudicate(sessions: Sessions, conflict: agreement.OpenConflict, pick_key: str, annotator: str) -> None:
    if not auth_view.acting_as(annotator, "adjudicate"):
        flash("error", auth_view.denied_message("adjudicate"))
        return
    value = conflict.options[int(st.session_state.get(pick_key) or 0)]
    agreement.adjudicate(sessions, conflict.text_id, conflict.task, value, annotator)
    flash("success", f"Final {task_title(conflict.task)} label recorded (adjudication by you).")
