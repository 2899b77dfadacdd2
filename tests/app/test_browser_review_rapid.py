"""Rapid clicks and keystrokes on the Review page in a real headless Chromium: nothing is ever recorded
against a text other than the one shown with the button, and nothing twice.

Before the fix, five clicks on "Accept model answer" 0.3 s apart wrote several events to one item (the
button's arguments were those of whatever item the server had drawn last) while the screen showed another.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter

import pytest

from mtl_core.store.db import open_store

pytestmark = pytest.mark.browser

TEXTS = [f"Review item number {i}: the film was {'good' if i % 2 else 'bad'} and long" for i in range(8)]
SHOWN = "div.mtl-review-text"


def _seed(home) -> dict[int, str]:
    from mtl_core.store import add_texts, upsert_queue_items

    engine, sessions = open_store(home)
    with sessions() as s:
        ids = add_texts(s, TEXTS, source="predict")
        upsert_queue_items(s, [{"text_id": tid, "task": "sentiment", "reason": "uncertain", "score": 0.9 - 0.01 * i,
                                "detail": "sentiment: seeded"} for i, tid in enumerate(ids)],
                           pool="predict", model_version="v0001")
    engine.dispose()
    return dict(zip(ids, TEXTS))


def _events(home) -> list[tuple[int, str, str]]:
    from sqlalchemy import select

    from mtl_core.store.models import AnnotationEvent

    engine, sessions = open_store(home)
    with sessions() as s:
        rows = s.execute(select(AnnotationEvent.text_id, AnnotationEvent.kind, AnnotationEvent.task)
                         .order_by(AnnotationEvent.id)).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def _open_queue(served_app):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = served_app.driver
    wait = WebDriverWait(driver, 90)
    driver.get(f"{served_app.url}/review")
    name = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".st-key-review_annotator_input input")))
    name.send_keys("alice", Keys.ENTER)
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, SHOWN)))
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, '[class*="st-key-review_accept"] button')))
    _settle(driver)
    return driver, wait


def _settle(driver, quiet: float = 1.5, timeout: float = 60) -> None:
    """Until no script run is in progress for `quiet` seconds."""
    from selenium.webdriver.common.by import By

    deadline, calm_since = time.time() + timeout, None
    while time.time() < deadline:
        busy = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
        calm_since = None if busy else calm_since or time.time()
        if calm_since and time.time() - calm_since >= quiet:
            return
        time.sleep(0.1)


def _shown(driver) -> str | None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        found = driver.find_elements(By.CSS_SELECTOR, SHOWN)
        return found[0].text if found else None
    except StaleElementReferenceException:
        return None


def _check(home, texts: dict[int, str], seen: set[str | None], final: str | None, kind: str) -> None:
    events = [e for e in _events(home) if e[1] == kind]
    labelled = Counter(tid for tid, _, _ in events)
    assert events, "no click was recorded at all"
    assert max(labelled.values()) == 1, f"duplicate events: {labelled}"  # never twice for one item
    assert {texts[t] for t in labelled} <= seen, "an item was labelled that was never on the screen"
    if final is not None:  # what the page shows once settled is still open: it was not labelled behind its back
        assert final not in {texts[t] for t in labelled}, f"the shown item {final!r} is already labelled"


def test_rapid_accept_clicks_label_only_the_items_shown(workspace, served_app):
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By

    texts = _seed(workspace)
    driver, _ = _open_queue(served_app)
    seen = set()
    for _ in range(5):
        seen.add(_shown(driver))
        with contextlib.suppress(StaleElementReferenceException, WebDriverException):  # a button being replaced
            driver.find_element(By.CSS_SELECTOR, '[class*="st-key-review_accept"] button').click()
        time.sleep(0.3)
    _settle(driver)
    _check(workspace, texts, seen | {_shown(driver)}, _shown(driver), "accept")
