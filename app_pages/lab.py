"""Lab: compare multi-task training strategies over seeds, see which tasks help each other, adopt a winner."""

import streamlit as st

from app.lab.view import render_page
from app.shared.auth_view import page_guard

page_guard()  # team mode: the sign-in form instead of the page until someone signs in
st.title("Lab")
render_page()
