"""Review page: the annotator's own figures (labelled today, pace, skipped, agreement so far) and the list
of skipped items, each re-openable. The list is drawn only while its panel is open."""

from __future__ import annotations

import streamlit as st

from app.components.results import md_title
from app.review import action_service as acts
from app.review.common import ITEM, PIN
from mtl_core.store.db import Sessions


def render_panel(sessions: Sessions, annotator: str) -> None:
    f = acts.annotator_figures(sessions, annotator)
    st.caption(f"**You**: {f.labelled_today:,} labelled today · "
               + (f"{f.per_minute:.1f} items/min" if f.per_minute is not None else "pace —") + " · "
               + f"{f.skipped:,} skipped · "
               + (f"agreement {f.agreement:.0%} over {f.compared:,} shared label(s)" if f.agreement is not None
                  else "agreement: no shared labels yet"),
               help="Pace: over your latest 20 actions. Agreement: how often your current label matches another "
                    "annotator's on the same text and task.")
    # A constant label: the expander's identity includes it, and it must stay open while you label.
    panel = st.expander("Your skipped items", key="review_my_panel", on_change="rerun", icon=":material/person:")
    if not panel.open:
        return
    with panel:
        items = acts.skipped(sessions, annotator)
        if not items:
            st.caption("No skipped items. Skipped items are not done: they are listed here to re-open.")
            return
        st.markdown(f"**Skipped, not labelled yet** ({len(items):,})")
        for item in items[:50]:
            left, right = st.columns([6, 1], vertical_alignment="center")
            left.text(f"{item.task}: {item.text[:300]}")  # plain text: user text
            right.button("Re-open", key=f"review_reopen_{item.text_id}_{item.task}", on_click=reopen,
                         args=(item.text_id, item.task), help=f"Show this item again to label {md_title(item.task)}")


def reopen(text_id: int, task: str) -> None:
    """Button callback: the skipped item is shown next (as after an undo)."""
    st.session_state[PIN] = (text_id, task)
    st.session_state.pop(ITEM, None)
