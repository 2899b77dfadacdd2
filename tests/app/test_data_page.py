"""The Data page through AppTest: the Tasks tab, and browsing a task's split with the model's answers, the
filters, the confusion matrix and Send to review. A tiny random model over small generated tasks (CSV and
CoNLL files in a temporary folder, named by absolute paths in the model's task file)."""

from __future__ import annotations

import plotly.io
import pytest
from streamlit.testing.v1 import AppTest

from app.data.browse_view import cell_filters
from mtl_core.data.prepare import prepare_task
from mtl_core.eval import compare
from mtl_core.model.checkpoint import load_checkpoint
from mtl_core.model.registry import Registry
from mtl_core.model.testing import make_tiny_checkpoint
from mtl_core.store import top_queue
from mtl_core.store.db import open_store
from mtl_core.store.models import TextRow
from mtl_core.tasks import TaskSpec, load_task_file
from mtl_core.workspace import data_cache_dir
from tests.helpers import ROOT
from tests.helpers.toy import write_toy_tasks
from tests.helpers.workspace import register_copy

TABLE = "data_browse_table_polarity_dev"


@pytest.fixture(scope="module")
def toy_checkpoint(tmp_path_factory):
    """A tiny checkpoint whose task file reads generated data: polarity (neg/pos), score, things (NER)."""
    root = tmp_path_factory.mktemp("toy_data")
    tasks = write_toy_tasks(root, n=160).read_text()
    for name in ("cls.csv", "reg.csv", "ner.conll"):
        tasks = tasks.replace(f"path: {name}", f"path: {root / name}")
    (root / "tasks.yaml").write_text(tasks)
    return make_tiny_checkpoint(root / "ckpt", task_file=load_task_file(root / "tasks.yaml"))


@pytest.fixture
def toy_workspace(tmp_path, monkeypatch, toy_checkpoint):
    home = tmp_path / "ws"
    home.mkdir()
    monkeypatch.setenv("MTL_STUDIO_HOME", str(home))
    register_copy(home, toy_checkpoint)
    return home


def _split(home, task: str, split: str) -> list:
    """The split as the page prepares it (the toy model was trained with seed 0)."""
    task_file = load_checkpoint(Registry(home).path_of("v0001"))[2]
    return prepare_task(task_file.by_name(task), data_cache_dir(home))[split]


def _browse(**state) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages" / "data.py"), default_timeout=90)
    at.session_state["data_tabs"] = "Browse"
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def _table(at: AppTest):
    return next(df.value for df in at.dataframe if "text" in df.value.columns)


def _charts(at: AppTest) -> list:
    return [plotly.io.from_json(chart.proto.spec) for chart in at.get("plotly_chart")]


def _texts(at: AppTest) -> str:
    return "\n".join(e.value for kind in ("caption", "info", "warning", "error", "success") for e in getattr(at, kind))


def test_tasks_tab_first_browse_second(toy_workspace):
    at = AppTest.from_file(str(ROOT / "app_pages" / "data.py"), default_timeout=90).run()
    assert not at.exception
    assert [t.label for t in at.tabs] == ["Tasks", "Browse", "New task"]
    assert at.dataframe[0].value["task"].tolist() == ["polarity", "score", "things"]
    assert not at.get("plotly_chart")  # the closed Browse tab loads nothing


def test_browse_shows_every_dev_example_with_the_models_answer(toy_workspace, monkeypatch):
    calls = []
    original = compare.answers_for
    monkeypatch.setattr(compare, "answers_for", lambda runner, sets: calls.append(1) or original(runner, sets))
    at = _browse()
    assert not at.exception, at.exception
    dev = _split(toy_workspace, "polarity", "dev")
    table = _table(at)
    assert table["text"].tolist() == [ex.text for ex in dev]
    assert table["gold"].tolist() == [ex.label for ex in dev]
    assert set(table["answer"]) <= {"neg", "pos"}
    assert (table["correct"] == (table["gold"] == table["answer"])).all()
    assert f"{len(dev):,} of {len(dev):,} dev examples match" in _texts(at)
    distribution, lengths, matrix = _charts(at)
    assert list(distribution.data[0].y) == [sum(ex.label == lab for ex in dev) for lab in ("neg", "pos")]
    assert sum(lengths.data[0].x) == sum(len(ex.text.split()) for ex in dev)
    assert sum(map(sum, matrix.data[0].z)) == len(dev)  # the confusion matrix: every example once
    at.text_input(key="data_browse_search").input("number").run()
    at.text_input(key="data_browse_search").input("x").run()
    assert calls == [1]  # answered once, then cached: reruns never run the model again
    assert list(toy_workspace.glob("cache/answers/v0001-*.json"))


