"""The task heads on top of the shared encoder: a sentence head (pooled vector) and a token head (BIO tags).

Tensor shapes: B = batch, T = tokens, H = hidden size.
"""

from __future__ import annotations

import torch
from torch import nn

from mtl_core.model.crf import make_crf
from mtl_core.model.word_shape import N_SHAPES
from mtl_core.tasks import TaskSpec


def make_head(spec: TaskSpec, hidden: int, config) -> nn.Module:
    """The head for `spec` under a `ModelConfig` (dropout, word_shape, crf)."""
    if spec.kind == "token_classification":
        return TokenHead(hidden, spec.n_outputs, config.dropout, config.word_shape, config.crf)
    return SentenceHead(hidden, spec.n_outputs, config.dropout)


class SentenceHead(nn.Module):
    """Pooled representation -> class logits (or one regression output)."""

    def __init__(self, hidden: int, n_out: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, n_out)
        )

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:  # (B, H) -> (B, n_out)
        return self.net(pooled)


class TokenHead(nn.Module):
    """Token states (+ the word-shape embedding of each piece's word) -> BIO tag logits."""

    def __init__(self, hidden: int, n_out: int, dropout: float, shape_dim: int = 0, crf: bool = False):
        super().__init__()
        self.shape = nn.Embedding(N_SHAPES, shape_dim) if shape_dim else None
        self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden + shape_dim, n_out))
        self.crf = make_crf(n_out) if crf else None  # logits are then the CRF's emissions

    def forward(self, states: torch.Tensor, shape_ids: torch.Tensor | None = None) -> torch.Tensor:
        # (B, T, H), shape ids (B, T) -> (B, T, n_out); no shape ids = "no word" (id 0) everywhere
        if self.shape is not None:
            if shape_ids is None:
                shape_ids = torch.zeros(states.shape[:2], dtype=torch.long, device=states.device)
            states = torch.cat([states, self.shape(shape_ids).to(states.dtype)], dim=-1)
        return self.net(states)
