"""The Models page through AppTest: versions with lineage and data, active highlighted, rollback."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from mtl_core.model.registry import Registry
from mtl_core.model.version_marks import discard_version
from tests.helpers import ROOT
from tests.helpers.rounds import add_round_version, frame


def _models_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.run()
    return at.switch_page("app_pages/models.py").run()


def test_lists_every_version_with_parent_and_status(workspace):
    version = add_round_version(workspace)
    discard_version(version, workspace)
    at = _models_page()
    assert not at.exception
    table = frame(at, "version", "status")
    assert table["version"].tolist() == [version, "v0001"]
    assert table["status"].tolist() == ["discarded", "active"]
    assert table["parent"].tolist() == ["v0001", ""]
    assert table["corrections"].tolist()[0] == 3 and table["strategy"].tolist()[0] == "lora"
    assert at.selectbox(key="models_version").value == "v0001"  # the active one is preselected


def test_details_show_training_data_and_config(workspace):
    version = add_round_version(workspace)
    at = _models_page()
    at.selectbox(key="models_version").set_value(version).run()
    assert not at.exception
    assert any("3 corrections" in m.value for m in at.markdown)
    counts = frame(at, "replay")
    assert counts.loc["Sentiment", "replay"] == 12
    assert at.json and "lora" in at.json[0].value
    assert frame(at, "delta (points)").loc["Sentiment", "delta (points)"] == pytest.approx(-10.0)


def test_rollback_needs_confirmation(workspace):
    version = add_round_version(workspace)
    Registry(workspace).activate(version)
    at = _models_page()
    assert at.selectbox(key="models_version").value == version
    at.selectbox(key="models_version").set_value("v0001").run()
    assert at.button(key="models_activate").disabled
    at.checkbox(key="models_confirm_v0001").check().run()
    at.button(key="models_activate").click().run()
    assert not at.exception
    assert Registry(workspace).active == "v0001"
    assert any("v0001 is now the active model" in s.value for s in at.success)
    assert frame(at, "version", "status")["status"].tolist() == ["", "active"]


def test_empty_workspace_explains(empty_workspace):
    at = _models_page()
    assert not at.exception and any("No model versions" in i.value for i in at.info)
