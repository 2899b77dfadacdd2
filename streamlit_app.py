"""MTL Studio entry point: `streamlit run streamlit_app.py`."""

import streamlit as st

st.set_page_config(page_title="MTL Studio", page_icon=":material/hub:", layout="wide")

PAGES = [
    st.Page("pages/predict.py", title="Predict", icon=":material/psychology:", default=True),
    st.Page("pages/review.py", title="Review", icon=":material/rate_review:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/models.py", title="Models", icon=":material/inventory_2:"),
    st.Page("pages/data.py", title="Data", icon=":material/table_view:"),
]

st.navigation(PAGES).run()
