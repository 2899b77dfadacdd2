"""The Predict page in a real headless Chromium: hostile text is shown as text, every task renders, and the
lazy explain panel fills in only when clicked open (its tabs too)."""

from __future__ import annotations

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.browser

# short enough for the tiny test model's 64 tokens: the NER block must show all of it, literally
EVIL = ("Tom in Paris <img src=x onerror=alert(1)> <script>alert(2)</script> [a](javascript:alert(3)) "
        "<a href=javascript:alert(4)>b</a>")
NO_JS_LINKS = "return [...document.querySelectorAll('a')].filter(a => /^\\s*javascript:/i.test(a.href)).length"


def test_predict_page_in_chromium(flow, served_app):
    driver = served_app.driver
    shown = flow.predict_flow(driver, served_app.port, EVIL)
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    driver.save_screenshot(str(artifacts / "predict.png"))
    assert not flow.alert_open(driver)
    assert shown["alerts"] == []
    assert shown["injected_imgs"] == 0
    assert shown["ner_text"] == EVIL  # the literal text, not markup
    _open_explain_panel(driver)  # the saliency chips quote the hostile tokens too
    assert not flow.alert_open(driver)
    assert driver.execute_script("return window.__mtlAlerts || []") == []
    assert driver.execute_script("return document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert driver.execute_script(NO_JS_LINKS) == 0  # neither the markdown nor the HTML link became one


def _open_explain_panel(driver, timeout: float = 60) -> None:
    """The collapsed panel is empty; a click on it reruns and fills it; the Saliency tab likewise."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout)
    assert not driver.find_elements(By.XPATH, "//*[contains(text(), 'Hide [CLS]/[SEP]')]")
    driver.find_element(By.XPATH, "//summary[.//*[contains(text(), 'Explain this prediction')]]").click()
    wait.until(ec.visibility_of_element_located((By.XPATH, "//*[contains(text(), 'Hide [CLS]/[SEP]')]")))
    assert not driver.find_elements(By.XPATH, "//*[contains(text(), 'Attribution of')]")
    driver.find_element(By.XPATH, "//*[@role='tab'][normalize-space()='Saliency']").click()
    wait.until(ec.visibility_of_element_located((By.XPATH, "//*[contains(text(), 'Attribution of')]")))
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
