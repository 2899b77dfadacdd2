"""Checkpoint loading: every broken checkpoint is a CheckpointError (so serving falls back), and the weights
files are checked against the SHA-256 sums saved with them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from mtl_core.model.checkpoint import CHECKSUMS, CheckpointError, load_checkpoint
from mtl_core.model.registry import Registry
from mtl_core.serve.predictor import load_active_predictor
from tests.helpers.workspace import register_copy


@pytest.fixture
def ckpt(tiny_checkpoint, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_checkpoint, tmp_path / "ckpt"))


def reshape_a_head(root: Path) -> str:
    """Save heads.safetensors with one tensor a row longer, as a pre-checksum checkpoint (no checksums.json)."""
    heads = load_file(str(root / "heads.safetensors"))
    name = next(k for k, v in heads.items() if v.dim() == 2)
    heads[name] = torch.cat([heads[name], heads[name][:1]])
    save_file(heads, str(root / "heads.safetensors"))
    (root / CHECKSUMS).unlink()
    return name


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the tensor data: safetensors itself would load it silently
    path.write_bytes(bytes(data))


def test_save_records_a_checksum_for_every_weights_file(ckpt):
    sums = json.loads((ckpt / CHECKSUMS).read_text())["sha256"]
    assert set(sums) == {"encoder/model.safetensors", "heads.safetensors"}


def test_mismatched_head_shape_is_a_checkpoint_error(ckpt):
    reshape_a_head(ckpt)
    with pytest.raises(CheckpointError, match="do not fit the model"):
        load_checkpoint(ckpt)


@pytest.mark.parametrize("weights", ["heads.safetensors", "encoder/model.safetensors"])
def test_a_flipped_bit_is_caught_and_names_the_file(ckpt, weights):
    flip_a_byte(ckpt / weights)
    with pytest.raises(CheckpointError, match=f"corrupted: weights file {weights} does not match"):
        load_checkpoint(ckpt)


def test_a_checkpoint_saved_before_checksums_still_loads(ckpt, tiny_checkpoint):
    (ckpt / CHECKSUMS).unlink()
    model, _, _, _ = load_checkpoint(ckpt)
    reference, _, _, _ = load_checkpoint(tiny_checkpoint)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))


@pytest.mark.parametrize("corrupt", ["shape", "bit"])
def test_the_active_version_falls_back_to_the_previous_one(tmp_path, tiny_checkpoint, corrupt):
    home = tmp_path / "ws"
    good = register_copy(home, tiny_checkpoint, note="good")
    bad = register_copy(home, tiny_checkpoint, note="bad", activate=True)
    broken = Registry(home).path_of(bad.id)
    if corrupt == "shape":
        reshape_a_head(broken)
    else:
        flip_a_byte(broken / "heads.safetensors")
    pred = load_active_predictor(home)
    assert pred.version == good.id and pred.meta["fallback_from"] == bad.id
    assert bad.id in pred.meta["fallback_errors"][0]
