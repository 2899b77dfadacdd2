"""The Review page driven by the keyboard and the span picker in a real headless Chromium: one keystroke
labels a classification item, rapid keystrokes never label an item that was not on the screen, and a span
over two words is one drag plus one key."""

from __future__ import annotations

import time

import pytest

from mtl_core.store.db import open_store
from tests.app.test_browser_review_rapid import _check, _events, _open_queue, _seed, _settle, _shown

pytestmark = pytest.mark.browser

NER_TEXT = "Tom Hanks flew to New York <b>today</b>"


def _press(driver, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(key).perform()


def _focus_page(driver) -> None:
    """Keys typed into the name field are its text: give the focus to the page itself."""
    driver.execute_script("document.activeElement && document.activeElement.blur(); document.body.focus();")


def test_one_keystroke_labels_the_shown_item_and_rapid_keys_never_label_an_unseen_one(workspace, served_app):
    texts = _seed(workspace)
    driver, _ = _open_queue(served_app)
    _focus_page(driver)
    first = _shown(driver)
    _press(driver, "1")  # sentiment's first class: negative
    deadline = time.time() + 30
    while time.time() < deadline and _shown(driver) == first:
        time.sleep(0.1)
    _settle(driver)
    labelled = [(texts[t], kind) for t, kind, _ in _events(workspace)]
    assert labelled == [(first, "label")] and _shown(driver) != first  # one key: saved, next item
    seen = {first}
    for _ in range(5):
        seen.add(_shown(driver))
        _press(driver, "2")
        time.sleep(0.3)
    _settle(driver)
    _check(workspace, texts, seen | {_shown(driver)}, _shown(driver), "label")


def _seed_ner(home) -> int:
    from mtl_core.store import add_texts, upsert_queue_items

    engine, sessions = open_store(home)
    with sessions() as s:
        [text_id] = add_texts(s, [NER_TEXT], source="predict")
        upsert_queue_items(s, [{"text_id": text_id, "task": "ner", "reason": "uncertain", "score": 0.9,
                                "detail": "ner: seeded"}], pool="predict", model_version="v0001")
    engine.dispose()
    return text_id


def test_a_two_word_span_is_one_drag_and_one_key(workspace, served_app):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    text_id = _seed_ner(workspace)
    driver, wait = _open_queue(served_app)
    frame = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, 'iframe[src*="mtl_span_picker"]')))
    driver.switch_to.frame(frame)
    words = wait.until(lambda d: {w.text: w for w in d.find_elements(By.CSS_SELECTOR, "#text .w")} or None)
    assert "<" in words and "b" in words  # the markup in the text is words, not elements
    assert not driver.find_elements(By.CSS_SELECTOR, "#text b")
    ActionChains(driver).click_and_hold(words["New"]).move_to_element(words["York"]).release().perform()
    _press(driver, "3")  # the third entity type: geo-loc
    driver.switch_to.default_content()
    wait.until(lambda d: d.find_elements(By.XPATH, "//*[contains(text(), 'New York [geo-loc]')]"))  # the answer
    _settle(driver)
    driver.find_element(By.CSS_SELECTOR, '.st-key-review_save button').click()
    deadline = time.time() + 30
    while time.time() < deadline and not _events(workspace):
        time.sleep(0.2)
    engine, sessions = open_store(workspace)
    from mtl_core.store import history

    with sessions() as s:
        [event] = history(s, text_id)
    engine.dispose()
    start = NER_TEXT.index("New York")
    assert event.kind == "label" and {"start": start, "end": start + 8, "label": "geo-loc"} in event.value
    assert driver.execute_script("return window.__mtlAlerts || []") == []
