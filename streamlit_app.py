"""MTL Studio entry point: `streamlit run streamlit_app.py`."""

import streamlit as st

from app.shared import auth_view, bootstrap_service
from app.shared.store_service import get_sessions

st.set_page_config(page_title="MTL Studio", page_icon=":material/hub:", layout="wide")

PAGES = [
    st.Page("app_pages/predict.py", title="Predict", icon=":material/psychology:", default=True),
    st.Page("app_pages/review.py", title="Review", icon=":material/rate_review:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/lab.py", title="Lab", icon=":material/science:"),
    st.Page("app_pages/models.py", title="Models", icon=":material/inventory_2:"),
    st.Page("app_pages/data.py", title="Data", icon=":material/table_view:"),
]

if auth_view.gate():  # single-user mode, or a signed-in team member
    bootstrap_service.start_if_needed(get_sessions())  # no model yet: the first one trains in the background
    st.navigation(PAGES).run()
else:  # team mode, nobody signed in: the sign-in form is the only page, whatever the URL asks for
    st.navigation([st.Page(auth_view.render_login, title="Sign in", icon=":material/login:", url_path="login")],
                  position="hidden").run()
