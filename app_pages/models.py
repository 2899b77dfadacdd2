"""Models: every version with its lineage, data and metrics; roll back to any of them."""

import streamlit as st

from app.models.view import render_page
from app.shared.auth_view import page_guard

page_guard()  # team mode: the sign-in form instead of the page until someone signs in
st.title("Models")
render_page()
