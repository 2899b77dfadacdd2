"""Train: filled in by later work; a placeholder keeps the navigation complete."""

import streamlit as st

st.title("Train")
st.info("Train or fine-tune a model version — coming soon.", icon=":material/construction:")
