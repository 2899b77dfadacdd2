"""The Review page through streamlit's AppTest, plus its services (send to review, export/import)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from app.review import agreement_service, editor_view, exchange_service
from app.review import service as rs
from app.shared import auth_view
from mtl_core.ops import auth, worker
from mtl_core.store import (
    add_annotation,
    add_texts,
    create_job,
    history,
    load_predictions,
    start_job,
    top_queue,
    update_job_progress,
    upsert_queue_items,
)
from mtl_core.store.db import open_store
from mtl_core.store.models import AnnotationEvent
from mtl_core.tasks import load_task_file
from tests.helpers import ROOT

TASKS = load_task_file()

EVIL = "I loved it <script>alert(1)</script> <img src=x onerror=alert(1)>"
TOPIC_TEXT = "Shares in the car maker fell sharply after the results."
NER_TEXT = "Tom Hanks visited Paris today"


@pytest.fixture
def sessions(workspace):
    engine, factory = open_store(workspace)
    yield factory
    engine.dispose()


def _seed(sessions, items: list[tuple[str, str, str, float]]) -> dict[str, int]:
    """(text, task, reason, score) -> queue items; returns text -> id."""
    with sessions() as s:
        ids = add_texts(s, [t for t, *_ in items], source="predict")
        upsert_queue_items(s, [
            {"text_id": i, "task": task, "reason": reason, "score": score, "detail": f"{task}: seeded {reason}"}
            for i, (_, task, reason, score) in zip(ids, items)
        ], pool="predict", model_version="v0001")
    return {t: i for (t, *_), i in zip(items, ids)}


def _page() -> AppTest:
    return AppTest.from_file(str(ROOT / "app_pages" / "review.py"), default_timeout=90).run()


def _as(at: AppTest, name: str) -> AppTest:
    at.text_input(key="review_annotator_input").input(name).run()
    assert not at.exception
    return at


def _btn(at: AppTest, name: str):
    """The shown item's `name` button (review_accept, review_class_0, ...)."""
    return at.button(key=name)


def _class_btn(at: AppTest, task: str, label: str):
    return _btn(at, f"review_class_{TASKS.by_name(task).labels.index(label)}")


def _shown_text(at: AppTest) -> str:
    return next(m.value for m in at.markdown if "mtl-review-text" in m.value)


def _kinds(sessions, text_id: int) -> list[tuple[str, str, object]]:
    with sessions() as s:
        return [(e.kind, e.task, e.value) for e in history(s, text_id)]


def test_annotator_asked_first_and_text_escaped(sessions):
    _seed(sessions, [(EVIL, "sentiment", "uncertain", 0.9)])
    at = _page()
    assert not at.exception and at.info
    with pytest.raises(KeyError):
        _btn(at, "review_accept")  # no labelling before a name is given
    at = _as(at, "  alice  ")
    assert at.session_state["review_annotator"] == "alice"
    shown = _shown_text(at)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown and "<script>" not in shown and "<img" not in shown
    assert _btn(at, "review_accept") and _class_btn(at, "sentiment", "negative")
    assert "0 / 1 done" in at.get("progress")[0].proto.text


def test_label_then_undo_brings_the_item_back(sessions):
    ids = _seed(sessions, [(EVIL, "sentiment", "uncertain", 0.9), (TOPIC_TEXT, "topic", "uncertain", 0.5)])
    at = _as(_page(), "alice")
    _class_btn(at, "sentiment", "negative").click().run()
    assert not at.exception
    assert _kinds(sessions, ids[EVIL]) == [("label", "sentiment", "negative")]
    assert "Shares in the car maker" in _shown_text(at)  # next item
    _btn(at, "review_undo").click().run()
    assert [k for k, *_ in _kinds(sessions, ids[EVIL])] == ["label", "undo"]
    assert "I loved it" in _shown_text(at)  # back to the undone item
    assert any("Undid your label" in i.value for i in at.info)
    with sessions() as s:
        event = history(s, ids[EVIL])[0]
        assert event.annotator == "alice" and event.reason == "uncertain"
        assert [q.text_id for q in top_queue(s, annotator="alice")][0] == ids[EVIL]


