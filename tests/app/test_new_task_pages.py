"""A new task through the pages (AppTest): Data → New task with a labelled file, Review → New tasks labelling
(diverse first, then uncertain; refit in the background), and the Predict page answering it as few-shot."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from app.shared import task_service
from mtl_core.data.workspace_tasks import load_workspace_tasks
from mtl_core.review.new_task import store_rows
from mtl_core.serve.fewshot import load_heads
from mtl_core.store.annotations import current_labels
from mtl_core.tasks import TaskSpec
from tests.helpers import ROOT

EVIL = "<script>alert(1)</script> **bold** [x](javascript:alert(1))"
SPEC = TaskSpec(name="routing", kind="classification", labels=["urgent", "later"])


def _page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "app_pages" / f"{name}.py"), default_timeout=120).run()


def test_wizard_validates_and_creates_a_task_from_an_uploaded_file(workspace):
    from app.data import new_task_view

    at = AppTest.from_function(_wizard, default_timeout=120).run()
    assert not at.exception
    assert at.button(key="nt_create").disabled  # no name yet
    assert any("--keep-general 20" in c.value for c in at.caption)  # how to get a base that transfers better
    at.text_input(key="nt_name").input("bad name!").run()
    assert any("simple identifier" in w.value for w in at.warning)
    at.text_input(key="nt_name").input("routing").run()
    at.text_input(key="nt_labels").input("urgent, later").run()
    assert not at.warning
    # the upload widget cannot be driven by AppTest: the file's rows go through the same reader
    got = new_task_view.read_labelled(b"text,label\nserver down,urgent\nmug,later\nx,maybe\n", "f.csv", SPEC)
    assert [r for r, _ in got.rows] == ["server down", "mug"] and got.problems == [
        "line 4: label 'maybe' is not one of ['urgent', 'later']"]
    at.button(key="nt_create").click().run()
    assert not at.exception and any("Task routing created" in s.value for s in at.success)
    assert load_workspace_tasks(workspace).by_name("routing").labels == ["urgent", "later"]
    at.button(key="nt_create").click().run()
    assert any("already exists" in e.value for e in at.error)


def _wizard():
    from app.data.new_task_view import render_new_task

    render_new_task()


def _seed_task(sessions, labelled: list[tuple[str, str]], pool: list[str]) -> None:
    task_service.add_task(SPEC, str(task_service.services.workspace_home()))
    with sessions() as s:
        store_rows(s, SPEC.name, [*labelled, *[(t, None) for t in pool]], "import")


POOL = [f"ticket number {i}: {w}" for i, w in enumerate(["printer", "outage", "refund", "login", "coffee",
                                                          "crash", "invoice", "vpn", "desk", "alarm", EVIL])]


def test_review_new_tasks_labels_diverse_first_then_answers_on_predict(workspace, sessions):
    _seed_task(sessions, [("server down", "urgent"), ("nice mug", "later")], POOL)
    at = _page("review")
    at.text_input(key="review_annotator_input").input("alice").run()
    assert at.selectbox(key="nt_review_task").value == "routing"
    at.button(key="nt_review_start").click().run()
    assert not at.exception
    why = [c.value for c in at.caption if "Why this text" in c.value]
    assert why and "diverse" in why[0]  # one label per class is below the 2 a head needs: no head yet
    for label in (0, 1, 0):  # three labels: 2 per class, a head is fitted in the background
        at.button(key=f"nt_label_routing_{label}").click().run()
        assert not at.exception
    report = task_service.wait_for_refit(SPEC)
    assert report is not None and report.fitted and report.n_labels == 5
    with sessions() as s:
        assert {r.annotator for r in current_labels(s, "routing")} == {"import", "alice"}
    at.run()
    why = [c.value for c in at.caption if "Why this text" in c.value]
    assert why and "uncertain" in why[0]
    assert all("<script>" not in m.value for m in at.markdown)  # pool text shown as plain text only
    assert set(load_heads(workspace, "v0001")) == {"routing"}

    pred = _page("predict")
    pred.text_area(key="predict_text").input("the server is down again").run()
    pred.button(key="predict_button").click().run()
    assert not pred.exception
    shown = [m.value.replace("\\", "") for m in pred.markdown]  # md_literal escapes - and .
    assert any("few-shot" in m and "est. accuracy" in m for m in shown), shown


def test_no_new_task_and_no_model_say_what_to_do(workspace, empty_workspace):
    at = _page("review")
    at.text_input(key="review_annotator_input").input("alice").run()
    assert not at.exception
    assert any("No new task yet" in i.value or "trained model" in i.value for i in at.info)


@pytest.fixture(autouse=True)
def _no_leftover_refits():
    yield
    task_service._refits.clear()


def test_multilabel_new_task_is_labelled_with_a_multiselect(workspace, sessions):
    spec = TaskSpec(name="topics", kind="multilabel_classification", labels=["billing", "outage"])
    task_service.add_task(spec, str(task_service.services.workspace_home()))
    with sessions() as s:
        store_rows(s, "topics", [(t, None) for t in POOL[:4]], "import")
    at = _page("review")
    at.text_input(key="review_annotator_input").input("alice").run()
    at.selectbox(key="nt_review_task").set_value("topics").run()
    at.button(key="nt_review_start").click().run()
    [box] = [m for m in at.multiselect if m.key.startswith("nt_value_topics_")]
    box.set_value(["billing", "outage"]).run()
    at.button(key="nt_save_topics").click().run()
    assert not at.exception
    with sessions() as s:
        assert [r.value for r in current_labels(s, "topics")] == [["billing", "outage"]]
    assert [m.label for m in at.metric][2] == "Est. micro-F1 (few-shot)"  # multi-label tasks get few-shot heads


def test_more_texts_join_the_pool_once(workspace, sessions):
    from mtl_core.data.task_upload import read_texts
    from mtl_core.review.new_task import pool_size

    _seed_task(sessions, [], POOL[:3])
    got = read_texts(b"message\nnew one\n" + POOL[0].encode() + b"\n\n", "more.csv", "message")
    assert task_service.add_pool_texts(SPEC, got) == 2
    with sessions() as s:
        assert pool_size(s, "routing") == 4  # the repeated text is stored once


def test_after_a_promotion_predict_refits_the_new_tasks_head(workspace, sessions):
    from tests.helpers.rounds import add_round_version

    _seed_task(sessions, [("server down", "urgent"), ("fire", "urgent"), ("mug", "later"), ("menu", "later")], [])
    task_service.start_refit(SPEC)
    assert task_service.wait_for_refit(SPEC).fitted and set(load_heads(workspace, "v0001")) == {"routing"}
    from mtl_core.model.registry import Registry

    Registry(workspace).activate(add_round_version(workspace))  # v0002: the v0001 head no longer applies
    pred = _page("predict")
    assert not pred.exception
    assert task_service.wait_for_refit(SPEC).fitted
    assert set(load_heads(workspace, "v0002")) == {"routing"}
    pred.text_area(key="predict_text").input("the server is down again").run()
    pred.button(key="predict_button").click().run()
    assert any("few" in m.value and "shot" in m.value for m in pred.markdown)


def test_a_task_can_be_created_before_any_model_exists(empty_workspace):
    at = AppTest.from_function(_wizard, default_timeout=120).run()
    at.text_input(key="nt_name").input("routing").run()
    at.text_input(key="nt_labels").input("urgent, later").run()
    at.button(key="nt_create").click().run()
    assert not at.exception and any("Task routing created" in s.value for s in at.success)
    assert load_workspace_tasks(empty_workspace).by_name("routing").labels == ["urgent", "later"]


def test_a_broken_workspace_task_file_never_breaks_the_pages(workspace):
    (workspace / "tasks.yaml").write_text("tasks: [ {name: 'x', kind: nope", encoding="utf-8")
    pred = _page("predict")
    pred.text_area(key="predict_text").input("a fine film").run()
    pred.button(key="predict_button").click().run()
    assert not pred.exception and any("Sentiment" in m.value for m in pred.markdown)
    data = _page("data")
    assert not data.exception and any("task file could not be read" in w.value for w in data.warning)
    review = _page("review")
    review.text_input(key="review_annotator_input").input("alice").run()
    assert not review.exception
