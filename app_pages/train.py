"""Train: fine-tune the active model on the corrections, follow the round, compare and promote."""

import streamlit as st

from app.shared.auth_view import page_guard
from app.train.view import render_page

page_guard()  # team mode: the sign-in form instead of the page until someone signs in
st.title("Train")
render_page()
