"""`ModelRunner`: the model with what every caller that runs it needs beside it (tokenizer, device, length).

Evaluation, answer comparison, edit memory and rounds take one of these instead of the
(model, tokenizer, device, max_length) group passed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from mtl_core.model.device import pick_device
from mtl_core.model.modeling import MultiTaskModel


@dataclass
class ModelRunner:
    model: MultiTaskModel
    tokenizer: PreTrainedTokenizerBase
    device: torch.device
    max_length: int  # the model's token budget; a task's own `max_length` wins where set

    @classmethod
    def of(cls, model: MultiTaskModel, tokenizer: PreTrainedTokenizerBase,
           device: str | torch.device | None = None) -> ModelRunner:
        """Bind `model` (moved to `device`: default CUDA when present, else CPU) to its tokenizer."""
        dev = device if isinstance(device, torch.device) else pick_device(device)
        return cls(model.to(dev), tokenizer, dev, model.config.max_length)

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id or 0

    def length_for(self, spec) -> int:
        """Token budget for one task: its own `max_length` if set, else the model's."""
        return spec.max_length or self.max_length
