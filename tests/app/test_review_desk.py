"""The review desk through AppTest: what gets queued from Predict, the data-set label beside the model's,
shortcuts on every action, bulk labelling, skipped items, and state that survives a reload or a page switch.

Rapid clicks and keystrokes need a real browser: tests/app/test_browser_review_rapid.py."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from app.review import service as rs
from mtl_core.store import history, set_dataset_labels, top_queue
from mtl_core.tasks import load_task_file
from mtl_core.types import ClassPrediction, Prediction, RegressionPrediction, Span, TokenPrediction
from tests.app.test_review_page import _as, _btn, _class_btn, _kinds, _page, _seed, _shown_text
from tests.helpers import ROOT

TASKS = load_task_file()
FILM = "The film was great fun and I would watch it again"
TOPIC_TEXT = "Shares in the car maker fell sharply after the results."


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=90).run()


def _class(label: str, p: float, other: str) -> ClassPrediction:
    return ClassPrediction(label, p, {label: p, other: 1 - p}, abs(2 * p - 1))


def test_send_to_review_sends_the_text_in_the_box_not_the_last_prediction(sessions):
    """Before: typing a new text and pressing Send without Predict stored the previous prediction's text."""
    at = _app()
    at.text_area(key="predict_text").input(FILM)
    at.button(key="predict_button").click().run()
    at.text_area(key="predict_text").input(TOPIC_TEXT)
    at.button(key="send_to_review").click().run()
    assert not at.exception
    with sessions() as s:
        queued = {q.text for q in top_queue(s, limit=100)}
    assert queued == {TOPIC_TEXT}
    assert any("Sent to review" in m.value for m in at.success)


def test_send_to_review_queues_only_the_tasks_that_deserve_a_look(sessions):
    """Before: every task was queued, so spam = ham at 0.99 showed up as "Model unsure"."""
    prediction = Prediction(FILM, {
        "sentiment": _class("positive", 0.55, "negative"), "spam": _class("ham", 0.99, "spam"),
        "sentiment_score": RegressionPrediction(1.5, -4, 4),
        "ner": TokenPrediction([Span(4, 8, "movie", "film", 0.41)], []),
    }, n_tokens=12, truncated=False)
    sent = rs.send_to_review(sessions, prediction, "v0001", TASKS, unsure_below=0.6)
    with sessions() as s:
        queued = {(q.task, q.reason) for q in top_queue(s, limit=100)}
    assert queued == {("sentiment", "uncertain"), ("ner", "uncertain")}
    assert sent.why == ("sentiment: uncertain (55%)", "ner: uncertain (41%)")


def test_a_model_vs_label_item_shows_the_data_set_label_and_keeps_it_with_one_key(sessions):
    """Before: the data-set label was shown nowhere and Accept/the editor defaulted to the model's answer."""
    ids = _seed(sessions, [(FILM, "sentiment", "model_vs_label", 0.9)])
    with sessions() as s:
        set_dataset_labels(s, [ids[FILM]], "sentiment", ["negative"])
    at = _as(_page(), "alice")
    shown = [m.value for m in at.markdown]
    assert "**Data set says**" in shown and "**Model says**" in shown and "### negative" in shown
    keep = _btn(at, "review_keep")
    assert keep.proto.shortcut == "k"
    keep.click().run()
    assert not at.exception
    assert _kinds(sessions, ids[FILM]) == [("label", "sentiment", "negative")]


def test_a_model_vs_label_ner_item_starts_from_the_data_set_spans(sessions):
    text = "Tom Hanks visited Paris today"
    gold = [{"start": 0, "end": 9, "label": "person"}, {"start": 18, "end": 23, "label": "geo-loc"}]
    ids = _seed(sessions, [(text, "ner", "model_vs_label", 0.9)])
    with sessions() as s:
        set_dataset_labels(s, [ids[text]], "ner", [gold])
    at = _as(_page(), "alice")
    assert at.session_state["review_spans_ner"] == gold  # Save label without a change keeps the data set's
    gold_html = [m.value for m in at.markdown if "mtl-ner" in m.value and ">person<" in m.value]
    assert gold_html and "geo-loc" in gold_html[0]  # the data set's spans, highlighted
    _btn(at, "review_keep").click().run()
    assert _kinds(sessions, ids[text]) == [("label", "ner", gold)]


