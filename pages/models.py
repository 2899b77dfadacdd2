"""Models: every version with its lineage, data and metrics; roll back to any of them."""

import streamlit as st

from app.models_view import render_page

st.title("Models")
render_page()
