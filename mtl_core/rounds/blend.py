"""Keep part of a round's weight change: new = base + blend × (trained − base), per parameter.

Weight-space ensembling (WiSE-FT, Wortsman et al. 2022) of the base and the fine-tuned model. On the default
model a blend of 0.5 halved the negative flips of a 200-correction round and raised four of six test metrics,
for fewer corrections learnt by the weights alone (the edit memory answers the rest): docs/RESULTS.md,
"Learning loop". Parameters the base did not have (a joined task's new head) keep their trained values.
"""

from __future__ import annotations

import torch
from torch import nn


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's floating-point weights (on CPU), to blend back towards after training."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items() if v.is_floating_point()}


@torch.no_grad()
def blend_towards(model: nn.Module, base: dict[str, torch.Tensor], blend: float) -> int:
    """In place: every weight the base has moves back to base + blend × (now − base); -> how many were blended."""
    if blend >= 1.0:
        return 0
    state, n = model.state_dict(), 0
    for name, value in state.items():
        old = base.get(name)
        if old is None or old.shape != value.shape or not value.is_floating_point():
            continue
        value.copy_(old.to(value.device, value.dtype).lerp(value, blend))
        n += 1
    return n