def test_filters_narrow_the_table(toy_workspace):
    at = _browse()
    full = _table(at)
    wanted = full["text"].iloc[0].split()[3]  # "the film number <i> was ..." -> "<i>"
    at.text_input(key="data_browse_search").input(f"NUMBER {wanted} ").run()
    assert not at.exception
    narrowed = _table(at)["text"].tolist()
    assert narrowed == [t for t in full["text"] if f"number {wanted}" in t] and 0 < len(narrowed) < len(full)
    at.text_input(key="data_browse_search").input(".*").run()  # plain text: no pattern matches everything
    assert _table(at).empty and "0 of" in _texts(at)
    at.text_input(key="data_browse_search").input("").run()
    at.checkbox(key="data_browse_wrong_polarity").check().run()
    wrong = _table(at)
    assert len(wrong) == int((~full["correct"]).sum()) and not wrong["correct"].any()
    at.button(key="data_browse_clear").click().run()
    assert len(_table(at)) == len(full)


def test_a_confusion_cell_lists_its_examples(toy_workspace):
    at = _browse()
    z = _charts(at)[2].data[0].z
    for g, gold in enumerate(["neg", "pos"]):
        for a, answer in enumerate(["neg", "pos"]):
            at.selectbox(key="data_browse_gold_polarity").set_value(gold)
            at.selectbox(key="data_browse_answer_polarity").set_value(answer).run()
            cell = _table(at)
            assert len(cell) == z[g][a]
            assert (cell["gold"] == gold).all() and (cell["answer"] == answer).all()


def test_clicking_a_confusion_cell_sets_the_filters():
    # AppTest cannot click a Plotly chart: the callback's values, from the selection a click makes
    spec = TaskSpec(name="polarity", kind="classification", labels=["neg", "pos"])
    points = [{"x": "pos", "y": "neg", "curve_number": 1, "point_index": 1, "customdata": [0, 1]}]
    assert cell_filters(points, spec) == {"data_browse_gold_polarity": "neg", "data_browse_answer_polarity": "pos",
                                          "data_browse_wrong_polarity": False}
    assert cell_filters([{"x": 0.2, "y": 1.1}], spec) == {}  # a click beside the markers: no change


def test_send_to_review_queues_the_selected_examples(toy_workspace):
    at = _browse()
    texts = _table(at)["text"].tolist()[:2]
    at.session_state[TABLE] = {"selection": {"rows": [0, 1]}}
    at.run()
    at.button(key="data_browse_send").click().run()
    assert not at.exception, at.exception
    assert any("Sent 2 text(s) to review" in s.value for s in at.success)
    _, sessions = open_store(toy_workspace)
    with sessions() as s:
        stored = {row.text for row in s.query(TextRow).all()}
        queue = top_queue(s, limit=100)
    assert stored == set(texts)
    assert queue and {q.text for q in queue} == set(texts)  # a random model is unsure of every polarity


def test_nothing_selected_sends_nothing(toy_workspace):
    at = _browse()
    assert at.button(key="data_browse_send").disabled


def test_train_split_shows_gold_only_and_test_cannot_be_sent(toy_workspace):
    at = _browse(data_browse_split="train")
    assert not at.exception
    table = _table(at)
    assert "answer" not in table and len(table) == len(_split(toy_workspace, "polarity", "train"))
    assert "gold labels only" in _texts(at) and len(at.get("plotly_chart")) == 2  # no confusion matrix
    at.radio(key="data_browse_split").set_value("test").run()
    assert not at.exception and "answer" in _table(at)
    assert "cannot be sent to review" in _texts(at)
    assert not [b for b in at.button if b.key == "data_browse_send"]


@pytest.mark.parametrize("task", ["score", "things"])
def test_regression_and_ner_tasks(toy_workspace, task):
    at = _browse(data_browse_task=task)
    assert not at.exception, at.exception
    table = _table(at)
    dev = _split(toy_workspace, task, "dev")
    assert len(table) == len(dev) and "correct" in table
    assert len(at.get("plotly_chart")) == 2  # distribution and lengths: no confusion matrix
    if task == "things":
        assert all(g.endswith("(thing)") for g in table["gold"])
        at.selectbox(key="data_browse_gold_things").set_value("thing").run()
        assert len(_table(at)) == len(dev)
    else:
        assert table["gold"].dtype.kind == "f"
        wrong = ~table["correct"]
        assert ((table["gold"] - table["answer"]).abs()[wrong] > compare.REGRESSION_TOLERANCE).all()


def test_without_a_model_gold_only_from_the_default_tasks(empty_workspace):
    at = _browse()
    assert not at.exception, at.exception
    assert "No trained model" in _texts(at)
    if not at.warning:  # the corpus packages are installed: the first task's dev split
        table = _table(at)
        assert len(table) and "answer" not in table
        assert not [b for b in at.button if b.key == "data_browse_send"]
