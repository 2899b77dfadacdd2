"""The Predict page through streamlit's AppTest, plus the batch service and the HTML escaping helper."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from streamlit.testing.v1 import AppTest

from app.components.html import esc, esc_text, ner_html, saliency_html
from app.predict import batch, batch_service
from app.shared import services
from mtl_core.model.registry import Registry
from mtl_core.ops import worker
from mtl_core.serve.batch import task_kinds
from mtl_core.serve.predictor import Predictor
from mtl_core.store import create_job, start_job, update_job_progress
from mtl_core.types import Span
from tests.helpers import ROOT
from tests.helpers.workspace import register_copy

TASKS = ["sentiment", "sentiment_score", "topic", "question_type", "spam", "ner"]
TITLES = ["**Sentiment**", "**Sentiment score**", "**Topic**", "**Question type**", "**Spam**"]
EVIL = ("Paris is lovely <script>alert(1)</script> <img src=x onerror=alert(1)> [click](javascript:alert(2)) "
        '<a href="javascript:alert(3)">x</a>')
OTHER_PAGES = ["app_pages/review.py", "app_pages/train.py", "app_pages/models.py", "app_pages/data.py"]


@pytest.fixture
def forward_calls(monkeypatch) -> list[int]:
    """Counts Predictor.predict calls (one per forward over a list of texts)."""
    calls: list[int] = []
    original = Predictor.predict

    def spy(self, texts, *args, **kwargs):
        calls.append(1)
        return original(self, texts, *args, **kwargs)

    monkeypatch.setattr(Predictor, "predict", spy)
    return calls


def _app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)  # generous: CI boxes are shared
    return at.run()


@pytest.fixture
def saliency_calls(monkeypatch) -> list[tuple[str, str]]:
    """Counts saliency computations (the backward pass behind the Saliency tab) as (task, method)."""
    calls: list[tuple[str, str]] = []
    original = services.saliency

    def spy(predictor, text, task, *args, method="grad_x_input", **kwargs):
        calls.append((task, method))
        return original(predictor, text, task, *args, method=method, **kwargs)

    monkeypatch.setattr(services, "saliency", spy)
    return calls


def _predict(at: AppTest, text: str) -> AppTest:
    at.text_area(key="predict_text").input(text)
    at.button(key="predict_button").click()
    return at.run()


def _explain(at: AppTest, tab: str | None = "Attention", open_: bool = True) -> AppTest:
    """Open (or collapse) the stateful "Explain this prediction" expander and pick a tab, as a click would:
    AppTest has no expander/tab actions, but both are widgets whose state lives under their keys."""
    at.session_state["explain_expander"] = open_
    if tab is not None and open_:
        at.session_state["explain_tabs"] = tab
    return at.run()


def _keys(at: AppTest) -> set[str]:
    return {w.key for w in [*at.selectbox, *at.checkbox] if w.key}


EXPLAIN_KEYS = {"explain_hide_specials", "explain_layer", "explain_head", "saliency_task", "saliency_method"}


def _markdown(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def test_predict_shows_every_task(workspace):
    at = _predict(_app(), "Tom Hanks visited London and loved the new Apple store.")
    assert not at.exception
    md = _markdown(at)
    for title in TITLES + ["**NER**"]:
        assert any(m.startswith(title) for m in md), title
    assert any('class="mtl-ner"' in m for m in md)
    assert len(at.get("plotly_chart")) >= 5  # four probability bars + the gauge (explain panel collapsed)
    captions = " ".join(c.value for c in at.caption)
    assert "v0001" in captions and "ms" in captions and "CPU" in captions


def test_a_task_that_does_not_apply_is_greyed_and_still_expandable(empty_workspace, tiny_checkpoint, tmp_path):
    """The model says topic does not apply (p=0.0067): its card is greyed out, says so, and keeps its answer
    in a collapsed expander; every other task renders as before."""
    from tests.helpers.applicability import checkpoint_where

    register_copy(empty_workspace, checkpoint_where(tiny_checkpoint, tmp_path / "ck", "topic"))
    at = _predict(_app(), "Tom Hanks visited London and loved the new Apple store.")
    assert not at.exception
    captions = [c.value for c in at.caption]
    assert [c for c in captions if "not applicable" in c] == ["not applicable here (p=0.01)"]
    style = [m for m in _markdown(at) if m.startswith("<style>")]
    assert len(style) == 1 and ".st-key-card_topic{" in style[0] and "opacity:.5" in style[0]
    assert "card_sentiment" not in style[0]
    [answer] = [e for e in at.expander if e.label == "Answer anyway"]
    inside = [m.value for m in answer.markdown]
    assert any(m.startswith("### ") for m in inside)  # the topic's label, still there
    assert not any(m.startswith("**Topic**") for m in inside)  # the title stays outside, above it
    assert any(m.startswith("**Topic**") for m in _markdown(at))
    for title in ("**Sentiment**", "**Question type**", "**Spam**"):
        assert any(m.startswith(title) for m in _markdown(at)), title


def test_without_applicability_every_task_applies(workspace):
    at = _predict(_app(), "Tom Hanks visited London and loved the new Apple store.")
    assert not any("not applicable" in c.value for c in at.caption)
    assert not any(m.startswith("<style>") for m in _markdown(at))
    assert "Answer anyway" not in [e.label for e in at.expander]


def test_selectors_do_not_rerun_the_forward(workspace, forward_calls):
    at = _explain(_predict(_app(), "Is this the best pizza in Naples?"))
    assert len(forward_calls) == 1
    at.selectbox(key="explain_layer").set_value(0).run()
    at.selectbox(key="explain_head").set_value(1).run()
    at.checkbox(key="explain_hide_specials").uncheck().run()
    for tab in ("All heads", "Rollout", "Saliency"):
        _explain(at, tab)
        assert not at.exception, tab
    at.selectbox(key="saliency_task").set_value("ner").run()
    at.selectbox(key="saliency_method").set_value("integrated_gradients").run()
    at.slider(key="unsure_threshold").set_value(0.9).run()
    assert not at.exception
    assert len(forward_calls) == 1
    _predict(at, "A different text now.")
    assert len(forward_calls) == 2


def test_explain_panel_is_lazy(workspace, forward_calls, saliency_calls):
    """Collapsed: nothing inside the expander runs (no saliency, no explain widgets or charts); the
    saliency runs once, only with the Saliency tab open; selectors keep their values while hidden."""
    at = _predict(_app(), "Is this the best pizza in Naples?")
    charts = len(at.get("plotly_chart"))
    assert [e.label for e in at.expander] == ["Explain this prediction"]
    assert not _keys(at) & EXPLAIN_KEYS
    at.slider(key="unsure_threshold").set_value(0.9).run()  # reruns with the panel collapsed
    assert saliency_calls == [] and not at.exception

    _explain(at, "Attention")  # open: the attention tab only, from the cached forward
    assert _keys(at) & EXPLAIN_KEYS == {"explain_hide_specials", "explain_layer", "explain_head"}
    assert len(at.get("plotly_chart")) == charts + 1
    at.selectbox(key="explain_layer").set_value(0).run()
    for tab in ("All heads", "Rollout"):
        _explain(at, tab)
        assert "explain_layer" not in _keys(at) and not at.exception
    assert saliency_calls == []

    _explain(at, "Saliency")
    assert saliency_calls == [("sentiment", "grad_x_input")]
    assert _keys(at) & EXPLAIN_KEYS == {"explain_hide_specials", "saliency_task", "saliency_method"}
    at.checkbox(key="explain_hide_specials").uncheck().run()  # a rerun with the tab still open: cached
    assert len(saliency_calls) == 1
    at.selectbox(key="saliency_task").set_value("ner").run()
    assert saliency_calls[1:] == [("ner", "grad_x_input")]

    _explain(at, "Attention")
    assert at.selectbox(key="explain_layer").value == 0  # kept while its tab was hidden
    assert at.checkbox(key="explain_hide_specials").value is False
    _explain(at, open_=False)
    assert not _keys(at) & EXPLAIN_KEYS and len(at.get("plotly_chart")) == charts
    _explain(at, "Saliency")
    assert at.selectbox(key="saliency_task").value == "ner"  # kept while the panel was collapsed
    assert len(saliency_calls) == 2 and len(forward_calls) == 1 and not at.exception


def test_empty_input_warns_without_predicting(workspace, forward_calls):
    at = _predict(_app(), "   \n ")
    assert any("empty" in w.value for w in at.warning)
    assert not any(m.startswith("**Sentiment**") for m in _markdown(at))
    assert forward_calls == []


def test_user_text_is_escaped(workspace):
    at = _explain(_predict(_app(), EVIL), "Saliency")  # the saliency chips quote the tokens too
    html_blocks = [m for m in at.markdown if m.proto.allow_html]
    assert len(html_blocks) >= 2, "the NER highlight and the saliency chips are expected to be HTML"
    joined = " ".join(m.value for m in html_blocks)
    assert "<script" not in joined and "<img" not in joined and "<a " not in joined
    ner = next(m.value for m in html_blocks if 'class="mtl-ner"' in m.value)
    assert _visible_text(ner) == EVIL  # what the browser shows is exactly the typed text


def _visible_text(fragment: str) -> str:
    """Text a browser would show for the NER block, minus the entity-type <sub> labels."""
    out, depth = [], [0]

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            depth[0] += tag == "sub"

        def handle_endtag(self, tag):
            depth[0] -= tag == "sub"

        def handle_data(self, data):
            if not depth[0]:
                out.append(data)

    Parser(convert_charrefs=True).feed(fragment)
    return "".join(out)


def test_examples_fill_the_text_area(workspace):
    at = _app()
    name = at.selectbox(key="example_choice").options[2]
    at.selectbox(key="example_choice").set_value(name).run()
    assert at.text_area(key="predict_text").value.strip()


def test_long_text_reports_truncation(workspace):
    at = _predict(_app(), "The film was long. " * 1200)  # > 20,000 characters
    assert not at.exception
    assert any("read only the first" in i.value for i in at.info)
    assert any(m.startswith("**Sentiment**") for m in _markdown(at))


def test_no_model_shows_training_instructions(empty_workspace):
    at = _app()
    assert not at.exception
    text = " ".join(i.value for i in at.info)
    assert "python -m mtl_core train --quick" in text and "python -m mtl_core train" in text


def test_broken_active_model_falls_back_with_warning(workspace, tiny_checkpoint):
    info = register_copy(workspace, tiny_checkpoint, note="second", activate=True)
    (Registry(workspace).path_of(info.id) / "heads.safetensors").write_bytes(b"broken")
    at = _app()
    assert not at.exception
    assert any(info.id in w.value and "could not be loaded" in w.value for w in at.warning)


def test_promotion_swaps_the_model_without_restart(workspace, tiny_checkpoint):
    at = _app()
    assert "v0001" in " ".join(c.value for c in at.caption)
    register_copy(workspace, tiny_checkpoint, note="second", activate=True)
    at.run()
    assert "v0002" in " ".join(c.value for c in at.caption)


@pytest.mark.parametrize("page", OTHER_PAGES)
def test_other_pages_render(workspace, page):
    at = _app()
    at.switch_page(page).run()
    assert not at.exception
    assert at.info or at.dataframe


def test_data_page_without_model(empty_workspace):
    at = _app()
    at.switch_page("app_pages/data.py").run()
    assert not at.exception and at.dataframe


def test_batch_upload_through_the_page(workspace):
    at = _app()
    csv = b"id,text\n1,I loved it\n2,\n3,Where is Paris?\n"
    at.file_uploader(key="batch_file").set_value(("rows.csv", csv, "text/csv")).run()
    assert at.selectbox(key="batch_column").value == "text"
    at.button(key="batch_run").click().run()
    assert not at.exception
    assert any("empty" in w.value for w in at.warning)
    table = at.dataframe[-1].value  # only the batch table is on the page
    assert list(table["row"]) == [1, 3] and set(TASKS) <= set(table.columns)
    assert at.get("progress")
    assert len(at.download_button) == 2


def test_batch_csv_download_has_no_live_formula(workspace, monkeypatch):
    """The bytes behind "Download CSV": a text and an NER span that start like formulas come out defused."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    from mtl_core.types import TokenPrediction
    from tests.helpers.spreadsheet import live_cells

    served: dict[str, bytes] = {}
    store = MemoryMediaFileStorage.load_and_get_id

    def keep(self, data, mimetype, kind, filename=None):
        served[filename or ""] = data
        return store(self, data, mimetype, kind, filename)

    def evil_spans(self, texts, *args, **kwargs):
        preds = original(self, texts, *args, **kwargs)
        for p in preds:
            p.tasks["ner"] = TokenPrediction(spans=[Span(0, 7, "MISC", "@SUM(1)", 0.9)], tags=[])
        return preds

    original = Predictor.predict
    monkeypatch.setattr(Predictor, "predict", evil_spans)
    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    at = _app()
    upload = b'text\n"=HYPERLINK(""http://x"",""y"")"\n-1+1\n'
    at.file_uploader(key="batch_file").set_value(("rows.csv", upload, "text/csv")).run()
    at.button(key="batch_run").click().run()
    assert not at.exception
    data = served["predictions.csv"]
    assert '=HYPERLINK(""http://x"",""y"")' in data.decode() and "@SUM(1)" in data.decode()  # kept, as text
    assert live_cells(data) == []


