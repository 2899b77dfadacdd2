"""The Lab page in a real headless Chromium: starting an experiment (one lab), the running lab found again after
a reload and after Back/Forward, then its result; a finished lab's table (best strategy
marked), its tabs (conflict, affinity heatmap with the task splits, dev curves), and "Use as default recipe"
writing the workspace's recipe.

The running lab is a fast fake (tests/helpers/fake_lab_job.py) that waits at a gate file, so the running view
stays up for as long as the test looks at it."""

from __future__ import annotations

import os

import pytest

from tests.helpers import ROOT
from tests.helpers.browser_wait import wait_for
from tests.helpers.lab_jobs import add_lab, all_runs, lab_result
from tests.helpers.workspace import job_statuses

pytestmark = pytest.mark.browser
EXCEPTION = '[data-testid="stException"]'


def _tab(driver, name: str):
    from selenium.webdriver.common.by import By

    return wait_for(lambda: [t for t in driver.find_elements(By.CSS_SELECTOR, '[role="tab"]') if t.text == name])[0]


def test_finished_lab_tabs_and_recipe(served_app, workspace):
    from selenium.webdriver.common.by import By

    from mtl_core.train.recipe import load_recipe

    add_lab(workspace, result=lab_result(all_runs()))
    driver = served_app.driver
    driver.get(f"{served_app.url}/lab")
    wait_for(lambda: "★ pcgrad" in driver.find_element(By.TAG_NAME, "body").text)
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "pcgrad leads equal" in body
    assert wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"))  # the conflict figure
    _tab(driver, "Task affinity").click()
    wait_for(lambda: "Best split into 2 groups" in driver.find_element(By.TAG_NAME, "body").text)
    heat = driver.execute_script(
        "return [...document.querySelectorAll('.js-plotly-plot')].some(g => g.data && g.data[0].type === 'heatmap')")
    assert heat
    assert load_recipe(workspace) is None
    button = wait_for(lambda: [b for b in driver.find_elements(By.TAG_NAME, "button")
                               if b.text == "Use as default recipe"])[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    wait_for(lambda: "default recipe" in driver.find_element(By.TAG_NAME, "body").text.lower() and load_recipe(workspace))
    assert load_recipe(workspace)["train"] == {"batching": "all", "aggregator": "pcgrad"}


@pytest.fixture
def lab_gate(workspace, monkeypatch, tmp_path):
    """The server's worker runs the fake lab (its environment is inherited); -> the gate file that ends it."""
    monkeypatch.setenv("MTL_STUDIO_JOB_MODULES", "tests.helpers.fake_lab_job")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    gate = tmp_path / "release_lab"
    monkeypatch.setenv("MTL_TEST_LAB_GATE", str(gate))
    return gate


def _running_view(driver) -> bool:
    from selenium.webdriver.common.by import By

    text = driver.find_element(By.TAG_NAME, "body").text
    return ("Cancel lab" in text and "step " in text and not driver.find_elements(By.CSS_SELECTOR, EXCEPTION)
            and bool(driver.find_elements(By.CSS_SELECTOR, '[data-testid="stProgress"]')))


def test_start_reload_navigate_then_the_result(lab_gate, served_app, workspace):
    from selenium.webdriver.common.by import By

    driver = served_app.driver
    driver.get(f"{served_app.url}/lab")
    # the first script run over (no "Running" widget): a click while it runs was lost in 2 of 3 CI runs
    start = wait_for(lambda: not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]') and [
        b for b in driver.find_elements(By.TAG_NAME, "button") if b.text == "Start experiment"])[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", start)
    start.click()
    try:  # the worker's first start imports every job module: slow on a fresh clone
        wait_for(lambda: _running_view(driver), what="the running lab")
    except TimeoutError as exc:
        logs = {p.name: p.read_text(errors="replace")[-2000:] for p in (workspace / "jobs").glob("*.log")}
        raise AssertionError(f"{exc}; jobs {job_statuses(workspace, 'lab')}; worker logs {logs}") from exc
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"), timeout=60)  # live curves drawn
    assert len(job_statuses(workspace, "lab")) == 1

    driver.refresh()  # found again from the jobs table, not started twice
    wait_for(lambda: _running_view(driver), timeout=60)
    driver.get(served_app.url)  # another page, then Back to the lab and Forward again
    wait_for(lambda: "Cancel lab" not in driver.find_element(By.TAG_NAME, "body").text
             and driver.find_elements(By.CSS_SELECTOR, 'textarea[aria-label="Text"]'), timeout=60)
    driver.back()
    wait_for(lambda: _running_view(driver), timeout=60)
    driver.forward()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, 'textarea[aria-label="Text"]'), timeout=60)
    driver.back()
    wait_for(lambda: _running_view(driver), timeout=60)
    assert [status for _, status in job_statuses(workspace, "lab")] == ["running"]

    lab_gate.touch()  # the lab ends: the page turns into its result by itself (the progress fragment reruns it)
    wait_for(lambda: "★ pcgrad" in driver.find_element(By.TAG_NAME, "body").text, timeout=60)
    assert not driver.find_elements(By.CSS_SELECTOR, EXCEPTION)
    assert [status for _, status in job_statuses(workspace, "lab")] == ["done"]
    wait_for(lambda: "Start experiment" in driver.find_element(By.TAG_NAME, "body").text,
             timeout=60, what="the form under the result")  # the page may still be rendering below the table
    assert not driver.find_elements(By.CSS_SELECTOR, EXCEPTION)
