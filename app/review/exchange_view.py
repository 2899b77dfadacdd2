"""Review page, tab "Import / export": download the annotation log (JSONL, CoNLL), import an export."""

from __future__ import annotations

import streamlit as st

from app.components.results import task_title
from app.review import exchange_service as exchange
from app.shared import auth_view
from mtl_core.store.db import Sessions
from mtl_core.tasks import TaskFile


def render_exchange(sessions: Sessions, task_file: TaskFile) -> None:
    st.markdown("**Export** every annotation event (labels, accepts, skips, undos) with its annotator and time.")
    cols = st.columns(3)
    cols[0].download_button("Annotations (JSONL)", data=lambda: exchange.export_jsonl_bytes(sessions),
                            file_name="annotations.jsonl", mime="application/jsonl", key="review_export_jsonl",
                            on_click="ignore", icon=":material/download:")
    for i, spec in enumerate(t for t in task_file.tasks if t.kind == "token_classification"):
        cols[(i + 1) % 3].download_button(
            f"{task_title(spec.name)} spans (CoNLL)", data=lambda name=spec.name: exchange.export_conll_bytes(sessions, name),
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
            new, total = exchange.import_jsonl_bytes(sessions, up.getvalue())
        except (ValueError, KeyError, UnicodeDecodeError) as exc:
            st.error(f"Import failed, nothing was added: {exc}")
        else:
            st.success(f"Imported {new:,} new event(s); {total - new:,} of {total:,} were already here.")