def test_batch_deeply_nested_upload_is_a_message_not_a_traceback(workspace):
    at = _app()
    data = b'{"text": "I loved it"}\n' + b"[" * 100_000 + b"\n"
    at.file_uploader(key="batch_file").set_value(("rows.jsonl", data, "application/jsonl")).run()
    assert not at.exception
    shown = [e.value.replace("\\", "") for e in at.error]  # md_literal escapes punctuation
    assert any("nested too deeply" in e and "line(s) 2" in e for e in shown)
    at.file_uploader(key="batch_file").set_value(("all.json", b"[" * 100_000, "application/json")).run()
    assert not at.exception and any("nested too deeply" in e.value for e in at.error)


def test_batch_upload_is_parsed_once(workspace, monkeypatch):
    calls: list[str] = []
    original = batch.read_upload

    def spy(name, *args, **kwargs):
        calls.append(name)
        return original(name, *args, **kwargs)

    monkeypatch.setattr(batch, "read_upload", spy)
    at = _app()
    at.file_uploader(key="batch_file").set_value(("rows.csv", b"text\nI loved it\nWhere is Paris?\n", "text/csv")).run()
    at.slider(key="unsure_threshold").set_value(0.3).run()  # unrelated widgets: reruns without a new parse
    _predict(at, "Another text")
    at.button(key="batch_run").click().run()
    assert not at.exception and calls == ["rows.csv"]
    at.file_uploader(key="batch_file").set_value(("other.csv", b"text\nnew\n", "text/csv")).run()
    assert calls == ["rows.csv", "other.csv"]


