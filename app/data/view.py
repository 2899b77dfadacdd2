"""Data page: the tasks the model answers (from its task file). Dataset browsing comes later."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.components.text import md_literal
from app.shared import services
from mtl_core.serve.predictor import NoModelError
from mtl_core.tasks import TaskFile, load_task_file


def tasks_frame(task_file: TaskFile) -> pd.DataFrame:
    """One row per task: name, kind, labels (or the value range of a regression), loader of its data."""
    return pd.DataFrame([{
        "task": t.name,
        "kind": t.kind,
        "labels": ", ".join(t.labels) if t.labels else f"{t.value_range[0]:g} … {t.value_range[1]:g}",
        "source": t.source.loader if t.source else "",
    } for t in task_file.tasks])


def render_data_page() -> None:
    """The tasks of the active model's task file, or of the default task file when no model is trained yet."""
    try:
        predictor, _ = services.current_predictor()
        task_file, source = predictor.task_file, f"model {predictor.version}"
    except NoModelError:
        task_file, source = load_task_file(), "the default task file (no model trained yet)"
    st.caption(f"Tasks from {md_literal(source)}.")
    st.dataframe(tasks_frame(task_file), hide_index=True, key="data_tasks")
    st.info("Browsing and editing the training data — coming soon.", icon=":material/construction:")
