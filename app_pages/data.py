"""Data: the tasks the model answers (from its task file). Dataset browsing comes later."""

import pandas as pd
import streamlit as st

from app.shared import services
from app.shared.auth_view import page_guard
from mtl_core.serve.predictor import NoModelError
from mtl_core.tasks import load_task_file

page_guard()  # team mode: the sign-in form instead of the page until someone signs in
st.title("Data")
try:
    predictor, version = services.current_predictor()
    task_file, source = predictor.task_file, f"model {predictor.version}"
except NoModelError:
    task_file, source = load_task_file(), "the default task file (no model trained yet)"

rows = [{
    "task": t.name,
    "kind": t.kind,
    "labels": ", ".join(t.labels) if t.labels else f"{t.value_range[0]:g} … {t.value_range[1]:g}",
    "source": t.source.loader if t.source else "",
} for t in task_file.tasks]
st.caption(f"Tasks from {source}.")
st.dataframe(pd.DataFrame(rows), hide_index=True, key="data_tasks")
st.info("Browsing and editing the training data — coming soon.", icon=":material/construction:")
