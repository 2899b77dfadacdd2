"""The Data page's browsing as data frames (app/data/browse.py) and its figures (app/data/browse_charts.py)."""

from __future__ import annotations

import pytest

from app.data import browse
from app.data.browse_charts import confusion_heatmap, histogram, label_bars
from mtl_core.data.examples import Example
from mtl_core.tasks import TaskSpec

SENTIMENT = TaskSpec(name="sentiment", kind="classification", labels=["neg", "pos"])
SCORE = TaskSpec(name="score", kind="regression", value_range=(-4.0, 4.0))
NER = TaskSpec(name="ner", kind="token_classification", labels=["person", "place"])


def _ner(words: str, tags: str) -> Example:
    return Example(words, words=tuple(words.split()), tags=tuple(tags.split()))


def _sentiment_rows():
    texts = ["A great film", "a GREAT mess", "boring (really)", "Loved it.*", "awful"]
    gold = ["pos", "neg", "neg", "pos", "neg"]
    answers = ["pos", "pos", "neg", "neg", "neg"]
    return browse.example_rows(SENTIMENT, [Example(t, label=g) for t, g in zip(texts, gold)], answers)


def test_classification_rows_carry_gold_answer_and_correct():
    rows = _sentiment_rows()
    assert rows["#"].tolist() == [0, 1, 2, 3, 4]
    assert rows["correct"].tolist() == [True, False, True, False, True]
    assert rows.loc[1, ["text", "gold", "answer", "words"]].tolist() == ["a GREAT mess", "neg", "pos", 3]


def test_without_answers_only_gold_columns_and_answer_filters_are_ignored():
    rows = browse.example_rows(SENTIMENT, [Example("fine", label="pos"), Example("bad", label="neg")])
    assert "answer" not in rows and "correct" not in rows and not browse.has_answers(rows)
    assert browse.filter_rows(rows, answer="pos", only_wrong=True)["text"].tolist() == ["fine", "bad"]
    assert browse.filter_rows(rows, gold="neg")["text"].tolist() == ["bad"]


def test_search_is_plain_case_insensitive_text_never_a_pattern():
    rows = _sentiment_rows()
    assert browse.filter_rows(rows, search="great")["#"].tolist() == [0, 1]
    assert browse.filter_rows(rows, search="  GREAT ")["#"].tolist() == [0, 1]
    assert browse.filter_rows(rows, search="(really)")["#"].tolist() == [2]  # parentheses are characters
    assert browse.filter_rows(rows, search=".*")["#"].tolist() == [3]
    assert browse.filter_rows(rows, search="[")["#"].tolist() == []  # an unclosed class: no error
    assert len(browse.filter_rows(rows, search="")) == 5


def test_label_and_only_wrong_filters_combine():
    rows = _sentiment_rows()
    assert browse.filter_rows(rows, only_wrong=True)["#"].tolist() == [1, 3]
    assert browse.filter_rows(rows, gold="neg", answer="pos")["#"].tolist() == [1]
    assert browse.filter_rows(rows, gold="neg", only_wrong=True, search="mess")["#"].tolist() == [1]
    assert browse.filter_rows(rows, gold="pos", answer="pos", only_wrong=True).empty


def test_regression_is_right_within_the_tolerance():
    exs = [Example(f"t{i}", label=v) for i, v in enumerate([1.0, -2.0, 0.0])]
    rows = browse.example_rows(SCORE, exs, [1.9, 0.5, -1.0])
    assert rows["correct"].tolist() == [True, False, True]  # |0 - -1| == 1.0: on the tolerance is right
    assert rows["gold"].tolist() == [1.0, -2.0, 0.0] and rows["answer"].tolist() == [1.9, 0.5, -1.0]
    assert browse.filter_rows(rows, only_wrong=True)["text"].tolist() == ["t1"]