def test_every_action_has_its_shortcut_and_a_class_is_one_key(sessions):
    _seed(sessions, [(FILM, "topic", "uncertain", 0.9)])
    at = _as(_page(), "alice")
    keys = {b.key: b.proto.shortcut for b in at.button if b.proto.shortcut}
    assert keys == {"review_class_0": "1", "review_class_1": "2", "review_class_2": "3", "review_class_3": "4",
                    "review_class_4": "5", "review_accept": "a", "review_keep": "k", "review_skip": "s",
                    "review_undo": "u", "review_next_task": "n"}
    assert _btn(at, "review_keep").proto.disabled  # no data-set label for this text
    at.button(key="review_next_task").click().run()
    assert at.selectbox(key="review_task_choice").value == "question_type"
    at.selectbox(key="review_task_choice").set_value("sentiment_score").run()
    assert _btn(at, "review_save").proto.shortcut == "ctrl+enter"


def test_skipped_items_are_listed_not_done_and_reopen(sessions):
    ids = _seed(sessions, [(FILM, "sentiment", "uncertain", 0.9), (TOPIC_TEXT, "topic", "uncertain", 0.5)])
    at = _as(_page(), "alice")
    _btn(at, "review_skip").click().run()
    assert "0 / 2 done · 1 skipped" in at.get("progress")[0].proto.text
    assert any("1 skipped" in c.value for c in at.caption)
    at.session_state["review_my_panel"] = True  # open the panel
    at.run()
    at.button(key=f"review_reopen_{ids[FILM]}_sentiment").click().run()
    assert FILM in _shown_text(at)
    _class_btn(at, "sentiment", "positive").click().run()
    assert _kinds(sessions, ids[FILM]) == [("skip", "sentiment", None), ("label", "sentiment", "positive")]
    assert "1 / 2 done · 0 skipped" in at.get("progress")[0].proto.text


def test_bulk_label_goes_to_near_identical_items_and_one_undo_takes_it_back(sessions):
    twins = [FILM, FILM + " ", "  " + FILM]  # the same tokens: cosine 1.0
    ids = _seed(sessions, [(t, "sentiment", "uncertain", 0.9 - 0.1 * i) for i, t in enumerate(twins)]
                + [(TOPIC_TEXT, "sentiment", "uncertain", 0.1)])
    at = _as(_page(), "alice")
    at.toggle(key="review_bulk_on").set_value(True).run()
    at.slider(key="review_bulk_threshold").set_value(1.0).run()
    members = next(d.value for d in at.dataframe if "similarity" in d.value.columns)
    assert sorted(members["text"]) == sorted(twins[1:])
    _class_btn(at, "sentiment", "negative").click().run()
    assert not at.exception
    assert all(_kinds(sessions, ids[t]) == [("label", "sentiment", "negative")] for t in twins)
    assert _kinds(sessions, ids[TOPIC_TEXT]) == [] and TOPIC_TEXT in _shown_text(at)
    _btn(at, "review_undo").click().run()
    assert all([k for k, *_ in _kinds(sessions, ids[t])] == ["label", "undo"] for t in twins)
    with sessions() as s:
        assert len({e.bulk_id for t in twins for e in history(s, ids[t])}) == 1