def test_batch_row_cap_says_how_many_rows_were_read(workspace, monkeypatch):
    monkeypatch.setattr(batch, "MAX_PAGE_ROWS", 3)
    at = _app()
    rows = b"text\n" + b"".join(b"review %d\n" % i for i in range(5))
    at.file_uploader(key="batch_file").set_value(("rows.csv", rows, "text/csv")).run()
    [info] = [m.value for m in at.info if "first 3 rows" in m.value]
    assert "at most 3 rows" in info and "in the background" in info
    at.button(key="batch_run").click().run()
    assert list(at.dataframe[-1].value["row"]) == [1, 2, 3]


def test_batch_background_job_through_the_page(workspace, monkeypatch):
    def run_here(kind, params, home=None, sessions=None):  # the worker process, inline
        with sessions() as s:
            job_id = create_job(s, kind, params).id
        worker.run_job(job_id, home)
        return job_id

    monkeypatch.setattr(worker, "launch", run_here)
    at = _app()
    csv = b"id,text\n1,I loved it\n2,\n3,=cmd|' /C calc'!A0\n"
    at.file_uploader(key="batch_file").set_value(("rows.csv", csv, "text/csv")).run()
    at.button(key="batch_background").click().run()
    assert not at.exception
    assert any("Predicted 2 of 3 rows" in m.value for m in at.success)
    assert any("empty" in w.value for w in at.warning)
    assert len(at.download_button) == 2
    job_id = at.session_state["batch_job_id"]
    table = batch_service.result_bytes(str(workspace), job_id, "csv").decode()
    assert "'=cmd" in table and "\n3,=" not in table


