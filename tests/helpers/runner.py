"""A CPU `ModelRunner` with the tiny model's 64-token budget."""

import torch

from mtl_core.model.runner import ModelRunner


def cpu_runner(model, tokenizer, max_length: int = 64) -> ModelRunner:
    return ModelRunner(model, tokenizer, torch.device("cpu"), max_length)
