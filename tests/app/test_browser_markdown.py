"""In a real headless Chromium: Markdown images in user strings are never fetched, and team mode's sign-in
page names no page.

A tiny HTTP server on 127.0.0.1 counts requests; `![x](http://127.0.0.1:PORT/...)` goes into a review text,
an imported label (Agreement adjudication), a batch file's name and its header. Any <img> Streamlit made
of them would request it from that server.
"""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from mtl_core.ops import auth
from mtl_core.store import add_annotation, add_texts
from mtl_core.store.db import open_store

pytestmark = pytest.mark.browser
PAGE_NAMES = ("Predict", "Review", "Train", "Models", "Data")
# Records, from the first byte of the page on, any page menu or page link that shows up, however briefly.
NAV_WATCH = """
window.__mtlNavSeen = [];
new MutationObserver(() => {
  for (const el of document.querySelectorAll('[data-testid="stSidebarNav"], [data-testid="stTopNav"], a[href]')) {
    const href = el.getAttribute('href') || '';
    if (!el.href || /\\/(predict|review|train|models|data)\\b/i.test(href)) window.__mtlNavSeen.push(el.outerHTML.slice(0, 200));
  }
}).observe(document, {childList: true, subtree: true});
"""


@pytest.fixture
def trap():
    """(port, requests seen): an HTTP server that records every path asked of it."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            seen.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


def _seed_conflict(home, text: str, label: str) -> int:
    engine, sessions = open_store(home)
    with sessions() as s:
        (text_id,) = add_texts(s, [text], source="import")
        add_annotation(s, text_id, "sentiment", label, "alice")  # an imported label outside the task file
        add_annotation(s, text_id, "sentiment", "positive", "bob")
    engine.dispose()
    return text_id


def _text(driver, selector: str) -> str:
    """What the elements matching `selector` show (input values included), as typed: the word joiners
    md_literal puts into URLs are invisible."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText + ' ' +"
        " [...e.querySelectorAll('input')].map(i => i.value).join(' ')).join(' ')", selector).replace("\u2060", "")


def _imgs_from(driver, port: int) -> int:
    return driver.execute_script(
        "return [...document.images].filter(i => i.src.includes(arguments[0])).length", f"127.0.0.1:{port}")


def test_markdown_images_in_user_strings_are_never_fetched(workspace, served_app, trap, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    port, seen = trap
    url = f"http://127.0.0.1:{port}"
    text_id = _seed_conflict(workspace, f"Great film ![x]({url}/text.png) really", f"![x]({url}/label.png)")
    driver, wait = served_app.driver, WebDriverWait(served_app.driver, 90)
    driver.get(f"{served_app.url}/review")
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".st-key-review_annotator_input input"))
               ).send_keys("carol", Keys.ENTER)
    wait.until(ec.element_to_be_clickable((By.XPATH, "//*[@role='tab'][normalize-space()='Agreement']"))).click()
    radio = f".st-key-review_adj_pick_sentiment_{text_id}"
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, radio)))
    time.sleep(2.0)  # time for any image request to arrive
    assert seen == [] and _imgs_from(driver, port) == 0
    assert f"![x]({url}/label.png)" in _text(driver, radio)  # the label, as typed

    # a file name cannot hold "/", but "http:HOST:PORT" is a URL to a browser all the same
    upload = tmp_path / f"![x](http:127.0.0.1:{port}).csv"
    upload.write_text(f"![y]({url}/header.png),id\nI loved it,1\n", encoding="utf-8")
    driver.get(served_app.url)
    wait.until(ec.element_to_be_clickable((By.XPATH, "//*[@role='tab'][normalize-space()='Batch file']"))).click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "input[type=file]"))).send_keys(str(upload))
    wait.until(lambda d: f"read from {upload.name}" in _text(d, '[data-testid="stCaptionContainer"]'))
    assert f"![y]({url}/header.png)" in _text(driver, ".st-key-batch_column")  # the header, as typed
    time.sleep(2.0)  # time for any image request to arrive
    assert seen == [] and _imgs_from(driver, port) == 0
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')


@pytest.fixture
def team_env(workspace, monkeypatch):
    """Team mode with one admin, set before the server starts (it reads the environment then)."""
    monkeypatch.setenv(auth.ENV_TEAM_MODE, "1")
    engine, sessions = open_store(workspace)
    with sessions() as s:
        auth.create_user(s, "root", "correct horse battery", "admin")
    engine.dispose()


def test_team_mode_sign_in_page_names_no_page(team_env, served_app):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver, wait = served_app.driver, WebDriverWait(served_app.driver, 90)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": NAV_WATCH})
    for path in ("", "/review", "/predict", "/train"):  # a page's URL opens the sign-in form too
        driver.get(f"{served_app.url}{path}")
        wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".st-key-auth_login_password input")))
        time.sleep(1.0)  # the navigation message comes with the script run
        assert driver.execute_script("return window.__mtlNavSeen") == []  # not even for a moment
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"], [data-testid="stTopNav"]')
        links = driver.execute_script("return [...document.querySelectorAll('a')].map(a => a.href)")
        assert not [a for a in links if any(f"/{p.lower()}" in a for p in PAGE_NAMES)], links
        shown = driver.find_element(By.TAG_NAME, "body").text
        assert not [p for p in PAGE_NAMES if p in shown.split()], shown
