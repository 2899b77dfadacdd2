"""The Review page in a real headless Chromium: name, one correction, the event lands in the database.

Reuses the server and driver helpers of scripts/screenshot_predict.py (as tests/test_browser.py does).
"""

from __future__ import annotations

import time

import pytest

from mtl_core.store.db import open_store
from tests.helpers import ROOT

pytestmark = pytest.mark.browser

TEXT = "Tom Hanks flew to Paris <img src=x onerror=alert(1)> and loved it"
NEXT = "Is the new Apple store in London open on Sundays?"  # shown after the correction


def _seed(home) -> int:
    from mtl_core.store import add_texts, upsert_queue_items

    engine, sessions = open_store(home)
    with sessions() as s:
        text_id, next_id = add_texts(s, [TEXT, NEXT], source="predict")
        upsert_queue_items(s, [{"text_id": text_id, "task": "sentiment", "reason": "uncertain", "score": 0.9,
                                "detail": "sentiment: seeded for the browser test"},
                               {"text_id": next_id, "task": "question_type", "reason": "uncertain", "score": 0.5,
                                "detail": "question_type: seeded for the browser test"}],
                           pool="predict", model_version="v0001")
    engine.dispose()
    return text_id


def _events(home, text_id: int) -> list[tuple[str, str, object, str]]:
    from mtl_core.store import history

    engine, sessions = open_store(home)
    with sessions() as s:
        out = [(e.kind, e.task, e.value, e.annotator) for e in history(s, text_id)]
    engine.dispose()
    return out


def test_review_correction_in_chromium(flow, workspace, served_app):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    text_id = _seed(workspace)
    driver = served_app.driver
    wait = WebDriverWait(driver, 90)
    driver.get(f"{served_app.url}/review")
    name = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".st-key-review_annotator_input input")))
    name.send_keys("alice", Keys.ENTER)
    shown = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "div.mtl-review-text")))
    assert shown.text == TEXT  # the literal text, not markup
    # one click: the class, saved, next item (the button's key ends with the drawn item's token)
    wait.until(ec.element_to_be_clickable(
        (By.XPATH, "//div[contains(@class,'st-key-review_class_')]//button[contains(., 'negative')]"))).click()
    deadline = time.time() + 30
    while time.time() < deadline and not _events(workspace, text_id):
        time.sleep(0.3)
    wait.until(ec.visibility_of_element_located(
        (By.XPATH, "//div[contains(@class,'mtl-review-text')][contains(., 'Apple store')]")))
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'))
    time.sleep(1.0)
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    driver.save_screenshot(str(artifacts / "review.png"))
    assert _events(workspace, text_id) == [("label", "sentiment", "negative", "alice")]
    assert driver.execute_script("return window.__mtlAlerts || []") == []
    assert driver.execute_script("return document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert not flow.alert_open(driver)
