"""A training job's live curves (Train page rounds, the first model on the Predict page): metric points in,
plotly figures out. Points: a DataFrame with columns step, task, name, value (one row per job metric)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

LOSS, DEV = "train_loss", "dev"


def _figure(points: pd.DataFrame, name: str, axis: str, title: str, marks: dict[int, str] | None) -> go.Figure:
    rows = points[points["name"] == name].sort_values("step")
    # markers: a task with a single point so far (a quick run evaluates once) is a dot, not nothing
    fig = px.line(rows, x="step", y="value", color="task", markers=True, labels={"value": axis})
    for step, label in (marks or {}).items():  # e.g. where a second model's training starts over
        fig.add_vline(x=step, line_dash="dot", line_color="gray", annotation_text=label,
                      annotation_position="top left")
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), title=title)
    return fig


def loss_figure(points: pd.DataFrame, marks: dict[int, str] | None = None) -> go.Figure:
    """Training loss per task over the steps; `marks`: {step: label} drawn as dotted vertical lines."""
    return _figure(points, LOSS, "training loss", "Training loss per task", marks)


def dev_figure(points: pd.DataFrame, marks: dict[int, str] | None = None) -> go.Figure:
    """Each task's primary dev metric at every evaluation."""
    return _figure(points, DEV, "dev metric", "Dev metric per task", marks)


def has_points(points: pd.DataFrame, name: str) -> bool:
    return bool((points["name"] == name).any())
