"""Models: every version with its lineage, data and metrics; roll back to any of them."""

import streamlit as st

from app.auth_view import page_guard
from app.models_view import render_page

page_guard()  # team mode: the sign-in form instead of the page until someone signs in
st.title("Models")
render_page()
