"""Review desk latency: from a label keystroke to the next item fully shown, in a real headless Chromium.

    nice -n 19 python bench/system/review_latency.py [--quick] [--items N] [--think S] [--seed S]

For each variant a fresh `streamlit run` serves a throwaway copy of the workspace's models with N sentiment
queue items (test-split texts, so each needs a forward of its own):
  default       the app as shipped: the next item's prediction prefetched in the background, and Streamlit's
                forced gc.collect(2) after each script run off (.streamlit/config.toml, runner.postScriptGC)
  no prefetch   MTL_STUDIO_REVIEW_PREFETCH=0: the next item's forward runs when it is shown
  post-run GC   STREAMLIT_RUNNER_POST_SCRIPT_GC=true: Streamlit's default, a full collection after each run A browser opens the Review
page, and for each item presses "1" (first class: saved, next item) and measures, in the page itself
(`performance.now()`, from the keydown event):
  visible  the next item's text is on the screen;
  settled  the page is quiet: no script run in progress, the new item's buttons drawn, and no DOM change for
           300 ms (the time reported is that of the last change, not + 300 ms).
Between items the script waits `--think` seconds, as a labeller reads the text (prefetch works then).
Two warm-up items per variant are not counted. Model: the workspace's active version (a trained one; an
untrained model answers at the same speed). The load average is printed before and after.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `bench` and `mtl_core` importable

from bench import common

WARMUP = 2
QUIET_MS = 300
WATCH = """
const root = document.querySelector('[data-testid="stMain"]') || document.body;
const before = (document.querySelector('div.mtl-review-text') || {}).textContent;
const shown = () => (document.querySelector('.st-key-review_shown input') || {}).value;  // the drawn item's token
const token = shown();
const w = window.__mtlLat = {start: null, visible: null, settled: null, last: performance.now()};
new MutationObserver(() => { w.last = performance.now(); }).observe(root, {subtree: true, childList: true,
                                                                         attributes: true, characterData: true});
document.addEventListener('keydown', (e) => { if (w.start === null) w.start = e.timeStamp; }, {capture: true});
(function tick() {
  const now = performance.now();
  const text = (document.querySelector('div.mtl-review-text') || {}).textContent;
  const buttons = document.querySelector('.st-key-review_accept button');
  if (w.start !== null && w.visible === null && text !== undefined && text !== before) w.visible = now - w.start;
  const busy = document.querySelector('[data-testid="stStatusWidget"]');
  if (w.visible !== null && !busy && buttons && shown() !== token && now - w.last >= QUIET_MS) {
    w.settled = w.last - w.start;
    return;
  }
  requestAnimationFrame(tick);
})();
""".replace("QUIET_MS", str(QUIET_MS))


def _flow():
    spec = importlib.util.spec_from_file_location("screenshot_predict", common.ROOT / "scripts" / "screenshot_predict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    reason = module.browser_available()
    if reason:
        raise SystemExit(f"SKIPPED: {reason}")
    return module


def _workspace(source: Path, target: Path, texts: list[str]) -> None:
    """A throwaway workspace: the source's models, a fresh store holding one queue item per text."""
    shutil.copytree(source / "models", target / "models")
    from mtl_core.store import add_texts, upsert_queue_items
    from mtl_core.store.db import open_store

    engine, sessions = open_store(target)
    with sessions() as s:
        ids = add_texts(s, texts, source="predict")
        upsert_queue_items(s, [{"text_id": t, "task": "sentiment", "reason": "uncertain", "score": 1.0 - i / 1e4,
                                "detail": "sentiment: bench item"} for i, t in enumerate(ids)], pool="predict")
    engine.dispose()


VARIANTS = {  # label -> environment of the server
    "default (prefetch, no post-run GC)": {"MTL_STUDIO_REVIEW_PREFETCH": "1", "STREAMLIT_RUNNER_POST_SCRIPT_GC": "false"},
    "no prefetch": {"MTL_STUDIO_REVIEW_PREFETCH": "0", "STREAMLIT_RUNNER_POST_SCRIPT_GC": "false"},
    "post-run GC on (Streamlit's default)": {"MTL_STUDIO_REVIEW_PREFETCH": "1", "STREAMLIT_RUNNER_POST_SCRIPT_GC": "true"},
}


def _measure(flow, home: Path, items: int, think: float, env: dict[str, str], tmp: Path) -> list[tuple[float, float]]:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    os.environ.update(env)  # start_app passes os.environ to the server
    name = "-".join(env.values())
    port, log = flow.free_port(), tmp / f"streamlit-{name}.log"
    proc = flow.start_app(home, port, log)
    driver, out = None, []
    try:
        flow.wait_healthy(port, proc)
        driver = flow.make_driver(tmp / f"profile-{name}")
        driver.get(f"http://127.0.0.1:{port}/review?annotator=bench-{name}")
        WebDriverWait(driver, 120).until(ec.visibility_of_element_located(
            (By.CSS_SELECTOR, '.st-key-review_accept button')))
        time.sleep(2.0)
        for i in range(items + WARMUP):
            driver.execute_script("document.activeElement && document.activeElement.blur();" + WATCH)
            ActionChains(driver).send_keys("1").perform()
            deadline = time.time() + 60
            while time.time() < deadline:
                got = driver.execute_script("return window.__mtlLat")
                if got and got["settled"] is not None:
                    break
                time.sleep(0.05)
            else:
                shown = [e.text for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stAlert"]')]
                raise TimeoutError(f"item {i}: the page did not settle within 60 s: {got}; messages {shown}")
            if i >= WARMUP:
                out.append((got["visible"], got["settled"]))
            time.sleep(think)
    finally:
        if driver is not None:
            driver.quit()
        flow.stop_app(proc)
    return out


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--items", type=int, default=None, help="measured items per variant (default 30; 8 with --quick)")
    p.add_argument("--think", type=float, default=0.5, help="seconds between a settled page and the next key")
    args = p.parse_args()
    common.setup(args)
    items = args.items or (8 if args.quick else 30)
    flow, source = _flow(), common.workspace_home()
    print(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; model: {source}; "
          f"{items} items per variant (+{WARMUP} warm-up), think time {args.think:g} s")
    texts = list(dict.fromkeys(common.test_texts(4 * (items + WARMUP), seed=args.seed)))[: 2 * (items + WARMUP)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="mtl-review-latency-") as tmp:
        home = Path(tmp) / "ws"
        _workspace(source, home, texts)
        for label, env in VARIANTS.items():
            measured = _measure(flow, home, items, args.think, env, Path(tmp))
            visible, settled = [v for v, _ in measured], [s for _, s in measured]
            rows.append([label, len(settled), statistics.median(visible), _p90(visible), statistics.median(settled),
                         _p90(settled)])
    print(common.table(["variant", "items", "visible median ms", "visible p90 ms", "settled median ms",
                        "settled p90 ms"], rows, "Review: label keystroke -> next item"))
    print(f"\n# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; target: settled median "
          f"<= 300 ms on a quiet machine: {common.verdict(rows[0][4] <= 300)}")


if __name__ == "__main__":
    main()
