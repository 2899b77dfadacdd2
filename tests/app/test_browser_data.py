"""The Data page's confusion matrix in a real headless Chromium: clicking a cell filters the table to that
cell's examples (AppTest cannot click a Plotly chart)."""

from __future__ import annotations

import re
import time

import pytest

pytestmark = pytest.mark.browser

CELL_CENTRE = """
const gd = arguments[0], xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
return [xa._offset + xa.d2p(xa._categories[arguments[1]]) - box.width / 2,
        ya._offset + ya.d2p(ya._categories[arguments[2]]) - box.height / 2,
        gd.data[0].z[arguments[2]][arguments[1]]];
"""


def _wait(find, timeout: float = 180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.3)
    raise TimeoutError("not shown in time")


def _match_count(driver) -> int | None:
    from selenium.webdriver.common.by import By

    for caption in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stCaptionContainer"]'):
        found = re.match(r"([\d,]+) of [\d,]+ dev examples match", caption.text)
        if found:
            return int(found.group(1).replace(",", ""))
    return None


def test_clicking_a_confusion_cell_shows_its_examples(served_app):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver = served_app.driver
    driver.get(f"{served_app.url}/data")
    tab = _wait(lambda: [t for t in driver.find_elements(By.CSS_SELECTOR, '[role="tab"]') if t.text == "Browse"])
    tab[0].click()
    charts = _wait(lambda: (found := driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")) and len(found) >= 3
                   and found)
    total = _wait(lambda: _match_count(driver))
    matrix = charts[2]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", matrix)
    time.sleep(1)  # Plotly lays the chart out after it is shown
    x, y, expected = driver.execute_script(CELL_CENTRE, matrix, 1, 0)  # gold negative, answered positive
    ActionChains(driver).move_to_element_with_offset(matrix, int(x), int(y)).pause(0.5).click().perform()
    assert _wait(lambda: _match_count(driver) != total, 60)
    assert _match_count(driver) == expected
