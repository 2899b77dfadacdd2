"""Predict page sections: model status, single-text prediction, explain panel.

Glue between services (model) and components (views); all st.* calls happen in the script thread.
"""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from app.components import attention as att_view
from app.components.charts import saliency_bars
from app.components.html import saliency_html
from app.components.results import md_title, render_results, task_title
from app.components.text import md_literal
from app.predict import bootstrap_view
from app.shared import services, task_service
from mtl_core.serve.explain import METHODS, attention_rollout
from mtl_core.serve.predictor import NoModelError, Predictor
from mtl_core.types import Prediction

EXAMPLES_FILE = Path(__file__).resolve().parents[2] / "assets" / "examples.json"
OWN_TEXT = "(type your own)"
EXPLAIN_TABS = ["Attention", "All heads", "Rollout", "Saliency"]


def load_predictor_or_explain() -> tuple[Predictor, str] | None:
    """The active predictor, or None after showing how the first one is coming (never a stack trace)."""
    try:
        predictor, version = services.current_predictor()
    except NoModelError:  # first run: the first model trains in the background, shown live
        bootstrap_view.render_no_model()
        return None
    except Exception as exc:  # a corrupted registry.json etc.: say what, not where
        st.error(f"The model workspace could not be read: {md_literal(exc)}")
        return None
    if predictor.meta.get("fallback_from"):
        st.warning(md_literal(f"The active model {predictor.meta['fallback_from']} could not be loaded; using "
                              f"{predictor.version} instead. Details: {'; '.join(predictor.meta.get('fallback_errors', []))}"))
    task_service.ensure_heads()  # new tasks' few-shot heads for this version (refitted after a promotion)
    return predictor, version


def render_status(predictor: Predictor, where) -> None:
    """Model version, encoder, device and last forward latency, in `where` (a sidebar container)."""
    latency = st.session_state.get("last_latency_ms")
    with where:
        st.markdown("**Model**")
        st.caption(md_literal(f"version {predictor.version} · encoder {predictor.meta.get('encoder_name', '?')}"))
        st.caption(f"device: {md_literal(predictor.device_label)}")
        st.caption("last prediction: " + (f"{latency:.0f} ms" if latency is not None else "—"))
    bootstrap_view.render_sidebar_progress(where)  # the default model still training behind the quick one


@st.cache_data(show_spinner=False)
def load_examples() -> list[dict]:
    return json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))


def _use_example() -> None:
    # callback: runs before the text area is created, so setting its state is allowed
    choice = st.session_state.get("example_choice")
    for ex in load_examples():
        if ex["name"] == choice:
            st.session_state["predict_text"] = ex["text"]


def _on_predict() -> None:
    text = st.session_state.get("predict_text", "")
    st.session_state["predict_submitted"] = text if text.strip() else None
    st.session_state["predict_empty"] = not text.strip()


def render_single(predictor: Predictor, version: str, threshold: float) -> Prediction | None:
    """Text input + Predict; every task's answer. Returns the prediction shown (None if none)."""
    names = [OWN_TEXT] + [ex["name"] for ex in load_examples()]
    # persist_state="session": the text (and its results) are still here after a visit to another page
    st.selectbox("Start from an example", names, key="example_choice", on_change=_use_example,
                 persist_state="session")
    st.text_area("Text", key="predict_text", height=130, placeholder="Paste a review, tweet, news sentence…",
                 persist_state="session")
    left, right, _ = st.columns([1, 1.4, 3])
    left.button("Predict", key="predict_button", type="primary", on_click=_on_predict)
    send = right.button("Send to review", key="send_to_review",
                        help="store this text with its answers and queue the tasks that deserve a look "
                             "(unsure or contradicting each other) on the Review page")
    if send:
        _on_predict()  # exactly the text in the box is sent: predicted first when it is not the one shown
    if st.session_state.get("predict_empty"):
        st.warning("Type or paste some text first: the input is empty.")
        return None
    text = st.session_state.get("predict_submitted")
    if not text:
        st.caption("Type or pick a text, then press **Predict**.")
        return None
    try:
        prediction, _fresh = services.predict_one(predictor, version, text)
    except ValueError as exc:  # e.g. over the Predictor's hard character limit
        st.error(md_literal(exc))
        return None
    if prediction.truncated:
        st.info(f"The text needs {prediction.n_tokens:,} tokens; the model read only the first "
                f"{len(prediction.tokens):,} (up to character {prediction.truncated_at:,} of {len(text):,}).")
    entity_types = {t.name: list(t.labels) for t in predictor.task_file.tasks if t.kind == "token_classification"}
    render_results(prediction, entity_types, threshold)
    if send:
        from app.review.view import send_to_review

        send_to_review(predictor, version, prediction, threshold)
    return prediction


