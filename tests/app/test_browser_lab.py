"""The Lab page in a real headless Chromium: a finished lab's table (best strategy marked), its tabs (conflict,
affinity heatmap with the task splits, dev curves), and "Use as default recipe" writing the workspace's recipe."""

from __future__ import annotations

import pytest

from tests.helpers.browser_wait import wait_for
from tests.helpers.lab_jobs import add_lab, all_runs, lab_result

pytestmark = pytest.mark.browser


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
