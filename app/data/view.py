"""Data page: the tasks the model answers (from its task file) and browsing their data, one tab each."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.components.text import md_literal
from app.data.browse_view import render_browse
from app.data.new_task_view import render_new_task
from app.data.source import DataSource, data_source
from app.shared import services
from mtl_core.data.workspace_tasks import new_tasks
from mtl_core.tasks import TaskFile, TaskFileError


def tasks_frame(task_file: TaskFile) -> pd.DataFrame:
    """One row per task: name, kind, labels (or the value range of a regression), loader of its data."""
    return pd.DataFrame([{
        "task": t.name,
        "kind": t.kind,
        "labels": ", ".join(t.labels) if t.labels else f"{t.value_range[0]:g} … {t.value_range[1]:g}",
        "source": t.source.loader if t.source else "",
    } for t in task_file.tasks])


def render_tasks(src: DataSource) -> None:
    st.dataframe(tasks_frame(src.task_file), hide_index=True, key="data_tasks")
    fresh = _new_tasks(src)
    if fresh:
        st.markdown("**New tasks** (few-shot heads until a training round joins them to the shared model)")
        st.dataframe(tasks_frame(TaskFile(fresh)), hide_index=True, key="data_new_tasks")


def _new_tasks(src: DataSource) -> list:
    if src.predictor is None:
        return []
    try:
        return new_tasks(services.workspace_tasks(src.home, src.predictor.task_file), src.predictor.task_file)
    except TaskFileError as exc:
        st.warning(f"The workspace's task file could not be read, so new tasks are not shown: {md_literal(exc)}")
        return []


# Tab title -> its renderer, called with the DataSource (a renderer without arguments: `lambda _: render()`).
# Lazy tabs: only the open one runs, so a closed Browse tab never loads data or runs the model.
SECTIONS = {"Tasks": render_tasks, "Browse": render_browse, "New task": lambda _: render_new_task()}


def render_data_page() -> None:
    """The tasks of the active model's task file (or of the default task file when no model is trained yet),
    one tab per section."""
    src = data_source()
    st.caption(f"Tasks from {md_literal(src.label)}.")
    for tab, render in zip(st.tabs(list(SECTIONS), key="data_tabs", on_change="rerun"), SECTIONS.values()):
        if tab.open:
            with tab:
                render(src)
