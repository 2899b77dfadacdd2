"""Models: filled in by later work; a placeholder keeps the navigation complete."""

import streamlit as st

st.title("Models")
st.info("Compare, promote and roll back model versions — coming soon.", icon=":material/construction:")