def test_batch_job_progress_and_cancel(workspace, sessions):
    with sessions() as s:
        job_id = create_job(s, "batch_predict", {"name": "big.csv"}).id
        start_job(s, job_id)
        update_job_progress(s, job_id, 40, 100, "predicted 40 of about 100 rows")
    at = _app()
    at.session_state["batch_job_id"] = job_id
    at.run()  # no upload needed: the session's job is shown on its own
    assert "predicted 40 of about 100 rows" in at.get("progress")[-1].proto.text
    at.button(key="batch_cancel_job").click().run()
    assert not at.exception and worker.cancel_flag(workspace, job_id).exists()


# --- batch service -------------------------------------------------------------------------


def test_batch_service_predicts_all_tasks(tiny_predictor):
    parsed = batch.read_upload("x.csv", b"text,lang\n" + b'"Hello, world",en\nGreat movie!,en\n' * 40)
    rows, texts, _ = batch.texts_from(parsed.frame, "text")
    seen: list[tuple[int, int]] = []
    preds = services.predict_many(tiny_predictor, texts, on_progress=lambda d, t: seen.append((d, t)))
    assert [p.text for p in preds] == texts  # input order kept despite length sorting
    assert seen == [(64, 80), (80, 80)]
    table = batch.result_table(rows, preds, task_kinds(tiny_predictor))
    assert list(table.columns) == ["row", "text", *(c for t in TASKS for c in (t, f"{t}_confidence", f"{t}_applies")
                                                     if c != "sentiment_score_confidence"), "truncated"]
    assert len(table) == 80
    assert isinstance(table["sentiment_score"][0], float)
    lines = batch.to_jsonl(rows, preds).decode().splitlines()
    assert len(lines) == 80 and '"ner": [' in lines[0]
    assert batch.to_csv(table).decode().startswith("row,text,")


