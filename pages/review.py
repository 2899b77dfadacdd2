"""Review: filled in by later work; a placeholder keeps the navigation complete."""

import streamlit as st

st.title("Review")
st.info("Review corrections and disagreements in the queue — coming soon.", icon=":material/construction:")