def test_accept_skip_and_progress(sessions, tiny_predictor):
    ids = _seed(sessions, [(EVIL, "sentiment", "uncertain", 0.9), (TOPIC_TEXT, "topic", "contradiction", 0.8)])
    at = _as(_page(), "bob")
    _btn(at, "review_accept").click().run()
    model_label = tiny_predictor.predict([EVIL])[0].tasks["sentiment"].label
    assert _kinds(sessions, ids[EVIL]) == [("accept", "sentiment", model_label)]
    _btn(at, "review_skip").click().run()
    assert _kinds(sessions, ids[TOPIC_TEXT]) == [("skip", "topic", None)]
    assert not at.exception
    assert "1 / 2 done · 1 skipped" in at.get("progress")[0].proto.text  # a skipped item is not done
    assert any("Nothing left" in m.value for m in at.success)


def test_filters_by_task_and_reason(sessions):
    _seed(sessions, [(EVIL, "sentiment", "uncertain", 0.9), (TOPIC_TEXT, "topic", "contradiction", 0.5)])
    at = _as(_page(), "alice")
    at.selectbox(key="review_filter_task").set_value("topic").run()
    assert "Shares in the car maker" in _shown_text(at)
    assert at.selectbox(key="review_task_choice").value == "topic"
    at.selectbox(key="review_filter_task").set_value(None).run()
    at.selectbox(key="review_filter_reason").set_value("uncertain").run()
    assert "I loved it" in _shown_text(at)
    at.selectbox(key="review_filter_reason").set_value("model_vs_label").run()
    assert not at.exception and any("queue is empty" in i.value for i in at.info)


def test_ner_span_picker_edit_is_checked_then_saved(sessions):
    """The span picker (a custom component: its JS runs only in a browser, see test_browser_review_keys.py)
    returns spans; the page checks them, keeps them as the answer, and Save label writes them."""
    ids = _seed(sessions, [(NER_TEXT, "ner", "uncertain", 0.9)])
    at = _as(_page(), "alice")
    assert at.selectbox(key="review_task_choice").value == "ner" and not at.exception
    spec, state = TASKS.by_name("ner"), {}
    edit = {"spans": [{"start": 18, "end": 23, "label": "geo-loc"}, {"start": 0, "end": 9, "label": "person"}],
            "rev": "a:1"}
    assert editor_view.apply_picker_value(spec, NER_TEXT, edit, state)
    assert state["review_spans_ner"] == [{"start": 0, "end": 9, "label": "person"},
                                         {"start": 18, "end": 23, "label": "geo-loc"}]
    assert not editor_view.apply_picker_value(spec, NER_TEXT, edit, state)  # the same edit again: nothing new
    for bad in ({"spans": [{"start": 0, "end": 99, "label": "person"}], "rev": "b"},
                {"spans": [{"start": 0, "end": 9, "label": "<img src=x>"}], "rev": "c"},
                {"spans": [{"start": 0, "end": 9, "label": "person"}, {"start": 4, "end": 12, "label": "person"}],
                 "rev": "d"}):
        with pytest.raises(ValueError):
            editor_view.apply_picker_value(spec, NER_TEXT, bad, state)
    at.session_state["review_spans_ner"] = state["review_spans_ner"][1:]
    _btn(at.run(), "review_save").click().run()
    assert not at.exception
    assert _kinds(sessions, ids[NER_TEXT]) == [("label", "ner", [{"start": 18, "end": 23, "label": "geo-loc"}])]


def test_regression_label_on_another_task_keeps_the_item(sessions):
    ids = _seed(sessions, [(EVIL, "sentiment", "uncertain", 0.9)])
    at = _as(_page(), "alice")
    at.selectbox(key="review_task_choice").set_value("sentiment_score").run()
    at.slider(key="review_value_sentiment_score").set_value(-2.5).run()
    _btn(at, "review_save").click().run()
    assert _kinds(sessions, ids[EVIL]) == [("label", "sentiment_score", -2.5)]
    assert "I loved it" in _shown_text(at)  # the sentiment item is still open


