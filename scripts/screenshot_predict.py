"""Drive the Predict page in headless Chromium: start the app, paste text, Predict, screenshot.

    python scripts/screenshot_predict.py                    # tiny random model, -> assets/screenshot_predict.png
    python scripts/screenshot_predict.py --home workspace   # the real trained model

Also imported by tests/test_browser.py, so the test and the README screenshot share one flow.
Needs Debian's `chromium` and `chromium-driver` (apt-get install -y chromium chromium-driver).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TASK_TITLES = ["Sentiment", "Sentiment score", "Topic", "Question type", "Spam", "NER"]
DEFAULT_TEXT = "Just saw Taylor Swift at Madison Square Garden with Jimmy Fallon, best night ever in New York!!"
# Records alert()/confirm()/prompt() calls instead of blocking on them, so a test can assert none fired.
ALERT_HOOK = """
window.__mtlAlerts = [];
for (const name of ['alert', 'confirm', 'prompt']) {
  window[name] = (msg) => { window.__mtlAlerts.push(name + ':' + String(msg)); };
}
"""
# The NER block's text without the entity-type labels: what a reader sees of the typed text.
NER_TEXT_JS = """
const el = document.querySelector('div.mtl-ner');
if (!el) return null;
const copy = el.cloneNode(true);
copy.querySelectorAll('sub').forEach((s) => s.remove());
copy.querySelectorAll('br').forEach((b) => b.replaceWith('\\n'));
return copy.textContent;
"""


def browser_available() -> str | None:
    """None when Chromium and chromedriver are installed, else the reason they cannot be used."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} not found (apt-get install -y chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(home: str | Path, port: int, log_path: Path) -> subprocess.Popen:
    """`streamlit run` in its own process group (so stop_app can end it and its children)."""
    env = {**os.environ, "MTL_STUDIO_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
           "--server.headless", "true", "--server.fileWatcherType", "none"]
    log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the server
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    url = f"http://127.0.0.1:{port}/_stcore/health"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit not healthy on {url} after {timeout:.0f}s")


def stop_app(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def make_driver(profile_dir: str | Path, width: int = 1400, height: int = 1900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={profile_dir}", f"--window-size={width},{height}"):
        opts.add_argument(flag)
    opts.set_capability("unhandledPromptBehavior", "ignore")  # a real alert stays open, so it is seen
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": ALERT_HOOK})
    return driver


def predict_flow(driver, port: int, text: str, timeout: float = 120) -> dict:
    """Open the app, type `text`, press Predict, wait for every task card. -> what the page shows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout)
    driver.get(f"http://127.0.0.1:{port}/")
    area = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, 'textarea[aria-label="Text"]')))
    area.send_keys(text)
    area.send_keys(Keys.CONTROL, Keys.ENTER)  # commits the text area value before the click
    time.sleep(0.5)
    button = wait.until(ec.element_to_be_clickable((By.XPATH, "//button[normalize-space()='Predict']")))
    button.click()
    for title in TASK_TITLES:
        wait.until(ec.visibility_of_element_located((By.XPATH, f"//strong[normalize-space()='{title}']")))
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "div.mtl-ner")))
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'))
    time.sleep(1.0)  # let plotly finish drawing before a screenshot
    return {
        "ner_text": driver.execute_script(NER_TEXT_JS),
        "alerts": driver.execute_script("return window.__mtlAlerts || []"),
        "injected_imgs": driver.execute_script("return document.querySelectorAll('img[src=\"x\"]').length"),
    }


def alert_open(driver) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert  # noqa: B018 - raises when no alert is open
        return True
    except NoAlertPresentException:
        return False


def tiny_workspace(path: Path) -> Path:
    """A workspace with the tiny random model registered and active."""
    sys.path.insert(0, str(ROOT))
    from mtl_core.model.registry import Registry
    from mtl_core.model.testing import make_tiny_checkpoint

    reg = Registry(path)
    reg.register(make_tiny_checkpoint(reg.staging_dir()), note="tiny", activate=True)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="workspace with a trained model (default: a fresh tiny-model workspace)")
    parser.add_argument("--out", default=str(ROOT / "assets" / "screenshot_predict.png"))
    parser.add_argument("--text", default=DEFAULT_TEXT)
    args = parser.parse_args()
    reason = browser_available()
    if reason:
        print(f"cannot take the screenshot: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(args.home) if args.home else tiny_workspace(Path(tmp) / "ws")
        port = free_port()
        proc = start_app(home, port, Path(tmp) / "streamlit.log")
        driver = None
        try:
            wait_healthy(port, proc)
            driver = make_driver(Path(tmp) / "profile")
            shown = predict_flow(driver, port, args.text)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(args.out)
            print(f"saved {args.out}; alerts: {shown['alerts']}")
        finally:
            if driver is not None:
                driver.quit()
            stop_app(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