def test_batch_results_keep_the_input_id_column_and_confidences(tiny_predictor):
    """Before, the results had only a row number: the input's own ids were lost, and the CSV had no scores."""
    data = b"Review ID,text\n=cmd|x,Great movie!\nr-2,Awful film\n"
    parsed = batch.read_upload("x.csv", data)
    assert batch.guess_id_column(parsed.frame, "text") == "Review ID"
    rows, texts, _ = batch.texts_from(parsed.frame, "text")
    preds = services.predict_many(tiny_predictor, texts)
    ids = batch.ids_of(parsed.frame, "Review ID", rows)
    table = batch.result_table(rows, preds, task_kinds(tiny_predictor), ids, "Review ID")
    assert list(table["Review ID"]) == ["=cmd|x", "r-2"] and list(table.columns[:3]) == ["Review ID", "row", "text"]
    assert table["sentiment_confidence"].tolist() == [round(p.tasks["sentiment"].score, 4) for p in preds]
    csv_text = batch.to_csv(table).decode()
    assert "'=cmd|x" in csv_text and "\r\n=cmd" not in csv_text  # the id is defused like any cell
    first = json.loads(batch.to_jsonl(rows, preds, ids, "Review ID").decode().splitlines()[0])
    assert first["Review ID"] == "=cmd|x" and set(first["sentiment"]["probs"]) == {"negative", "positive"}


def test_batch_reader_keeps_valid_rows():
    parsed = batch.read_upload("x.csv", b"text,label\nok,1\nbad,1,extra,fields\nfine,0\n")
    assert list(parsed.frame["text"]) == ["ok", "fine"]
    assert any("malformed" in p for p in parsed.problems)
    parsed = batch.read_upload("x.jsonl", b'{"text": "a"}\nnot json\n\n"bare string"\n[1, 2]\n{"text": "b"}\n')
    assert list(parsed.frame["text"]) == ["a", "bare string", "b"]
    assert any("2 malformed line(s)" in p for p in parsed.problems)


def test_batch_reader_errors():
    assert batch.read_upload("x.csv", b"").problems == ["The file is empty."]
    assert batch.read_upload("x.jsonl", b"  \n").frame is None
    assert batch.read_upload("x.csv", b"text\n").frame is None
    latin = "text\ncafé ok\nplain\n".encode("latin-1")
    parsed = batch.read_upload("x.csv", latin)
    assert list(parsed.frame["text"]) == ["café ok", "plain"] and "UTF-8" in parsed.problems[0]
    utf16 = "text\nhéllo\n".encode("utf-16")
    assert list(batch.read_upload("x.csv", utf16).frame["text"]) == ["héllo"]
    numbers = batch.read_upload("x.jsonl", b'{"n": 1}\n{"n": 2}\n').frame
    assert batch.text_columns(numbers) == []
    assert batch.read_upload("x.json", b'[{"text": "a"}, {"body": "b"}]').frame.shape == (2, 2)


# --- the escaping helper --------------------------------------------------------------------


def test_escaping_helper():
    assert esc('<img src=x onerror="alert(1)">') == "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"
    assert esc_text("a\n\nb") == "a<br><br>b"
    text = "<b>Bob</b> met <script>x</script>\n\n# not a heading"
    out = ner_html(text, [Span(0, 10, "person", "<b>Bob</b>", 0.9)], {"person": "#fff"})
    assert "<b>" not in out and "<script>" not in out and "\n" not in out
    assert "&lt;b&gt;Bob&lt;/b&gt;" in out and "&lt;script&gt;x&lt;/script&gt;" in out
    chips = saliency_html(["[CLS]", "<", "img", "##g", '"', "[SEP]"], [0.0, 1, -1, 0.5, 0.2, 0.0])
    assert "&lt;" in chips and "&quot;" in chips and "[CLS]" not in chips and "<img" not in chips


def test_ner_html_stops_where_the_model_stopped():
    text = "Paris " * 10
    out = ner_html(text, [Span(0, 5, "geo-loc", "Paris", 0.8), Span(54, 59, "geo-loc", "Paris", 0.8)],
                   {"geo-loc": "#abc"}, limit=12)
    assert out.count("<mark") == 1 and "more characters not read" in out