def test_ner_rows_show_entities_and_compare_spans():
    exs = [_ner("Ann met Bob in Rome", "B-person O B-person O B-place"),
           _ner("Rome is Rome", "B-place O O"),
           _ner("nothing here", "O O")]
    answers = [["B-person", "O", "I-person", "O", "B-place"],  # I- after O starts an entity: same spans
               ["O", "O", "B-place"],  # the same name, another word: wrong
               ["O", "O"]]
    rows = browse.example_rows(NER, exs, answers)
    assert rows["gold"].tolist() == ["Ann (person); Bob (person); Rome (place)", "Rome (place)", "(no entities)"]
    assert rows["answer"].tolist()[1] == "Rome (place)"
    assert rows["correct"].tolist() == [True, False, True]
    assert browse.filter_rows(rows, gold="person")["#"].tolist() == [0]
    assert browse.filter_rows(rows, answer="place")["#"].tolist() == [0, 1]
    counts = browse.label_counts(NER, exs)
    assert dict(zip(counts["label"], counts["count"])) == {"person": 2, "place": 2}


def test_label_counts_list_every_label_with_zeros():
    counts = browse.label_counts(SENTIMENT, [Example("x", label="neg"), Example("y", label="neg")])
    assert counts.to_dict("list") == {"label": ["neg", "pos"], "count": [2, 0]}


def test_confusion_counts_every_example_once():
    rows = _sentiment_rows()
    table = browse.confusion(SENTIMENT.labels, rows)
    assert table.index.tolist() == ["neg", "pos"] and table.columns.tolist() == ["neg", "pos"]
    assert table.loc["neg", "pos"] == 1 and table.loc["neg", "neg"] == 2 and table.loc["pos", "neg"] == 1
    assert int(table.to_numpy().sum()) == len(rows)
    cell = browse.filter_rows(rows, gold="neg", answer="pos")
    assert len(cell) == table.loc["neg", "pos"]


def test_visible_caps_the_rows_and_hides_the_filter_columns():
    rows = browse.example_rows(SENTIMENT, [Example(f"t{i}", label="pos") for i in range(30)], ["neg"] * 30)
    shown = browse.visible(browse.filter_rows(rows, search="t2"), limit=5)
    assert shown.index.tolist() == [0, 1, 2, 3, 4] and shown["text"].tolist()[:2] == ["t2", "t20"]
    assert not set(browse.HIDDEN) & set(shown.columns)


@pytest.mark.parametrize(("points", "cell"), [
    ([{"x": "pos", "y": "neg", "customdata": [0, 1], "point_index": 1}], ("neg", "pos")),
    ([{"customdata": [1, 1]}], ("pos", "pos")),
    ([{"x": "pos"}, {"customdata": ["1", "0"]}], ("pos", "neg")),  # the first point with a cell
    ([{"customdata": [5, 0]}], None),  # out of range (another task's chart)
    ([{"customdata": "x"}], None),
    ([], None),
    (None, None),
])
def test_cell_from_points(points, cell):
    assert browse.cell_from_points(points, SENTIMENT.labels) == cell


def test_figures_escape_labels_and_mark_each_cell():
    labels = ["<b>x</b>", "y"]
    spec = TaskSpec(name="t", kind="classification", labels=labels)
    rows = browse.example_rows(spec, [Example("a", label="<b>x</b>"), Example("b", label="y")], ["y", "y"])
    fig = confusion_heatmap(browse.confusion(labels, rows))
    heat, marks = fig.data
    assert list(heat.y) == ["&lt;b&gt;x&lt;/b&gt;", "y"] and [list(r) for r in heat.z] == [[0, 1], [0, 1]]
    assert [list(c) for c in marks.customdata] == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert fig.layout.clickmode == "event+select"
    bars = label_bars(browse.label_counts(spec, [Example("a", label="<b>x</b>")]))
    assert list(bars.data[0].x) == ["&lt;b&gt;x&lt;/b&gt;", "y"] and list(bars.data[0].y) == [1, 0]
    assert list(histogram([1, 2, 2], "words").data[0].x) == [1, 2, 2]
