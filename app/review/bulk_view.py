"""Review page: bulk labelling. With the toggle on, a label of the shown item also goes to the open queue
items of the same task whose text is near-identical (shared-encoder vectors); they are listed before the
buttons, so what a click labels is on the screen, and one Undo takes the whole action back."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.review import bulk_service as bulk
from mtl_core.review.similar import DEFAULT_THRESHOLD
from mtl_core.serve.predictor import Predictor
from mtl_core.store import QueueEntry
from mtl_core.store.db import Sessions
from mtl_core.tasks import TaskSpec


def render_bulk(sessions: Sessions, predictor: Predictor | None, version: str | None, entry: QueueEntry,
                annotator: str, spec: TaskSpec) -> list[bulk.Member]:
    """The bulk toggle and, when on, the near-identical items a label would also go to."""
    if predictor is None or version is None or spec.kind not in bulk.BULK_KINDS or spec.name != entry.task:
        return []
    left, right = st.columns([2, 1], vertical_alignment="center")
    on = left.toggle("Bulk: the same label for near-identical queued items", key="review_bulk_on",
                     persist_state="session", help="Compares the texts' shared-encoder vectors (cosine).")
    if not on:
        return []
    threshold = right.slider("Similarity at least", 0.80, 1.0, DEFAULT_THRESHOLD, 0.01, key="review_bulk_threshold",
                             persist_state="session")
    members = bulk.cluster(sessions, predictor, version, entry, annotator, float(threshold))
    if not members:
        st.caption("No other open item of this task is that similar: a label goes to this item only.")
        return []
    st.caption(f"A label also goes to these {len(members):,} near-identical item(s); one Undo takes it all back.")
    st.dataframe(pd.DataFrame([{"similarity": round(m.similarity, 3), "text": m.entry.text} for m in members]),
                 hide_index=True, key="review_bulk_members", height=min(36 * (len(members) + 1), 220))
    return members
