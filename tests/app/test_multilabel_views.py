"""Multi-label answers in the UI: the Predict result card (chips + probability bars with thresholds, escaped)
and the review editor (a keyed multiselect whose value "Save label" writes)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from app.components.charts import multilabel_bars
from app.components.html import label_chips_html
from app.review import service as rs
from mtl_core.tasks import MULTILABEL, TaskSpec
from mtl_core.types import MultiLabelPrediction

EVIL = "<img src=x onerror=alert(1)>"
ANSWER = MultiLabelPrediction([EVIL, "money"], {EVIL: 0.9, "money": 0.55, "weather": 0.1},
                              {EVIL: 0.5, "money": 0.4, "weather": 0.7})


def _card(chosen: list, probs: dict, thresholds: dict) -> None:
    from app.components.results import render_results  # AppTest.from_function runs this body alone
    from mtl_core.types import MultiLabelPrediction, Prediction

    answer = MultiLabelPrediction(chosen, probs, thresholds)
    render_results(Prediction(text="t", tasks={"topics": answer}, n_tokens=3, truncated=False), {}, 0.6)


def test_result_card_shows_chosen_labels_as_escaped_chips_and_bars():
    at = AppTest.from_function(_card, args=(ANSWER.labels, ANSWER.probs, ANSWER.thresholds), default_timeout=60).run()
    assert not at.exception
    html = [m.value for m in at.markdown if m.proto.allow_html]
    chips = next(h for h in html if "mtl-labels" in h)
    assert "&lt;img src=x onerror=alert(1)&gt;" in chips and "<img" not in chips and "money" in chips
    assert "weather" not in chips  # below its threshold: a bar, not a chip
    assert "**Topics**" in [m.value for m in at.markdown if not m.proto.allow_html]
    assert any("2 of 3 labels" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) == 1


def test_no_label_chosen_says_so():
    html = label_chips_html([], {})
    assert "no label reaches its threshold" in html and "mtl-label-chip" not in html


def test_bars_mark_each_labels_threshold():
    fig = multilabel_bars(ANSWER)
    bars, ticks = fig.data
    assert list(bars.y) == ["weather", "money", "&lt;img src=x onerror=alert(1)&gt;"]  # task order, top down
    assert list(bars.x) == [0.1, 0.55, 0.9] and list(ticks.x) == [0.7, 0.4, 0.5]
    assert list(bars.marker.color) == ["#94a3b8", "#2563eb", "#2563eb"]  # chosen labels in blue


def _editor(gold) -> None:  # no annotations: AppTest runs the body as a script
    from datetime import datetime

    from app.review.editor_view import render_editor
    from mtl_core.store import QueueEntry
    from mtl_core.tasks import TaskSpec
    from mtl_core.types import MultiLabelPrediction

    spec = TaskSpec("topics", "multilabel_classification", ["sport", "money", "weather"])
    entry = QueueEntry(1, 1, "rain at the match", "topics", "uncertain", "", 0.5, None, None, datetime.now())
    answer = MultiLabelPrediction(["sport"], {"sport": 0.9, "money": 0.1, "weather": 0.45},
                                  {"sport": 0.5, "money": 0.5, "weather": 0.5})
    render_editor(spec, entry, answer, gold)


@pytest.mark.parametrize("gold, start", [(None, ["sport"]), (["weather", "sport"], ["sport", "weather"])])
def test_review_editor_is_a_keyed_multiselect(gold, start):
    at = AppTest.from_function(_editor, args=(gold,), default_timeout=60).run()
    assert not at.exception
    box = at.multiselect(key="review_value_topics")
    assert box.value == start and box.options == ["sport", "money", "weather"]
    box.set_value(["money", "weather"]).run()
    assert at.session_state["review_value_topics"] == ["money", "weather"]


def test_review_values_for_label_sets():
    spec = TaskSpec("topics", MULTILABEL, ["sport", "money", "weather"])
    assert rs.check_value(spec, ["weather", "sport"], "t") == ["sport", "weather"]
    assert rs.check_value(spec, [], "t") == []
    for bad in (["golf"], "sport", None):
        with pytest.raises(ValueError):
            rs.check_value(spec, bad, "t")
    assert rs.model_value(ANSWER) == [EVIL, "money"]
    assert rs.format_value(["sport", "money"]) == "sport | money"
    assert rs.format_value([], kind=MULTILABEL) == "(no labels)" and rs.format_value([]) == "(no entities)"
