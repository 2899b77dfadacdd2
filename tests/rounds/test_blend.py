"""Weight blending after a round (WiSE-FT): base + blend × (trained − base), new parameters kept whole."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtl_core.rounds.blend import blend_towards, snapshot
from mtl_core.rounds.config import RoundConfig


def test_blend_moves_each_weight_that_share_of_the_way_and_keeps_new_ones():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2))
    base = snapshot(model)
    before = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[0].bias.add_(-2.0)
    model.add_module("new", nn.Linear(2, 1))  # a joined head: not in the base
    new_head = model.new.weight.detach().clone()
    assert blend_towards(model, base, 0.25) == 2
    assert torch.allclose(model[0].weight, before + 0.25)
    assert torch.allclose(model[0].bias, base["0.bias"] - 0.5)
    assert torch.equal(model.new.weight, new_head)


def test_blend_of_one_changes_nothing_and_the_config_checks_the_range():
    model = nn.Linear(2, 2)
    base = {k: v * 0 for k, v in snapshot(model).items()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert blend_towards(model, base, 1.0) == 0
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="weight_blend"):
            RoundConfig(weight_blend=bad)