def test_kappa_and_adjudication(sessions):
    texts = [f"text number {i}" for i in range(4)]
    with sessions() as s:
        ids = add_texts(s, texts, source="predict")
        for i, tid in enumerate(ids):
            add_annotation(s, tid, "sentiment", "positive" if i % 2 else "negative", "alice")
            add_annotation(s, tid, "sentiment", "positive" if i in (1, 2) else "negative", "bob")
    at = _as(_page(), "carol")
    table = next(d.value for d in at.dataframe if "kappa" in d.value.columns)
    row = table[(table["task"] == "sentiment")].iloc[0]
    assert (row["annotator A"], row["annotator B"], row["shared texts"]) == ("alice", "bob", 4)
    assert row["kappa"] == pytest.approx(0.0)  # 2 of 4 agree, exactly what chance predicts
    at.selectbox(key="review_adj_task").set_value("sentiment").run()
    conflicted = [ids[2], ids[3]]
    for tid in conflicted:
        assert at.radio(key=f"review_adj_pick_sentiment_{tid}")
    conflict = next(c for c in agreement_service.open_conflicts(sessions, load_task_file().by_name("sentiment"))
                    if c.text_id == ids[2])
    chosen = conflict.options[1]
    assert chosen == "positive"  # options in annotator order: alice said negative, bob positive
    at.radio(key=f"review_adj_pick_sentiment_{ids[2]}").set_value(1).run()
    at.button(key=f"review_adj_save_sentiment_{ids[2]}").click().run()
    assert not at.exception
    with sessions() as s:
        last = history(s, ids[2])[-1]
    assert (last.annotator, last.reason, last.value) == ("carol", "adjudication", chosen)
    with pytest.raises(KeyError):
        at.button(key=f"review_adj_save_sentiment_{ids[2]}")  # settled: no longer offered
    assert at.button(key=f"review_adj_save_sentiment_{ids[3]}")


def test_job_panel_and_busy_message(sessions, monkeypatch):
    with sessions() as s:
        add_texts(s, ["one text"], source="predict")
        job_id = create_job(s, "score_pool", {"pool": "predict"}).id
        start_job(s, job_id)
        update_job_progress(s, job_id, 40, 100, "scored 40/100 texts")

    def busy(*_a, **_k):
        raise worker.JobBusy("a score_pool job is already running")

    monkeypatch.setattr(worker, "launch", busy)
    at = _page()
    at.radio(key="review_pool_kind").set_value("predict").run()
    assert "scored 40/100 texts" in at.get("progress")[-1].proto.text
    assert at.button(key="review_cancel_job")
    at.button(key="review_score_button").click().run()
    assert not at.exception and any("already running" in w.value for w in at.warning)
    at.button(key="review_cancel_job").click().run()
    assert worker.cancel_flag(worker.workspace_dir(), job_id).exists()


def test_export_import_round_trip(sessions, tmp_path):
    ids = _seed(sessions, [(NER_TEXT, "ner", "uncertain", 0.9), (EVIL, "sentiment", "uncertain", 0.8)])
    spans = [{"start": 0, "end": 9, "label": "person"}, {"start": 18, "end": 23, "label": "geo-loc"}]
    rs.record(sessions, ids[NER_TEXT], "ner", spans, "alice", "label", "uncertain")
    rs.record(sessions, ids[EVIL], "sentiment", "positive", "alice", "label", "uncertain")
    rs.undo(sessions, "alice")
    rs.record(sessions, ids[EVIL], "sentiment", "negative", "bob", "label", "uncertain")
    data = exchange_service.export_jsonl_bytes(sessions)
    records = [json.loads(line) for line in data.decode().splitlines()]
    assert [r["kind"] for r in records] == ["label", "label", "undo", "label"]
    conll = exchange_service.export_conll_bytes(sessions, "ner").decode()
    assert conll.splitlines()[:4] == ["Tom\tB-person", "Hanks\tI-person", "visited\tO", "Paris\tB-geo-loc"]
    assert exchange_service.import_jsonl_bytes(sessions, data, TASKS) == (0, 4)  # same database: nothing new
    other_engine, other = open_store(tmp_path / "other")
    assert exchange_service.import_jsonl_bytes(other, data, TASKS) == (4, 4)
    assert exchange_service.import_jsonl_bytes(other, data, TASKS) == (0, 4)
    assert exchange_service.export_jsonl_bytes(other) == data
    other_engine.dispose()
    at = _page()  # the page offers the downloads and the import
    assert at.get("download_button") and at.button(key="review_import_button")


def test_import_through_the_page(sessions, tmp_path):
    ids = _seed(sessions, [(EVIL, "sentiment", "uncertain", 0.9)])
    rs.record(sessions, ids[EVIL], "sentiment", "positive", "alice", "label", "uncertain")
    data = exchange_service.export_jsonl_bytes(sessions)
    at = _page()
    at.file_uploader(key="review_import_file").set_value(("a.jsonl", data, "application/jsonl")).run()
    at.button(key="review_import_button").click().run()
    assert any("Imported 0 new event(s); 1 of 1 were already here" in m.value for m in at.success)


def _import_on_page(at: AppTest, data: bytes) -> AppTest:
    at.file_uploader(key="review_import_file").set_value(("a.jsonl", data, "application/jsonl")).run()
    at.button(key="review_import_button").click().run()
    assert not at.exception
    return at


