"""The lab's figures: gradient conflict over the steps, the task-affinity heatmap, dev curves per task.

Data in (a LabResult's dicts, or the job's metric points: step, run, metric, task, value), plotly figures out.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

HEIGHT = 320
MARGIN = dict(l=10, r=10, t=40, b=10)


def conflict_figure(conflict: dict) -> go.Figure:
    """A result's probe run: the share of task pairs whose gradients conflict (cos < 0), and each pair's cosine."""
    steps = conflict.get("steps", [])
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("Conflicting pairs (cos < 0)", "Gradient cosine per task pair"))
    fig.add_trace(go.Scatter(x=steps, y=conflict.get("fraction", []), mode="lines+markers", name="conflicting",
                             line=dict(color="crimson")), row=1, col=1)
    for pair, cos in sorted(conflict.get("pairs", {}).items()):
        fig.add_trace(go.Scatter(x=steps, y=cos, mode="lines", name=pair.replace("|", " · ")), row=2, col=1)
    fig.add_hline(y=0, line_dash="dot", line_color="gray", row=2, col=1)
    fig.update_yaxes(title_text="fraction", range=[0, 1], row=1, col=1)
    fig.update_yaxes(title_text="cosine", range=[-1, 1], row=2, col=1)
    fig.update_xaxes(title_text="step", row=2, col=1)
    run = conflict.get("run", "")
    fig.update_layout(height=2 * HEIGHT, margin=MARGIN, title=f"Gradient conflict ({run})" if run else
                      "Gradient conflict")
    return fig


def live_conflict_figure(points: pd.DataFrame) -> go.Figure:
    """While a lab runs: the share of conflicting pairs over the steps, a line per run that probes."""
    rows = points[points["metric"] == "conflict"].sort_values("step")
    fig = go.Figure()
    for run, part in rows.groupby("run", sort=True):
        fig.add_trace(go.Scatter(x=part["step"], y=part["value"], mode="lines+markers", name=str(run)))
    fig.update_layout(height=HEIGHT, margin=MARGIN, title="Gradient conflict (share of pairs with cos < 0)",
                      xaxis_title="step", yaxis=dict(title="fraction", range=[0, 1]))
    return fig


def affinity_figure(affinity: dict) -> go.Figure:
    """Z[i][j]: how a step on task i (row) changed task j's loss (column); positive = i helps j. The diagonal is
    left blank."""
    tasks = list(affinity.get("tasks", []))
    # the diagonal (a step's effect on its own task) is blank: it would swamp the colour scale of the pairs
    matrix = [[None if i == j else v for j, v in enumerate(row)] for i, row in enumerate(affinity.get("matrix", []))]
    peak = max((abs(v) for row in matrix for v in row if v is not None), default=1.0) or 1.0
    text = [["" if v is None else f"{v:+.3f}" for v in row] for row in matrix]
    fig = go.Figure(go.Heatmap(z=matrix, x=tasks, y=tasks, text=text, texttemplate="%{text}",
                               colorscale="RdBu", zmid=0, zmin=-peak, zmax=peak,
                               colorbar=dict(title="affinity"),
                               hovertemplate="step on %{y} → loss of %{x}: %{z:+.4f}<extra></extra>"))
    run = affinity.get("run", "")
    fig.update_layout(height=max(HEIGHT, 60 * len(tasks) + 120), margin=MARGIN,
                      title=f"Task affinity ({run})" if run else "Task affinity",
                      xaxis_title="task whose loss changed", yaxis=dict(title="task stepped on",
                                                                        autorange="reversed"))
    return fig


def dev_figures(points: pd.DataFrame) -> dict[str, go.Figure]:
    """One figure per task: its dev metric over the steps, a line per run."""
    rows = points[(points["metric"] == "dev") & points["task"].notna()].sort_values("step")
    figures = {}
    for task, part in rows.groupby("task", sort=True):
        fig = go.Figure()
        for run, line in part.groupby("run", sort=True):
            fig.add_trace(go.Scatter(x=line["step"], y=line["value"], mode="lines+markers", name=str(run)))
        fig.update_layout(height=HEIGHT, margin=MARGIN, title=f"Dev metric: {task}", xaxis_title="step",
                          yaxis_title="dev metric")
        figures[str(task)] = fig
    return figures


def has(points: pd.DataFrame, metric: str) -> bool:
    return bool((points["metric"] == metric).any())
