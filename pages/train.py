"""Train: fine-tune the active model on the corrections, follow the round, compare and promote."""

import streamlit as st

from app.train_view import render_page

st.title("Train")
render_page()
