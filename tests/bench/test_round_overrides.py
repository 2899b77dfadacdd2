"""The benches' --set FIELD=VALUE parsing: typed like RoundConfig's defaults, unknown fields refused."""

from __future__ import annotations

import pytest

from bench.common import round_overrides
from mtl_core.rounds.config import RoundConfig


def test_values_take_the_defaults_types_and_steps_joins_them():
    out = round_overrides(["distill_focal=5", "edit_memory=false", "steps=7", "strategy=lora"], steps=40)
    assert out == {"distill_focal": 5.0, "edit_memory": False, "steps": 7, "strategy": "lora"}
    assert isinstance(out["distill_focal"], float) and isinstance(out["steps"], int)
    assert RoundConfig(**out).distill_focal == 5.0
    assert round_overrides([], steps=40) == {"steps": 40} and round_overrides([]) == {}


def test_an_unknown_field_stops_with_its_name():
    with pytest.raises(SystemExit, match="nope"):
        round_overrides(["nope=1"])
