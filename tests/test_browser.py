"""The Predict page in a real headless Chromium: hostile text is shown as text and every task renders."""

from __future__ import annotations

import pytest
from conftest import ROOT

pytestmark = pytest.mark.browser

EVIL = "Tom Hanks flew to Paris <img src=x onerror=alert(1)> and <script>alert(2)</script> loved it"


def test_predict_page_in_chromium(flow, workspace, tmp_path):
    port = flow.free_port()
    proc = flow.start_app(workspace, port, tmp_path / "streamlit.log")
    driver = None
    try:
        flow.wait_healthy(port, proc)
        driver = flow.make_driver(tmp_path / "profile")
        shown = flow.predict_flow(driver, port, EVIL)
        artifacts = ROOT / "artifacts"
        artifacts.mkdir(exist_ok=True)
        driver.save_screenshot(str(artifacts / "predict.png"))
        assert not flow.alert_open(driver)
        assert shown["alerts"] == []
        assert shown["injected_imgs"] == 0
        assert shown["ner_text"] == EVIL  # the literal text, not markup
    except Exception:
        print((tmp_path / "streamlit.log").read_text(errors="replace")[-4000:])
        raise
    finally:
        if driver is not None:
            driver.quit()
        flow.stop_app(proc)
