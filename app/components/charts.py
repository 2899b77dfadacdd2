"""Plotly figures for task answers: class probabilities, multi-label probabilities, regression gauge, saliency bars."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from app.components.html import SPECIAL_TOKENS, esc
from mtl_core.types import ClassPrediction, MultiLabelPrediction, RegressionPrediction

COMPACT = dict(margin=dict(l=10, r=10, t=10, b=10))


def probability_bars(pred: ClassPrediction, threshold: float = 0.6) -> go.Figure:
    """Horizontal bars, highest first; the top class is orange when below the `unsure` threshold."""
    items = sorted(pred.probs.items(), key=lambda kv: kv[1])
    top_color = "#f59e0b" if pred.score < threshold else "#2563eb"
    colors = [top_color if label == pred.label else "#94a3b8" for label, _ in items]
    fig = go.Figure(go.Bar(
        x=[p for _, p in items], y=[esc(label) for label, _ in items], orientation="h",
        marker_color=colors, text=[f"{p:.0%}" for _, p in items], textposition="auto",
        hovertemplate="%{y}: %{x:.1%}<extra></extra>",
    ))
    fig.update_layout(height=40 + 26 * len(items), xaxis=dict(range=[0, 1], tickvals=[0, 0.5, 1], tickformat=".0%"),
                      margin=dict(l=10, r=25, t=10, b=10))
    fig.add_vline(x=threshold, line_dash="dot", line_color="#f59e0b", opacity=0.6)
    return fig


def multilabel_bars(pred: MultiLabelPrediction) -> go.Figure:
    """One bar per label (task-file order, top down), blue when chosen; a tick marks each label's threshold."""
    items = list(pred.probs.items())[::-1]
    names = [esc(label) for label, _ in items]
    thresholds = [pred.thresholds.get(label, 0.5) for label, _ in items]
    fig = go.Figure(go.Bar(
        x=[p for _, p in items], y=names, orientation="h", text=[f"{p:.0%}" for _, p in items], textposition="auto",
        marker_color=["#2563eb" if label in pred.labels else "#94a3b8" for label, _ in items],
        hovertemplate="%{y}: %{x:.1%}<extra></extra>", showlegend=False,
    ))
    fig.add_trace(go.Scatter(
        x=thresholds, y=names, mode="markers", marker=dict(symbol="line-ns-open", size=22, color="#f59e0b",
                                                           line=dict(width=3, color="#f59e0b")),
        hovertemplate="threshold %{x:.2f}<extra></extra>", showlegend=False,
    ))
    fig.update_layout(height=40 + 26 * len(items), xaxis=dict(range=[0, 1], tickvals=[0, 0.5, 1], tickformat=".0%"),
                      margin=dict(l=10, r=25, t=10, b=10))
    return fig


def regression_gauge(pred: RegressionPrediction) -> go.Figure:
    """A gauge on the task's own scale (e.g. -4..+4), red at the low end, green at the high end."""
    lo, hi = pred.low, pred.high
    third = (hi - lo) / 3
    fig = go.Figure(go.Indicator(
        mode="gauge+number", value=pred.value, number=dict(valueformat="+.2f"),
        gauge=dict(
            axis=dict(range=[lo, hi]), bar=dict(color="#1e293b", thickness=0.3),
            steps=[dict(range=[lo, lo + third], color="#fecaca"),
                   dict(range=[lo + third, hi - third], color="#e5e7eb"),
                   dict(range=[hi - third, hi], color="#bbf7d0")],
        ),
    ))
    fig.update_layout(height=170, margin=dict(l=25, r=25, t=10, b=5))
    return fig


def saliency_bars(tokens: list[str], scores: np.ndarray, hide_specials: bool = True) -> go.Figure:
    """Signed bar per token in reading order (tokens kept apart even when they repeat)."""
    keep = [i for i, t in enumerate(tokens) if not (hide_specials and t in SPECIAL_TOKENS)]
    vals = [float(scores[i]) for i in keep]
    fig = go.Figure(go.Bar(
        x=list(range(len(keep))), y=vals, marker_color=["#16a34a" if v >= 0 else "#dc2626" for v in vals],
        customdata=[esc(tokens[i]) for i in keep], hovertemplate="%{customdata}: %{y:+.4f}<extra></extra>",
    ))
    fig.update_layout(
        height=260, xaxis=dict(tickmode="array", tickvals=list(range(len(keep))),
                               ticktext=[esc(tokens[i]) for i in keep], tickangle=-60),
        yaxis_title="attribution", **COMPACT,
    )
    return fig
