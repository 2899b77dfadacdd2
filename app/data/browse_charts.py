"""Plotly figures of the Data page's Browse tab: label distribution, histograms, the confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from app.components.charts import COMPACT
from app.components.html import esc  # Plotly renders a few HTML tags in labels: task labels are data


def label_bars(counts: pd.DataFrame, axis: str = "examples") -> go.Figure:
    """One bar per label (columns label, count)."""
    fig = go.Figure(go.Bar(x=[esc(v) for v in counts["label"]], y=counts["count"].tolist(), marker_color="#2563eb",
                           hovertemplate="%{x}: %{y:,}<extra></extra>"))
    fig.update_layout(height=260, yaxis_title=axis, **COMPACT)
    return fig


def histogram(values: Sequence[float], axis: str, bins: int = 30) -> go.Figure:
    """A histogram of `values` (text lengths, or a regression task's gold values)."""
    fig = go.Figure(go.Histogram(x=list(values), nbinsx=bins, marker_color="#64748b",
                                 hovertemplate="%{x}: %{y:,}<extra></extra>"))
    fig.update_layout(height=260, xaxis_title=axis, yaxis_title="examples", bargap=0.05, **COMPACT)
    return fig


def confusion_heatmap(table: pd.DataFrame) -> go.Figure:
    """Rows gold, columns the model's answers, a count in each cell. Plotly reports no selection on a
    heatmap, so an invisible marker sits on every cell: clicking a cell selects its marker, whose
    customdata is [gold index, answer index] (see browse.cell_from_points)."""
    gold = [esc(v) for v in table.index]
    answer = [esc(v) for v in table.columns]
    z = table.to_numpy().tolist()  # plain lists: the chart's JSON stays readable (no base64 arrays)
    fig = go.Figure(go.Heatmap(z=z, x=answer, y=gold, colorscale="Blues", showscale=False, hoverinfo="skip",
                               text=z, texttemplate="%{text:,}"))
    cells = [(g, a) for g in range(len(gold)) for a in range(len(answer))]
    fig.add_trace(go.Scatter(
        x=[answer[a] for _, a in cells], y=[gold[g] for g, _ in cells], mode="markers",
        marker=dict(size=28, symbol="square", opacity=0), customdata=[[g, a] for g, a in cells],
        text=[f"{z[g][a]:,}" for g, a in cells], showlegend=False,
        hovertemplate="gold %{y} · answer %{x}: %{text} (click: show them)<extra></extra>",
        unselected=dict(marker=dict(opacity=0)), selected=dict(marker=dict(opacity=0.25, color="#f59e0b")),
    ))
    size = 60 + 34 * len(gold)
    fig.update_layout(height=max(220, size), xaxis=dict(title="model's answer", side="top"),
                      yaxis=dict(title="gold", autorange="reversed"), hovermode="closest", hoverdistance=-1,
                      clickmode="event+select", dragmode=False,
                      margin=dict(l=10, r=10, t=60, b=10))
    return fig
