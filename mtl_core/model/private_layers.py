"""Per-task private upper layers (`ModelConfig.shared_layers` = K, `ModelConfig.private_tasks`).

Two shapes:
- every task private (`private_tasks=None`): the encoder is cut to its lower K layers and each task runs its
  own copy of the upper ones on top (costs one upper stack per task at inference);
- some tasks private (`private_tasks=["ner"]`): the encoder keeps every layer for the other tasks, and each
  listed task branches off after layer K into its own copy of the upper layers (one extra stack per listed
  task). Why: sharing the top layer costs NER most (docs/RESULTS.md), the sentence tasks little.

Tensor shapes: B = batch, T = tokens, H = hidden size.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from transformers.masking_utils import create_bidirectional_mask


def make_private(encoder: nn.Module, names: list[str], shared_layers: int | None,
                 private_tasks: list[str] | None) -> tuple[nn.ModuleDict, int | None]:
    """-> (task -> its copy of the layers above K, K where listed tasks branch off a full encoder else None).
    Every task private: cuts `encoder` to K layers in place."""
    private = nn.ModuleDict()
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    k = shared_layers
    if k is None or layers is None or k >= len(layers):
        return private, None
    upper = layers[k:]
    for name in names if private_tasks is None else [n for n in names if n in private_tasks]:
        private[name] = copy.deepcopy(upper)
    if private_tasks is not None:
        return private, k
    encoder.encoder.layer = layers[:k]
    encoder.config.num_hidden_layers = k
    return private, None


def run_private(layers: nn.ModuleList, states: torch.Tensor, mask: torch.Tensor, encoder_config) -> torch.Tensor:
    """(B, T, H) states after the shared layers -> (B, T, H) after the task's own upper layers."""
    ext = create_bidirectional_mask(config=encoder_config, inputs_embeds=states, attention_mask=mask)
    for layer in layers:
        states = layer(states, attention_mask=ext)
        states = states[0] if isinstance(states, tuple) else states
    return states
