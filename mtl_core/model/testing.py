"""Tiny random-weight checkpoints with the real tokenizer: fast stand-ins for tests and demos."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer

from mtl_core.model.checkpoint import save_checkpoint
from mtl_core.model.modeling import (
    ModelConfig,
    MultiTaskModel,
    default_encoder_dir,
    encoder_from_config,
    tiny_encoder_config,
)
from mtl_core.tasks import TaskFile, load_task_file


def make_tiny_checkpoint(out_dir: str | Path, task_file: TaskFile | None = None, seed: int = 0,
                         **config_overrides) -> Path:
    """Save a ~1M-parameter random BERT with heads for every task of `task_file` (default tasks)."""
    torch.manual_seed(seed)
    task_file = task_file or load_task_file()
    tokenizer = AutoTokenizer.from_pretrained(default_encoder_dir())
    config = ModelConfig(**{"max_length": 64, **config_overrides})
    model = MultiTaskModel(encoder_from_config(tiny_encoder_config()), task_file.tasks, config)
    return save_checkpoint(model, tokenizer, task_file, out_dir, train_config={"tiny": True}, metrics={})
