"""Inference-time fusion of the sentence heads: pool once, one GEMM for all the heads' first layers.

Each sentence head is Linear(H, H) -> GELU -> Linear(H, C). With k heads a forward runs k poolings,
2k small GEMMs and k GELUs. At batch 1 on a CPU these cost per call, not per FLOP: about 0.9 ms per
text on 2 cores, 5 % of the encoder forward, which is what kept the Predictor above 1.15x the bare
encoder. Stacked, the first layers are one (kH, H) GEMM and one GELU, and the second layers one
block-diagonal (sum C, kH) GEMM. Every output is the same dot products as before, so the logits match
the per-head path up to float summation order (checked in tests/test_fused_heads.py).

Training and gradient saliency keep the per-head path (dropout, autograd); the fused weights are a
cache rebuilt whenever a head parameter changes (optimizer step, load_state_dict, .to(device)).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class FusedSentenceHeads:
    """The first and second layers of several `SentenceHead`s, stacked into two matrices."""

    def __init__(self, names: tuple[str, ...], heads: nn.ModuleDict):
        first = [heads[n].net[1] for n in names]
        second = [heads[n].net[4] for n in names]
        self.names = names
        self.sizes = [layer.out_features for layer in second]
        hidden = first[0].out_features
        self.w1 = torch.cat([layer.weight for layer in first])  # (k*H, H)
        self.b1 = torch.cat([layer.bias for layer in first])  # (k*H,)
        self.w2 = first[0].weight.new_zeros(sum(self.sizes), hidden * len(names))  # (sum C, k*H), block-diagonal
        row = 0
        for i, layer in enumerate(second):
            self.w2[row:row + layer.out_features, i * hidden:(i + 1) * hidden] = layer.weight
            row += layer.out_features
        self.b2 = torch.cat([layer.bias for layer in second])  # (sum C,)

    def __call__(self, pooled: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, H) pooled vector -> task -> (B, C) logits."""
        hidden = F.gelu(F.linear(pooled, self.w1, self.b1))
        out = F.linear(hidden, self.w2, self.b2)
        return dict(zip(self.names, out.split(self.sizes, dim=-1)))


def fusable(heads: nn.ModuleDict, names: list[str]) -> bool:
    """Every named head is a plain fp32/bf16 SentenceHead (Dropout, Linear, GELU, Dropout, Linear)."""
    for n in names:
        net = getattr(heads[n], "net", None)
        if net is None or len(net) != 5 or type(net[1]) is not nn.Linear or type(net[4]) is not nn.Linear:
            return False
        if not isinstance(net[2], nn.GELU) or net[2].approximate != "none":
            return False
    return len(names) > 1


def _params(heads: nn.ModuleDict, names: tuple[str, ...]) -> list[torch.Tensor]:
    return [p for n in names for layer in (heads[n].net[1], heads[n].net[4]) for p in (layer.weight, layer.bias)]


class FusedHeadCache:
    """Holds the FusedSentenceHeads for the current head weights.

    An in-place update (optimizer step, copy_) bumps a parameter's version and triggers a rebuild; the
    model calls `clear()` when parameters may be replaced (train(), load_state_dict, .to()), because
    walking the modules on every call to look for new parameter objects costs ~0.1 ms at batch 1.
    """

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        # one tuple, swapped whole: a reader in another thread sees either the old or the new state
        self._state: tuple = (None, [], (), None)  # names, params, their versions, fused heads

    @property
    def fused(self) -> FusedSentenceHeads | None:
        """What the last `get` built (None before any, or when the heads can't be fused)."""
        return self._state[3]

    def get(self, heads: nn.ModuleDict, names: tuple[str, ...]) -> FusedSentenceHeads | None:
        """The fused heads, or None when these heads can't be fused (then use the per-head path)."""
        cached_names, params, versions, fused = self._state
        if names == cached_names and tuple(p._version for p in params) == versions:
            return fused
        params, fused = [], None
        if fusable(heads, list(names)):
            params = _params(heads, names)
            with torch.no_grad():
                fused = FusedSentenceHeads(names, heads)
        self._state = (names, params, tuple(p._version for p in params), fused)
        return fused
