"""Your own task in a real headless Chromium: Data → New task (a labelled CSV uploaded, columns mapped, a bad
row reported), Review → New tasks (label two texts), Predict answering it marked few-shot."""

from __future__ import annotations

import time

import pytest

from tests.helpers.browser_wait import wait_for

pytestmark = pytest.mark.browser

CSV = ("message,route\nserver down now,urgent\nnew mugs arrived,later\nsite returns 500,urgent\n"
       "lunch menu,later\nfire alarm,urgent\nnewsletter,whenever\n")


def _wait(find, timeout: float = 180):
    return wait_for(find, timeout)


def _by_text(driver, css: str, text: str):
    from selenium.webdriver.common.by import By

    return [e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.text.strip() == text]


def _type(driver, label: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, f'input[aria-label="{label}"]'))[0]
    box.send_keys(value, Keys.ENTER)
    time.sleep(1)


def _page_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def test_new_task_from_upload_to_a_few_shot_answer(served_app, flow, tmp_path):
    from selenium.webdriver.common.by import By

    driver = served_app.driver
    upload = tmp_path / "tickets.csv"
    upload.write_text(CSV, encoding="utf-8")
    driver.get(f"{served_app.url}/data")
    _wait(lambda: _by_text(driver, '[role="tab"]', "New task"))[0].click()
    _type(driver, "Name", "routing")
    _type(driver, "Labels (comma-separated)", "urgent, later")
    _wait(lambda: _by_text(driver, "label", "Labelled file") or _by_text(driver, "p", "Labelled file"))[0].click()
    _wait(lambda: driver.find_elements(By.CSS_SELECTOR, 'input[type="file"]'))[0].send_keys(str(upload))
    # the label column is not called "label": the wizard picks the column beside the text, so the rows count
    _wait(lambda: "5 good rows will be kept; 1 skipped" in _page_text(driver))
    _wait(lambda: _by_text(driver, "button", "Create task"))[0].click()
    _wait(lambda: "Task routing created" in _page_text(driver))

    driver.get(f"{served_app.url}/review")
    _type(driver, "Your name", "alice")
    _wait(lambda: _by_text(driver, '[role="tab"]', "New tasks"))[0].click()
    _wait(lambda: "Est. accuracy" in _page_text(driver))
    shown = flow.predict_flow(driver, served_app.port, "the server is down again")
    assert shown["alerts"] == []
    _wait(lambda: "few-shot" in _page_text(driver) and "Routing" in _page_text(driver))
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
