"""The Lab page through AppTest: the form (validation, start, busy), a running lab, a finished one (table, best
strategy, conflict and affinity figures, dev curves, recipe and training buttons), a failed one, no jobs at all."""

from __future__ import annotations

import os

from streamlit.testing.v1 import AppTest

from app.lab import service as lab_service
from mtl_core.lab.results import (
    BASELINE,
)
from mtl_core.ops import worker
from mtl_core.store import create_job, list_jobs, start_job
from mtl_core.store.db import open_store
from tests.helpers.apptest import open_page, page_texts
from tests.helpers.lab_jobs import TASKS, a_run, add_lab, all_runs, lab_result
from tests.helpers.rounds import frame


def _lab_page() -> AppTest:
    return open_page("app_pages/lab.py")


def _texts(at: AppTest) -> str:
    return page_texts(at)


def test_no_jobs_shows_the_form(workspace):
    at = _lab_page()
    assert not at.exception
    assert "New experiment" in _texts(at)
    assert at.multiselect(key="lab_strategies").value == ["equal", "pcgrad", "upgrad"]
    assert at.multiselect(key="lab_tasks").value == [  # the active model's tasks
        "sentiment", "sentiment_score", "topic", "question_type", "spam", "ner"]
    assert "baselines" in _texts(at) and "cached" in _texts(at)
    assert "lab_steps" not in {w.key for w in at.number_input}  # only with a custom budget
    budget = at.radio(key="lab_budget")  # each budget says what a run costs on this kind of machine
    assert len(budget.options) == 3 and sum("CPU cores" in c for c in budget.proto.captions) == 2


def test_page_renders_without_a_model(empty_workspace):
    at = _lab_page()
    assert not at.exception
    assert len(at.multiselect(key="lab_tasks").value) == 6  # the default task file


def test_invalid_settings_show_the_error_and_start_nothing(workspace, monkeypatch):
    launched = []
    monkeypatch.setattr(lab_service, "launch", lambda kind, params: launched.append(kind) or 0)
    at = _lab_page()
    at.radio(key="lab_budget").set_value("custom").run()
    at.number_input(key="lab_steps").set_value(0)
    at.button(key="lab_start").click().run()
    assert not at.exception
    assert any("custom budget needs steps" in e.value.replace("\\", "") for e in at.error)
    assert launched == []
    with open_store(workspace)[1]() as s:
        assert list_jobs(s, kind="lab") == []
    # nothing lost: the settings are still there to fix
    assert at.number_input(key="lab_steps").value == 0 and at.radio(key="lab_budget").value == "custom"
    at.multiselect(key="lab_tasks").set_value(["sentiment"])
    at.number_input(key="lab_steps").set_value(40)
    at.button(key="lab_start").click().run()
    assert any("at least two tasks" in e.value for e in at.error) and launched == []


def test_start_creates_a_lab_job_and_follows_it(workspace, monkeypatch):
    launched = []

    def fake_launch(kind, params):  # the job row, no worker process
        launched.append((kind, params))
        with open_store(workspace)[1]() as s:
            job_id = create_job(s, kind, params=params).id
            start_job(s, job_id, pid=os.getpid())
        return job_id

    monkeypatch.setattr(lab_service, "launch", fake_launch)
    at = _lab_page()
    at.multiselect(key="lab_strategies").set_value(["equal", "mmoe"])
    at.number_input(key="lab_seeds").set_value(2)
    at.multiselect(key="lab_tasks").set_value(["sentiment", "topic"])
    at.button(key="lab_start").click().run()
    assert not at.exception
    ((kind, params),) = launched
    assert kind == "lab"
    assert params["lab"]["strategies"] == ["equal", "mmoe"] and params["lab"]["seeds"] == 2
    assert params["lab"]["budget"] == "quick" and params["lab"]["tasks"] == ["sentiment", "topic"]
    with open_store(workspace)[1]() as s:
        (job,) = list_jobs(s, kind="lab")
    assert job.status == "running"
    assert "running" in _texts(at) and at.button(key="lab_cancel")
    at.button(key="lab_cancel").click().run()
    assert worker.cancel_flag(workspace, job.id).exists()


def test_busy_worker_says_so(workspace, monkeypatch):
    def busy(kind, params):
        raise worker.JobBusy("a lab job is already running")

    monkeypatch.setattr(lab_service, "launch", busy)
    at = _lab_page()
    at.button(key="lab_start").click().run()
    assert not at.exception
    assert any("already running" in w.value for w in at.warning)


def test_running_lab_shows_progress_and_live_curves(workspace):
    add_lab(workspace, status="running")
    at = _lab_page()
    assert not at.exception
    assert at.button(key="lab_cancel") and at.get("progress")
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("Gradient conflict" in t for t in titles)
    assert sum("Dev metric" in t for t in titles) == len(TASKS)  # one figure per task, a line per run
    assert not [w for w in at.multiselect if w.key == "lab_strategies"]  # one lab at a time


