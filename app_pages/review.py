"""Review: label what the model is unsure or wrong about, keep every correction (see docs/REVIEW.md)."""

import streamlit as st

from app.review.view import render_review_page
from app.shared.auth_view import page_guard

page_guard()  # team mode: the sign-in form instead of the page until someone signs in
st.title("Review")
render_review_page()
