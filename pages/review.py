"""Review: label what the model is unsure or wrong about, keep every correction (see docs/REVIEW.md)."""

import streamlit as st

from app.review_view import render_review_page

st.title("Review")
render_review_page()