def render_explain(predictor: Predictor, version: str, prediction: Prediction) -> None:
    """Attention (one head / all heads / rollout) and saliency for the shown prediction.

    Lazy: the expander and the tabs are stateful (`on_change="rerun"`), so nothing inside the expander runs
    while it is collapsed and only the open tab's body runs; the saliency (a backward pass) is computed
    only with the Saliency tab open. The attentions come with the cached forward, so opening a tab costs
    no new forward. The selectors keep their values while hidden (`persist_state="page"`).
    """
    panel = st.expander("Explain this prediction", expanded=False, key="explain_expander", on_change="rerun")
    if not panel.open:
        return
    with panel:
        hide = st.checkbox("Hide [CLS]/[SEP]", value=True, key="explain_hide_specials", persist_state="page")
        keep = att_view.keep_index(prediction.tokens, hide)
        attention, heads, rollout_tab, saliency_tab = st.tabs(EXPLAIN_TABS, key="explain_tabs", on_change="rerun")
        if attention.open:
            with attention:
                layer, head = _head_selectors(prediction.attentions.shape[:2])
                matrix = att_view.head_matrix(prediction.attentions, layer, head)
                title = f"Layer {layer + 1} · " + ("mean of heads" if head is None else f"head {head + 1}")
                st.plotly_chart(att_view.heatmap(matrix, prediction.tokens, keep, title), key="attention_heatmap")
                if hide:
                    st.caption("Rows do not sum to 1 while [CLS]/[SEP] are hidden.")
        if heads.open:
            with heads:
                st.caption("Each tile is one head (rows: layers, columns: heads), scaled to its own maximum. "
                           "Pick one with the layer/head selectors in the Attention tab.")
                selected = _selected_head(prediction.attentions.shape[:2])
                st.plotly_chart(att_view.heads_grid(prediction.attentions, keep, selected), key="attention_grid")
        if rollout_tab.open:
            with rollout_tab:
                rollout = attention_rollout(prediction.attentions)
                st.plotly_chart(att_view.heatmap(rollout, prediction.tokens, keep, "Attention rollout", "Purples"),
                                key="rollout_heatmap")
                st.caption("How much the [CLS] position draws on each token after rollout:")
                st.plotly_chart(att_view.rollout_relevance(rollout, prediction.tokens, keep), key="rollout_bars")
        if saliency_tab.open:
            with saliency_tab:
                _saliency_section(predictor, version, prediction, hide)


def _head_selectors(shape: tuple[int, int]) -> tuple[int, int | None]:
    n_layers, n_heads = shape
    a, b = st.columns(2)
    layer = a.selectbox("Layer", list(range(n_layers)), index=n_layers - 1, key="explain_layer",
                        format_func=lambda i: f"Layer {i + 1}", persist_state="page")
    head = b.selectbox("Head", [None, *range(n_heads)], key="explain_head", persist_state="page",
                       format_func=lambda h: "Mean of heads" if h is None else f"Head {h + 1}")
    return layer, head


def _selected_head(shape: tuple[int, int]) -> tuple[int, int | None]:
    """The layer/head picked in the Attention tab while that tab is not rendered (its defaults if never)."""
    n_layers, n_heads = shape
    layer = st.session_state.get("explain_layer")
    head = st.session_state.get("explain_head")
    return (layer if layer in range(n_layers) else n_layers - 1,
            head if head in range(n_heads) else None)


def _saliency_section(predictor: Predictor, version: str, prediction: Prediction, hide: bool) -> None:
    a, b = st.columns(2)
    task = a.selectbox("Task", predictor.task_names, key="saliency_task", format_func=task_title,
                       persist_state="page")
    method = b.selectbox("Method", list(METHODS), key="saliency_method", persist_state="page",
                         format_func=lambda m: {"grad_x_input": "Gradient × input",
                                                "integrated_gradients": "Integrated gradients (16 steps)"}[m])
    sal = services.explain_saliency(predictor, version, prediction.text, task, method)
    st.caption(f"Attribution of **{md_literal(sal.target)}** ({md_title(task)}): green pushes it up, "
               "red pushes it down.")
    st.markdown(saliency_html(sal.tokens, sal.scores, hide_specials=hide), unsafe_allow_html=True)
    st.plotly_chart(saliency_bars(sal.tokens, sal.scores, hide_specials=hide), key="saliency_bars")
