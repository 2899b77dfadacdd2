"""Predict: every task for one text (with explanations) or for a whole file."""

import streamlit as st

from app.predict.batch_view import render_batch
from app.predict.view import load_predictor_or_explain, render_explain, render_single, render_status
from app.shared.auth_view import page_guard

page_guard()  # team mode: the sign-in form instead of the page until someone signs in
st.title("Predict")
threshold = st.sidebar.slider("Flag as unsure below confidence", 0.0, 1.0, 0.6, 0.05, key="unsure_threshold")
status = st.sidebar.container()  # filled last, so it shows this run's latency

loaded = load_predictor_or_explain()
if loaded is None:
    st.stop()
predictor, version = loaded

single, many = st.tabs(["Single text", "Batch file"], key="predict_tabs")
with single:
    prediction = render_single(predictor, version, threshold)
    if prediction is not None:
        render_explain(predictor, version, prediction)
with many:
    render_batch(predictor, version)
render_status(predictor, status)
