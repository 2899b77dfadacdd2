"""The first run in a real headless Chromium: on an empty workspace the Predict page shows the first model
training in the background (progress bar, phase message, Cancel, curves), a reload finds that job again rather
than starting a second, and once the model is registered and active the page turns by itself (its
`@st.fragment(run_every=2)` reruns the page) into the Predict UI, where a prediction works.

The job is a fast fake (tests/helpers/bootstrap_model_job.py) that waits at a gate file after its steps, so the
panel stays up for as long as the test looks at it, however slow the machine."""

from __future__ import annotations

import os

import pytest

from tests.helpers import ROOT
from tests.helpers.browser_wait import wait_for
from tests.helpers.workspace import job_statuses

pytestmark = pytest.mark.browser

TEXT = "Tom Hanks flew to Paris"
EXCEPTION = '[data-testid="stException"]'
PROGRESS = '[data-testid="stProgress"]'
CHART = '[data-testid="stPlotlyChart"]'
TEXT_AREA = 'textarea[aria-label="Text"]'


@pytest.fixture
def workspace(empty_workspace, monkeypatch, tmp_path):
    """Overrides tests/conftest.py's (which has a model) for `served_app`: no model, automatic first-run
    training on, and the worker running the fake job. The server and its worker inherit this environment."""
    monkeypatch.setenv("MTL_STUDIO_AUTO_TRAIN", "1")  # tests/conftest.py turns it off for the other tests
    monkeypatch.setenv("MTL_STUDIO_JOB_MODULES", "tests.helpers.bootstrap_model_job")
    # the worker runs `python -m mtl_core.ops.worker` in the server's cwd (the repo); this makes `tests.` importable
    # whatever the cwd
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("MTL_TEST_BOOTSTRAP_GATE", str(tmp_path / "release_first_model"))
    return empty_workspace




def _page_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def _training_panel_shown(driver) -> bool:
    """The panel with a phase message past step 1, its progress bar, the Cancel button and the loss curve."""
    from selenium.webdriver.common.by import By

    text = _page_text(driver)
    return ("Training the first model" in text and "quick model: step" in text
            and "quick model: step 1/" not in text
            and bool(driver.find_elements(By.CSS_SELECTOR, PROGRESS))
            and bool(driver.find_elements(By.XPATH, "//button[normalize-space()='Cancel training']"))
            and bool(driver.find_elements(By.CSS_SELECTOR, CHART)))


def test_first_model_trains_then_the_page_turns_into_predict(served_app, flow, workspace, tmp_path):
    from selenium.webdriver.common.by import By

    from mtl_core.model.registry import Registry
    from mtl_core.train.bootstrap import QUICK_NOTE

    driver = served_app.driver
    assert Registry(workspace).active is None
    driver.get(served_app.url)
    wait_for(lambda: _training_panel_shown(driver), what="the first-run training panel")
    assert not driver.find_elements(By.CSS_SELECTOR, EXCEPTION)
    assert not driver.find_elements(By.CSS_SELECTOR, TEXT_AREA)  # no Predict UI without a model

    driver.refresh()  # the job is found again, not started a second time
    wait_for(lambda: _training_panel_shown(driver), what="the training panel after a reload")
    assert not driver.find_elements(By.CSS_SELECTOR, EXCEPTION)
    jobs = job_statuses(workspace, "train_default")
    assert len(jobs) == 1 and jobs[0][1] == "running", jobs

    driver.execute_script("window.__mtlSamePage = true;")  # gone if the page is loaded again
    (tmp_path / "release_first_model").touch()  # the fake job registers and activates its model now
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, TEXT_AREA), timeout=60,
          what="the Predict UI once the quick model is active")
    assert driver.execute_script("return window.__mtlSamePage === true"), "the page was reloaded, not rerun"
    assert not driver.find_elements(By.CSS_SELECTOR, EXCEPTION)
    assert "Training the first model" not in _page_text(driver)

    shown = flow.predict_flow(driver, served_app.port, TEXT)
    assert not flow.alert_open(driver)
    assert shown["alerts"] == []
    assert shown["ner_text"] == TEXT
    assert not driver.find_elements(By.CSS_SELECTOR, EXCEPTION)

    reg = Registry(workspace)
    assert reg.active is not None and reg.get(reg.active).note == QUICK_NOTE
    wait_for(lambda: job_statuses(workspace, "train_default")[0][1] == "done", timeout=30, what="the job finishing")
    assert len(job_statuses(workspace, "train_default")) == 1
