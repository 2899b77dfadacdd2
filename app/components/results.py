"""Render every task's answer for one Prediction: cards with label, confidence, charts, entities.

Task names and labels come from the task file (user input): Markdown gets them through `md_literal`.
"""

from __future__ import annotations

import contextlib

import pandas as pd
import streamlit as st

from app.components.charts import multilabel_bars, probability_bars, regression_gauge
from app.components.html import entity_colors, greyed_css, label_chips_html, legend_html, ner_html
from app.components.text import md_literal
from mtl_core.types import (
    ClassPrediction,
    MultiLabelPrediction,
    Prediction,
    RegressionPrediction,
    TokenPrediction,
)


def task_title(name: str) -> str:
    """"question_type" -> "Question type"; short names are acronyms ("ner" -> "NER"). Plain text: Markdown
    needs `md_title`."""
    return name.upper() if len(name) <= 3 else name.replace("_", " ").capitalize()


def md_title(name: str) -> str:
    """`task_title` for Markdown elements (captions, labels, radio options): shown literally."""
    return md_literal(task_title(name))


def render_results(prediction: Prediction, entity_types: dict[str, list[str]], threshold: float) -> None:
    """Sentence tasks as a grid of cards, token tasks full width below (they need the room). A task that
    does not apply to the text (`Prediction.applies_to`) is greyed out, its answer in a collapsed expander.

    `entity_types`: token task -> its entity labels, so colours stay fixed per type across texts.
    """
    sentence = [(n, p) for n, p in prediction.tasks.items() if not isinstance(p, TokenPrediction)]
    tokens = [(n, p) for n, p in prediction.tasks.items() if isinstance(p, TokenPrediction)]
    off = [n for n in prediction.tasks if not prediction.applies_to(n)]
    if off:  # escaped, fixed-form CSS: only the cards' keys vary
        st.markdown(greyed_css([f"card_{n}" for n in off]), unsafe_allow_html=True)
    cols = st.columns(3)
    for i, (name, pred) in enumerate(sentence):
        with cols[i % 3], st.container(border=True, key=f"card_{name}"), _applies_or_not(name, prediction):
            if isinstance(pred, ClassPrediction):
                _class_card(name, pred, threshold, title=name not in off)
            elif isinstance(pred, RegressionPrediction):
                _regression_card(name, pred, title=name not in off)
            elif isinstance(pred, MultiLabelPrediction):
                _multilabel_card(name, pred, title=name not in off)
    for name, pred in tokens:
        with st.container(border=True, key=f"card_{name}"), _applies_or_not(name, prediction):
            _token_card(name, pred, prediction, entity_types.get(name, []), threshold, title=name not in off)


def _applies_or_not(name: str, prediction: Prediction):
    """Where a task's card body goes: the card itself, or (task does not apply) a collapsed expander under
    the title and "not applicable here (p=…)"."""
    if prediction.applies_to(name):
        return contextlib.nullcontext()
    st.markdown(f"**{md_title(name)}**")
    st.caption(f"not applicable here (p={prediction.applies[name]:.2f})",
               help="The text does not look like what this task was trained on, so its answer means little. "
                    "It is still shown below.")
    return st.expander("Answer anyway", expanded=False, key=f"not_applicable_{name}")


def _class_card(name: str, pred: ClassPrediction, threshold: float, title: bool = True) -> None:
    if title:
        st.markdown(f"**{md_title(name)}**")
    unsure = pred.score < threshold
    st.markdown(f"### {md_literal(pred.label)}")
    st.caption(f"confidence {pred.score:.0%} · margin {pred.margin:.2f}")
    _fewshot_badge(pred, "accuracy")
    if unsure:
        st.badge(f"unsure (below {threshold:.0%})", icon=":material/help:", color="orange")
    st.plotly_chart(probability_bars(pred, threshold), key=f"probs_{name}", config={"displayModeBar": False})


def _fewshot_badge(pred: ClassPrediction | MultiLabelPrediction, metric: str) -> None:
    if not pred.fewshot:
        return
    est = "not estimated yet" if pred.estimated_accuracy is None else f"{pred.estimated_accuracy:.0%}"
    st.badge(md_literal(f"few-shot · est. {metric} {est}"), icon=":material/science:", color="violet",
             help="A new task: answered by a head fitted in seconds on the shared encoder's features from "
                  "the labels so far (cross-validated on them). A training round joins it to the shared model.")


def _multilabel_card(name: str, pred: MultiLabelPrediction, title: bool = True) -> None:
    if title:
        st.markdown(f"**{md_title(name)}**")
    # escaped in label_chips_html: label names come from the task file
    st.markdown(label_chips_html(pred.labels, entity_colors(list(pred.probs))), unsafe_allow_html=True)
    st.caption(f"{len(pred.labels)} of {len(pred.probs)} labels at or above their threshold (orange tick)")
    _fewshot_badge(pred, "micro-F1")
    st.plotly_chart(multilabel_bars(pred), key=f"multilabel_{name}", config={"displayModeBar": False})


def _regression_card(name: str, pred: RegressionPrediction, title: bool = True) -> None:
    if title:
        st.markdown(f"**{md_title(name)}**")
    st.markdown(f"### {pred.value:+.2f}")
    st.caption(f"on a scale from {pred.low:g} to {pred.high:g}")
    st.plotly_chart(regression_gauge(pred), key=f"gauge_{name}", config={"displayModeBar": False})


def _token_card(name: str, pred: TokenPrediction, prediction: Prediction, labels: list[str], threshold: float,
                title: bool = True) -> None:
    if title:
        st.markdown(f"**{md_title(name)}** · {len(pred.spans)} entit{'y' if len(pred.spans) == 1 else 'ies'}")
    else:
        st.caption(f"{len(pred.spans)} entit{'y' if len(pred.spans) == 1 else 'ies'}")
    colors = entity_colors(labels or sorted({s.label for s in pred.spans}))
    # escaped in ner_html/legend_html: user text never reaches the page as markup
    st.markdown(ner_html(prediction.text, pred.spans, colors, limit=prediction.truncated_at, unsure_below=threshold),
                unsafe_allow_html=True)
    st.markdown(legend_html(colors), unsafe_allow_html=True)
    if any(s.score < threshold for s in pred.spans):
        st.caption(f"Dashed outline and “?”: the model's confidence in that span is below {threshold:.0%}.")
    if pred.spans:
        table = pd.DataFrame([{"entity": s.text, "type": s.label, "start": s.start, "end": s.end,
                               "score": round(s.score, 3)} for s in pred.spans])
        st.dataframe(table, hide_index=True, key=f"spans_{name}")
