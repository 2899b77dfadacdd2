"""User strings reach Markdown-rendering elements as literal text (AppTest): imported labels and texts in
the adjudication radio, a batch file's name and columns, import errors, a username in a role message and
task-file labels in the result cards. Every string an element would render is parsed as Markdown: none
may become an image or a link, and the user's parts read back as typed."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from app.components.text import WORD_JOINER
from mtl_core.ops import auth
from mtl_core.store import add_annotation, add_texts
from tests.helpers import ROOT
from tests.helpers.markdown_render import live_markup, rendered

pytest.importorskip("markdown_it")  # the parser the checks render with

IMG = "![x](http://127.0.0.1:9/x.png)"
LABEL_KINDS = ("radio", "selectbox", "multiselect", "button", "checkbox", "text_input", "slider", "expander",
               "tabs", "download_button", "file_uploader")


def _shown(at: AppTest) -> list[str]:
    """Every string the page hands to Streamlit's Markdown renderer (HTML blocks excepted: see test_security)."""
    out = [m.value for m in at.markdown if not m.proto.allow_html]
    out += [e.value for kind in ("caption", "error", "warning", "info", "success", "title", "subheader")
            for e in getattr(at, kind)]
    for kind in LABEL_KINDS:
        for widget in at.get(kind):
            out += [getattr(widget, "label", "") or "", getattr(widget, "help", "") or ""]
    out += [option for radio in at.radio for option in radio.options]
    return [s for s in out if s]


def _live(at: AppTest) -> list[tuple[str, list[str]]]:
    """Strings of the page that would become an image or a link (our own texts have bold, never those)."""
    return [(s, live) for s in _shown(at) if (live := set(live_markup(s)) & {"img", "a", "autolink"})]


def _as_text(markdown: str) -> str:
    return rendered(markdown)[1].replace(WORD_JOINER, "")


def _review(name: str = "carol") -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages" / "review.py"), default_timeout=90).run()
    at.text_input(key="review_annotator_input").input(name).run()
    return at


def test_adjudication_options_show_imported_labels_and_texts_literally(sessions):
    with sessions() as s:
        label_text, span_text = add_texts(s, ["a plain text", f"{IMG} and Paris"], source="import")
        add_annotation(s, label_text, "sentiment", IMG, "alice")  # an imported label outside the task file
        add_annotation(s, label_text, "sentiment", "positive", "bob")
        add_annotation(s, span_text, "ner", [{"start": 0, "end": len(IMG), "label": "person"}], "alice")
        add_annotation(s, span_text, "ner", [], "bob")
    at = _review()
    at.selectbox(key="review_adj_task").set_value("sentiment").run()
    options = at.radio(key=f"review_adj_pick_sentiment_{label_text}").options
    assert [_as_text(o) for o in options] == [IMG, "positive"]  # shown as typed
    assert _live(at) == []
    at.selectbox(key="review_adj_task").set_value("ner").run()
    options = at.radio(key=f"review_adj_pick_ner_{span_text}").options
    assert [_as_text(o) for o in options] == [f"{IMG} [person]", "(no entities)"]
    assert not at.exception and _live(at) == []


def test_import_error_quotes_the_file_literally(sessions):
    at = _review()
    line = {"text": "t", "task": "sentiment", "kind": IMG, "annotator": "a", "created_at": "2024-01-01T00:00:00"}
    data = (json.dumps(line) + "\n").encode()
    at.file_uploader(key="review_import_file").set_value(("a.jsonl", data, "application/jsonl")).run()
    at.button(key="review_import_button").click().run()
    errors = [e.value for e in at.error]
    assert any(IMG in _as_text(e) for e in errors), errors  # the value is named, as text
    assert not at.exception and _live(at) == []


def test_batch_file_name_and_columns_are_literal(workspace):
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    csv = f"{IMG},id\nI loved it,1\nWhere is Paris?,2,extra\n".encode()
    at.file_uploader(key="batch_file").set_value((f"{IMG}.csv", csv, "text/csv")).run()
    assert not at.exception
    assert any(f"read from {IMG}.csv" in _as_text(c.value) for c in at.caption)
    assert _live(at) == []
    jsonl = b'{"' + IMG.replace('"', '\\"').encode() + b'": 1}\n'
    at.file_uploader(key="batch_file").set_value(("numbers.jsonl", jsonl, "application/jsonl")).run()
    assert any(IMG in _as_text(e.value) for e in at.error)  # "No column with text ... (columns: ...)"
    assert not at.exception and _live(at) == []


def test_username_in_a_role_message_is_literal(sessions, monkeypatch):
    monkeypatch.setenv(auth.ENV_TEAM_MODE, "1")
    with sessions() as s:
        auth.create_user(s, IMG, "correct horse battery", "annotator")
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=90).run()
    at.text_input(key="auth_login_username").input(IMG)
    at.text_input(key="auth_login_password").input("correct horse battery")
    at.button(key="auth_login_submit").click().run()
    at.switch_page("app_pages/train.py").run()
    notes = [_as_text(i.value) for i in at.info]
    assert any(f"You are signed in as {IMG} (annotator)" in n for n in notes), notes
    assert not at.exception and _live(at) == []


def _cards(label: str, task: str) -> None:
    from app.components.results import render_results  # AppTest.from_function runs this body alone
    from mtl_core.types import ClassPrediction, Prediction

    render_results(Prediction(text="t", tasks={task: ClassPrediction(label, 0.4, {label: 0.4, "b": 0.6}, 0.2)},
                              n_tokens=3, truncated=False), {}, 0.6)


def test_task_file_labels_and_names_in_result_cards_are_literal():
    at = AppTest.from_function(_cards, args=(IMG, "my_*task*_[x](http://h)"), default_timeout=60).run()
    assert not at.exception
    shown = {_as_text(m.value): live_markup(m.value) for m in at.markdown if not m.proto.allow_html}
    assert shown[IMG] == ["h3"]  # the label is the card's heading, shown as typed
    assert shown["My *task* [x](http://h)"] == ["strong"]  # the task title, in bold and nothing more