def _events(sessions) -> list[tuple]:
    with sessions() as s:
        query = select(AnnotationEvent.task, AnnotationEvent.value, AnnotationEvent.annotator,
                       AnnotationEvent.source_annotator).order_by(AnnotationEvent.created_at, AnnotationEvent.id)
        return [tuple(row) for row in s.execute(query)]


def test_import_checks_tasks_and_values_against_the_task_file(sessions):
    """Before, an unknown task or a label no task has was stored as if valid."""
    good = {"text": EVIL, "task": "sentiment", "kind": "label", "value": "positive", "annotator": "alice",
            "created_at": "2024-01-01T00:00:00"}
    bad = [good, {**good, "task": "sentimnet"}, {**good, "value": "<b>great</b>"}]
    at = _import_on_page(_page(), "\n".join(json.dumps(r) for r in bad).encode())
    shown = "\n".join(e.value.replace("\\", "") for e in at.error)  # md_literal escapes punctuation
    assert "nothing was added" in shown and "2 of 3 line(s) are invalid" in shown
    assert "line 2: unknown task 'sentimnet'" in shown and "line 3: value for task 'sentiment'" in shown
    assert _events(sessions) == []


def test_team_mode_import_records_the_signed_in_reviewer(sessions, monkeypatch, tmp_path):
    """Team mode: imported events are recorded under the signed-in user; the file's annotator is provenance."""
    other_engine, other = open_store(tmp_path / "other")
    rs.record(other, _seed(other, [(EVIL, "sentiment", "uncertain", 0.9)])[EVIL], "sentiment", "positive",
              "alice", "label", "uncertain")
    data = exchange_service.export_jsonl_bytes(other)
    other_engine.dispose()
    monkeypatch.setenv(auth.ENV_TEAM_MODE, "1")
    with sessions() as s:
        auth.create_user(s, "rita", "correct horse battery", "reviewer")
    at = AppTest.from_file(str(ROOT / "app_pages" / "review.py"), default_timeout=90)
    at.session_state[auth_view.USER] = "rita"
    at = _import_on_page(at.run(), data)
    assert any("Imported 1 new event(s)" in m.value for m in at.success)
    assert _events(sessions) == [("sentiment", "positive", "rita", "alice")]


def test_import_of_a_deeply_nested_file_names_the_line(sessions):
    at = _page()
    data = b'{"text": "t"}\n' + b"[" * 100_000 + b"\n"
    at.file_uploader(key="review_import_file").set_value(("a.jsonl", data, "application/jsonl")).run()
    at.button(key="review_import_button").click().run()
    assert not at.exception
    shown = [e.value.replace("\\", "") for e in at.error]  # md_literal escapes punctuation
    assert any("nothing was added" in e and "line 2: nested too deeply" in e for e in shown), shown


def test_pool_upload_of_a_deeply_nested_file_is_a_message(sessions):
    at = _page()
    at.radio(key="review_pool_kind").set_value("upload").run()
    data = b'{"text": "fine"}\n' + b'{"a": ' * 100_000 + b"\n"
    at.file_uploader(key="review_pool_upload").set_value(("pool.jsonl", data, "application/jsonl")).run()
    assert not at.exception
    assert any("nested too deeply" in w.value for w in at.warning)
    assert any("1 text(s)" in c.value for c in at.caption)


def test_send_to_review_service(sessions, tiny_predictor):
    prediction = tiny_predictor.predict([EVIL])[0]
    sent = rs.send_to_review(sessions, prediction, "v0001", tiny_predictor.task_file)
    again = rs.send_to_review(sessions, prediction, "v0001", tiny_predictor.task_file)
    assert again.text_id == sent.text_id and sent.queued >= 4  # an uncertainty item per classification task
    with sessions() as s:
        stored = load_predictions(s, [sent.text_id], "v0001")[0]
        queue = top_queue(s, limit=100)
    assert stored.text == EVIL and set(stored.tasks) == set(tiny_predictor.task_names)
    assert stored.tasks["sentiment"].label == prediction.tasks["sentiment"].label
    assert len(queue) == sent.queued and {q.pool for q in queue} == {"predict"}
    assert {q.reason for q in queue} <= {"uncertain", "contradiction"}


def test_send_to_review_from_the_predict_page(sessions):
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=90).run()
    at.text_area(key="predict_text").input(EVIL)
    at.button(key="predict_button").click().run()
    at.button(key="send_to_review").click().run()
    assert not at.exception
    assert any("Sent to review" in m.value for m in at.success)
    with sessions() as s:
        queue = top_queue(s, limit=100)
    assert queue and {q.text for q in queue} == {EVIL}
