"""Review page, tab "Import / export": download the annotation log (JSONL, CoNLL), import an export."""

from __future__ import annotations

import streamlit as st

from app.components.results import task_title
from app.components.text import md_literal
from app.review import exchange_service as exchange
from app.shared import auth_view
from app.shared.upload_view import failure_message
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
            f"{md_literal(task_title(spec.name))} spans (CoNLL)", data=lambda name=spec.name: exchange.export_conll_bytes(sessions, name),
            file_name=f"{spec.name}.conll", mime="text/plain", key=f"review_export_conll_{spec.name}",
            on_click="ignore", icon=":material/download:")
    _final_labels(sessions, task_file)
    st.markdown("**Import** an annotation export: events already here are recognised and not added twice.")
    if auth_view.team_mode():
        st.caption("Team mode: imported events are recorded under your name, the file's annotator is kept as "
                   "their source.")
    up = st.file_uploader("JSONL export", type=["jsonl", "ndjson", "json"], key="review_import_file")
    may_import = auth_view.allowed("import_annotations")
    if not may_import:
        auth_view.denied_note("import_annotations")
    if st.button("Import annotations", key="review_import_button", disabled=up is None or not may_import,
                 icon=":material/upload:") and auth_view.allowed("import_annotations"):
        try:
            user = auth_view.current_user() if auth_view.team_mode() else None
            importer = user[0] if user else None
            new, total = exchange.import_jsonl_bytes(sessions, up.getvalue(), task_file, importer)
        except (ValueError, KeyError, UnicodeDecodeError) as exc:
            st.error(f"Import failed, nothing was added: {md_literal(exc)}")  # quotes the file's values
        except Exception as exc:  # anything else: a plain message here, the traceback in the server log
            st.error(md_literal(failure_message(f"Importing {up.name}", exc)))
        else:
            st.success(f"Imported {new:,} new event(s); {total - new:,} of {total:,} were already here.")


def _final_labels(sessions: Sessions, task_file: TaskFile) -> None:
    st.markdown("**Final labels**: one row per text and task, after undo and adjudication (what to train on). "
                "Status: adjudicated, single, agreed, majority, mean (numbers) or conflict (a tie: no label yet).")
    left, mid, right = st.columns([2, 1, 1], vertical_alignment="bottom")
    task = left.selectbox("Task", [t.name for t in task_file.tasks], key="review_final_task", format_func=task_title)
    mid.download_button("Final labels (CSV)", data=lambda: exchange.final_labels_csv(sessions, task),
                        file_name=f"{task}-final-labels.csv", mime="text/csv", key="review_final_csv",
                        on_click="ignore", icon=":material/download:")
    right.download_button("Final labels (JSONL)", data=lambda: exchange.final_labels_jsonl(sessions, task),
                          file_name=f"{task}-final-labels.jsonl", mime="application/jsonl", key="review_final_jsonl",
                          on_click="ignore", icon=":material/download:")