def test_finished_lab_shows_table_best_and_figures(workspace):
    add_lab(workspace, result=lab_result(all_runs()))
    at = _lab_page()
    assert not at.exception
    table = frame(at, "Δm% (± std)", "cost per step ×equal")
    assert table["strategy"].tolist()[0] == "★ pcgrad"
    assert [s for s in table["strategy"] if s.startswith("★")] == ["★ pcgrad"]
    assert table.loc[table["strategy"] == BASELINE, "Δm% (± std)"].item() == "baseline"
    assert set(TASKS) <= set(table.columns) and "±" in table["sentiment"][0]
    assert any("pcgrad leads equal" in s.value.replace("\\", "") for s in at.success)
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("Gradient conflict" in t for t in titles) and any("Task affinity" in t for t in titles)
    assert sum("Dev metric" in t for t in titles) == len(TASKS)
    assert "Best split into 2 groups" in _texts(at) and "Best split into 3 groups" in _texts(at)
    assert any(c.value == "tensorboard --logdir /tmp/ws/lab/1/tensorboard" for c in at.code)
    assert at.multiselect(key="lab_strategies")  # the form for the next experiment is below


def test_recipe_and_train_buttons(workspace, monkeypatch):
    from mtl_core.train.recipe import load_recipe, with_recipe

    launched = []
    monkeypatch.setattr(lab_service, "launch", lambda kind, params: launched.append((kind, params)) or 99)
    add_lab(workspace, result=lab_result(all_runs()))
    at = _lab_page()
    assert at.selectbox(key="lab_adopt_strategy").value == "pcgrad"  # the best one first
    assert BASELINE not in at.selectbox(key="lab_adopt_strategy").options
    assert load_recipe(workspace) is None
    at.button(key="lab_recipe").click().run()
    assert not at.exception
    assert load_recipe(workspace) == {"source": "pcgrad", "train": {"batching": "all", "aggregator": "pcgrad"},
                                      "model": {}}
    assert with_recipe(workspace, {"steps": 10}, {})[0] == {"batching": "all", "aggregator": "pcgrad", "steps": 10}
    assert any("default recipe" in s.value for s in at.success)
    at.selectbox(key="lab_adopt_strategy").set_value("upgrad")
    at.button(key="lab_train").click().run()
    assert not at.exception
    assert launched == [("lab_train", {"strategy": "upgrad", "budget": "default"})]
    assert any("job 99" in s.value for s in at.success)


def test_failed_lab_shows_its_error_and_the_runs_that_finished(workspace):
    runs = [a_run(BASELINE, 0), a_run("equal", 0), a_run("pcgrad", 0, status="failed")]
    add_lab(workspace, status="failed", result=lab_result(runs), message="RuntimeError: out of memory")
    at = _lab_page()
    assert not at.exception
    assert any("out of memory" in e.value for e in at.error)
    runs_table = frame(at, "run", "status")
    assert runs_table["status"].tolist() == ["done", "done", "failed"]
    assert "2 of 3" in _texts(at)


def test_failed_lab_without_result(workspace):
    add_lab(workspace, status="failed", result=None, message="boom")
    at = _lab_page()
    assert not at.exception
    assert any("boom" in e.value for e in at.error)
    assert "No run finished" in _texts(at)


def test_earlier_labs_can_be_picked(workspace):
    first = add_lab(workspace, result=lab_result(all_runs()))
    add_lab(workspace, status="cancelled", message="cancelled by the user")
    at = _lab_page()
    assert not at.exception
    assert any("cancelled" in i.value for i in at.info)
    at.selectbox(key="lab_pick").set_value(first).run()
    assert not at.exception
    assert frame(at, "Δm% (± std)")["strategy"].tolist()[0] == "★ pcgrad"


def test_a_config_in_training_shows_its_progress_then_its_version(workspace):
    add_lab(workspace, result=lab_result(all_runs()))
    _, sessions = open_store(workspace)
    with sessions() as s:
        job_id = create_job(s, "lab_train", params={"strategy": "pcgrad", "budget": "quick"}).id
        start_job(s, job_id, pid=os.getpid())
        from mtl_core.store import update_job_progress

        update_job_progress(s, job_id, 4, total=10, message="training: step 4/10")
    at = _lab_page()
    assert not at.exception
    assert any("Training pcgrad: training: step 4/10" in p.proto.text.replace("\\", "") for p in at.get("progress"))
    assert at.button(key="lab_train_cancel")
    with sessions() as s:
        from mtl_core.store import finish_job

        # as the worker ends it: its message is only "finished", the version is in the handler's result
        finish_job(s, job_id, status="done", message="finished",
                   result={"version": "v0002", "strategy": "pcgrad", "budget": "quick", "test": {"average": 0.7}})
    at = _lab_page()
    assert any("v0002 trained with pcgrad (quick budget, test average 0.7000)" in i.value.replace("\\", "")
               and "Models page" in i.value for i in at.info)
    with sessions() as s:  # Cancel: train() registered the weights so far; the panel says so
        job = create_job(s, "lab_train", params={"strategy": "pcgrad", "budget": "default"})
        start_job(s, job.id, pid=os.getpid())
        finish_job(s, job.id, status="done", message="finished",
                   result={"version": "v0003", "strategy": "pcgrad", "budget": "default", "test": {"average": 0.4},
                           "stopped": "cancelled", "best_step": 38})
    at = _lab_page()
    said = [i.value.replace("\\", "") for i in at.info if "Last trained config" in i.value]
    assert said and "cancelled" in said[0] and "step 38" in said[0] and "v0003, inactive" in said[0]