def test_annotator_name_survives_a_reload(sessions):
    _seed(sessions, [(FILM, "sentiment", "uncertain", 0.9)])
    at = _as(_page(), "alice")
    assert at.query_params["annotator"] == "alice"  # in the URL: a reload reads it back
    reloaded = AppTest.from_file(str(ROOT / "app_pages" / "review.py"), default_timeout=90)
    reloaded.query_params["annotator"] = "alice"
    reloaded.run()
    assert not reloaded.exception and reloaded.session_state["review_annotator"] == "alice"
    assert FILM in _shown_text(reloaded)


def test_predict_keeps_the_text_and_results_after_another_page(sessions):
    at = _app()
    at.text_area(key="predict_text").input(FILM)
    at.button(key="predict_button").click().run()
    at.switch_page("app_pages/data.py").run()
    at.switch_page("app_pages/predict.py").run()
    assert not at.exception
    assert at.text_area(key="predict_text").value == FILM
    assert any(m.value == "**Sentiment**" for m in at.markdown)  # the results are shown again


@pytest.mark.parametrize("value", [None, {"spans": "x"}, {"spans": [{"start": True, "end": 3, "label": "person"}]}])
def test_span_picker_values_no_edit_can_produce_are_refused(value):
    from app.components.span_picker import clean_spans

    if value is None:
        assert clean_spans(value, "Tom", ["person"]) is None
    else:
        with pytest.raises(ValueError):
            clean_spans(value, "Tom", ["person"])


def test_final_labels_export_one_row_per_text_after_undo(sessions):
    import csv
    import io
    import json

    from app.review import exchange_service

    formula = "=HYPERLINK(\"http://x\") loved the film"
    ids = _seed(sessions, [(formula, "sentiment", "uncertain", 0.9), (FILM, "sentiment", "uncertain", 0.8)])
    rs.record(sessions, ids[formula], "sentiment", "negative", "alice", "label", "uncertain")
    rs.record(sessions, ids[formula], "sentiment", "positive", "alice", "label", "uncertain")
    rs.record(sessions, ids[FILM], "sentiment", "negative", "alice", "label", "uncertain")
    rs.undo(sessions, "alice")  # FILM's label is gone: no row for it
    rows = list(csv.DictReader(io.StringIO(exchange_service.final_labels_csv(sessions, "sentiment").decode())))
    assert [(r["text"], r["label"], r["status"]) for r in rows] == [("'" + formula, "positive", "single")]
    [record] = [json.loads(line) for line in exchange_service.final_labels_jsonl(sessions, "sentiment").splitlines()]
    assert (record["text"], record["label"]) == (formula, "positive")  # JSONL keeps the text as it is
    at = _page()
    assert {b.label for b in at.get("download_button")} >= {"Final labels (CSV)", "Final labels (JSONL)"}


def test_a_click_from_a_browser_still_showing_the_previous_item_is_refused(sessions):
    """Streamlit runs a click with the arguments of the latest run: when the browser had not drawn that item
    yet (it echoes the token of the item it shows), the click is refused instead of labelling an unseen item."""
    ids = _seed(sessions, [(FILM, "sentiment", "uncertain", 0.9), (TOPIC_TEXT, "sentiment", "uncertain", 0.5)])
    at = _as(_page(), "alice")
    shown_before = at.text_input(key="review_shown").value
    _class_btn(at, "sentiment", "negative").click().run()
    assert TOPIC_TEXT in _shown_text(at) and at.text_input(key="review_shown").value != shown_before
    at.text_input(key="review_shown").set_value(shown_before)  # the browser still shows the first item
    _class_btn(at, "sentiment", "positive").click().run()
    assert _kinds(sessions, ids[TOPIC_TEXT]) == []  # never labelled behind the screen's back
    assert _kinds(sessions, ids[FILM]) == [("label", "sentiment", "negative")]
    assert any("for the item shown before" in w.value for w in at.warning)
    _class_btn(at, "sentiment", "positive").click().run()  # the browser now echoes the item it shows
    assert _kinds(sessions, ids[TOPIC_TEXT]) == [("label", "sentiment", "positive")]
