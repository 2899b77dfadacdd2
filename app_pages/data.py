"""Data: the tasks the model answers (from its task file) and browsing their data."""

import streamlit as st

from app.data.view import render_data_page
from app.shared.auth_view import page_guard

page_guard()  # team mode: the sign-in form instead of the page until someone signs in
st.title("Data")
render_data_page()
