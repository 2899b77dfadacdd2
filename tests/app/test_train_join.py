"""The Train page with a workspace task the model has no head for: the round form offers to join it, and a
round's comparison shows a joined task without an old metric."""

from __future__ import annotations

import os

from streamlit.testing.v1 import AppTest

from app.train import service as train_service
from mtl_core.data.examples import Example
from mtl_core.data.workspace_tasks import add_task
from mtl_core.eval.compare import compare_answers
from mtl_core.store import create_job, finish_job, start_job
from mtl_core.store.db import open_store
from mtl_core.tasks import TaskSpec, load_task_file
from tests.helpers import ROOT
from tests.helpers.rounds import add_corrections, add_round_version, frame, running_round

URGENCY = TaskSpec(name="urgency", kind="classification", labels=["calm", "urgent"])


def _train_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.run()
    return at.switch_page("app_pages/train.py").run()


def test_round_form_offers_to_join_new_tasks(workspace, monkeypatch):
    add_task(URGENCY, workspace, load_task_file())
    launched = []
    monkeypatch.setattr(train_service, "launch", lambda params: launched.append(params) or running_round(workspace))
    at = _train_page()  # no corrections at all: joining a task is reason enough for a round
    assert not at.exception
    picker = at.multiselect(key="round_new_tasks")
    assert picker.options == ["Urgency (0 labels)"] and picker.value == []
    at.button(key="round_start").click().run()
    assert not launched and any("Pick at least one task" in w.value for w in at.warning)
    at.multiselect(key="round_new_tasks").select("urgency")
    at.button(key="round_start").click().run()
    assert not at.exception
    (params,) = launched
    assert params["new_tasks"] == ["urgency"] and params["tasks"] == []


def test_no_join_picker_without_new_tasks(workspace, monkeypatch):
    add_corrections(workspace, 2)
    launched = []
    monkeypatch.setattr(train_service, "launch", lambda params: launched.append(params) or running_round(workspace))
    at = _train_page()
    assert "round_new_tasks" not in {w.key for w in at.multiselect}
    at.button(key="round_start").click().run()
    assert launched[-1]["new_tasks"] is None and launched[-1]["tasks"] == ["sentiment"]


def test_comparison_shows_a_joined_task_without_old_metric(workspace):
    version = add_round_version(workspace)
    specs = {t.name: t for t in load_task_file().tasks} | {"urgency": URGENCY}
    exs = [Example(f"movie {i} was ok", label=lab) for i, lab in enumerate(["positive", "negative"] * 2)]
    urg = [Example(f"call me {i}", label=lab) for i, lab in enumerate(["calm", "urgent"] * 2)]
    gold = [e.label for e in exs]
    test = compare_answers(specs, {"sentiment": exs, "urgency": urg}, {"sentiment": ["positive"] * 4},
                           {"sentiment": gold, "urgency": ["calm", "urgent", "calm", "calm"]}, "test")
    corr = compare_answers(specs, {"urgency": urg[:2]}, {}, {"urgency": ["calm", "urgent"]}, "corrections")
    comparison = {"test": test, "corrections": corr, "regressions": test["regressions"],
                  "corrections_weights_only": corr["counts"], "edit_memory": {}}
    _finished_round(workspace, {"version": version, "n_corrections": 2, "comparison": comparison})
    at = _train_page()
    assert not at.exception
    deltas = frame(at, "delta (points)")
    assert deltas["task"].tolist() == ["Sentiment", "Urgency (new task)"]
    new = deltas[deltas["task"] == "Urgency (new task)"].iloc[0]
    assert new["new"] == test["tasks"]["urgency"]["new"] and not new["regressed"]
    assert new["old"] is None or new["old"] != new["old"]  # None / NaN: no old metric
    assert not at.warning  # a new task never counts as a regression
    assert [i.value for i in at.info if "Joined the shared model" in i.value] == ["Joined the shared model: Urgency."]


def test_a_joined_task_without_a_test_set_is_said(workspace):
    version = add_round_version(workspace)
    _finished_round(workspace, {"version": version, "n_corrections": 0,
                                "comparison": {"test": {"tasks": {}}, "corrections": {}, "regressions": []}})
    at = _train_page()
    assert not at.exception
    assert [i.value for i in at.info if "Joined the shared model" in i.value] == ["Joined the shared model: Urgency."]
    [note] = [c.value.replace("\\", "") for c in at.caption if "No test metric" in c.value]
    assert "No test metric for Urgency" in note and "20 labels" in note


def _finished_round(workspace, result: dict) -> None:
    """A finished train_round job that joined "urgency", with `result` merged into its result."""
    _, sessions = open_store(workspace)
    with sessions() as s:
        job_id = create_job(s, "train_round", params={"base_version": "v0001", "new_tasks": ["urgency"]}).id
        start_job(s, job_id, pid=os.getpid())
        finish_job(s, job_id, status="done", message="finished", result={
            "base_version": "v0001", "strategy": "full", "timings": {"total": 3.0}, "joined": ["urgency"], **result})
