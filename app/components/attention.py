"""Attention views: one head (or mean of heads), all heads as a thumbnail grid, rollout.

Inputs are the (L, A, T, T) array from `Prediction.attentions` and the token list; no model access.
Token axes use integer positions with tick text, because plotly merges repeated category labels.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from app.components.html import SPECIAL_TOKENS, esc

MAX_THUMB_TOKENS = 24  # thumbnails are block-averaged down to this many tokens (keeps the figure small)


def keep_index(tokens: list[str], hide_specials: bool) -> list[int]:
    """Positions to show; [CLS]/[SEP] soak up attention and can drown out the rest."""
    idx = [i for i, t in enumerate(tokens) if not (hide_specials and t in SPECIAL_TOKENS)]
    return idx or list(range(len(tokens)))


def head_matrix(attentions: np.ndarray, layer: int, head: int | None) -> np.ndarray:
    """(T, T) weights of one head, or the mean over heads when `head` is None."""
    att = attentions[layer]
    return att.mean(axis=0) if head is None else att[head]


def heatmap(matrix: np.ndarray, tokens: list[str], keep: list[int], title: str = "",
            colorscale: str = "Blues") -> go.Figure:
    """Rows = attending token (query), columns = attended token (key)."""
    sub = matrix[np.ix_(keep, keep)]
    labels = [esc(tokens[i]) for i in keep]
    pos = list(range(len(keep)))
    fig = go.Figure(go.Heatmap(
        z=np.round(sub, 4), x=pos, y=pos, colorscale=colorscale, zmin=0,
        customdata=[[[labels[r], labels[c]] for c in pos] for r in pos],
        hovertemplate="%{customdata[0]} → %{customdata[1]}: %{z:.3f}<extra></extra>",
    ))
    side = min(720, 180 + 14 * len(keep))
    axis = dict(tickmode="array", tickvals=pos, ticktext=labels, tickfont=dict(size=10))
    fig.update_layout(
        title=dict(text=esc(title), x=0, font=dict(size=13)), height=side + 40,
        xaxis=dict(**axis, tickangle=-60, side="top"), yaxis=dict(**axis, autorange="reversed"),
        margin=dict(l=10, r=10, t=70 if title else 40, b=10),
    )
    return fig


def _block_mean(matrix: np.ndarray, size: int) -> np.ndarray:
    """Average a (T, T) matrix down to at most (size, size) so a 128-token thumbnail stays light."""
    t = matrix.shape[0]
    if t <= size:
        return matrix
    edges = np.linspace(0, t, size + 1).astype(int)
    rows = np.add.reduceat(matrix, edges[:-1], axis=0) / np.diff(edges)[:, None]
    return np.add.reduceat(rows, edges[:-1], axis=1) / np.diff(edges)[None, :]


def heads_grid(attentions: np.ndarray, keep: list[int], selected: tuple[int, int | None] | None = None
               ) -> go.Figure:
    """Every layer x head as one tiled heatmap (one trace: fast), gaps between tiles.

    Rows are layers (top = first), columns are heads; `selected` (layer, head) gets an outline.
    Each tile is scaled to its own maximum: the point is to compare patterns, not strengths.
    """
    n_layers, n_heads = attentions.shape[:2]
    tiles = [[_block_mean(attentions[la, h][np.ix_(keep, keep)], MAX_THUMB_TOKENS)
              for h in range(n_heads)] for la in range(n_layers)]
    size = tiles[0][0].shape[0]
    step = size + 1  # one NaN row/column as a gap
    canvas = np.full((n_layers * step - 1, n_heads * step - 1), np.nan)
    for la in range(n_layers):
        for h in range(n_heads):
            tile = tiles[la][h]
            canvas[la * step:la * step + size, h * step:h * step + size] = tile / max(tile.max(), 1e-9)
    fig = go.Figure(go.Heatmap(z=np.round(canvas, 3), colorscale="Blues", showscale=False, hoverinfo="skip"))
    centers = lambda n: [i * step + (size - 1) / 2 for i in range(n)]  # noqa: E731
    fig.update_layout(
        height=60 + 60 * n_layers, margin=dict(l=10, r=10, t=30, b=10),
        xaxis=dict(tickmode="array", tickvals=centers(n_heads), ticktext=[f"H{h + 1}" for h in range(n_heads)],
                   side="top", showgrid=False, zeroline=False),
        yaxis=dict(tickmode="array", tickvals=centers(n_layers), ticktext=[f"L{la + 1}" for la in range(n_layers)],
                   autorange="reversed", showgrid=False, zeroline=False, scaleanchor="x"),
    )
    if selected is not None and selected[1] is not None:
        la, h = selected
        fig.add_shape(type="rect", x0=h * step - 0.5, x1=h * step + size - 0.5, y0=la * step - 0.5,
                      y1=la * step + size - 0.5, line=dict(color="#f59e0b", width=3))
    return fig


def rollout_relevance(rollout: np.ndarray, tokens: list[str], keep: list[int]) -> go.Figure:
    """How much the [CLS] position (row 0) draws on each input token after rollout."""
    vals = [float(rollout[0, i]) for i in keep]
    labels = [esc(tokens[i]) for i in keep]
    fig = go.Figure(go.Bar(x=list(range(len(keep))), y=vals, marker_color="#2563eb",
                           customdata=labels, hovertemplate="%{customdata}: %{y:.3f}<extra></extra>"))
    fig.update_layout(height=240, margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(tickmode="array", tickvals=list(range(len(keep))), ticktext=labels, tickangle=-60))
    return fig
