"""AppTest helpers shared by the page tests: open a page the way the app does, read its visible text."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.helpers import ROOT

TEXT_KINDS = ("markdown", "caption", "info", "warning", "error", "success", "subheader")


def open_page(page: str, timeout: float = 60) -> AppTest:
    """The app's entry point, then `page` (e.g. "app_pages/train.py") through st.navigation."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=timeout)
    at.run()
    return at.switch_page(page).run()


def page_texts(at: AppTest) -> str:
    """Every text element's value, one per line, with Markdown's backslash escapes removed."""
    return "\n".join(str(e.value) for kind in TEXT_KINDS for e in getattr(at, kind)).replace("\\", "")
