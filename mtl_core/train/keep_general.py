"""Keep the encoder general while it learns the tasks (`TrainConfig.keep_general`).

Supervised multi-task training pulls the pooled last layer towards the trained tasks' directions, and a new
task's few-shot head then transfers worse than on the pretrained encoder (docs/RESULTS.md, "Few-shot new
tasks"). This adds a relational distillation term (Park et al. 2019, "Relational Knowledge Distillation"): the
cosine similarities between the batch's texts, on the mean-pooled last layer, stay close to the pretrained
encoder's. Only the geometry is kept, not the vectors, so the heads can still rotate and scale it.

The teacher is a frozen copy, taken as training starts (the pretrained encoder for `train`, the base model in
a round), of the layers above the frozen ones. It runs on the student's states after the last frozen layer,
which are still the starting ones, so it costs a forward of the trainable layers without backward (~25 % of a
CPU step with the default 4 trainable layers).
No library provides this term for an arbitrary Hugging Face encoder, so it is written here.

Shapes: B = batch rows, T = tokens, H = hidden size.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from mtl_core.model.modeling import pool
from mtl_core.model.private_layers import run_private


class KeepGeneral:
    """The pretrained upper layers (frozen) and the weighted relational loss against them."""

    def __init__(self, model, weight: float, from_layer: int):
        layers = model.encoder.encoder.layer
        if not 0 <= from_layer < len(layers):
            raise ValueError(f"keep_general: no trainable encoder layer above layer {from_layer}")
        self.weight, self.from_layer = weight, from_layer
        self.config = model.encoder.config
        # not a submodule of the model: the copy must not be saved with the checkpoint nor trained
        self.teacher = copy.deepcopy(layers[from_layer:]).eval().requires_grad_(False)

    def to(self, device) -> KeepGeneral:
        self.teacher.to(device)
        return self

    def loss(self, hidden_states: tuple[torch.Tensor, ...], mask: torch.Tensor) -> torch.Tensor:
        """hidden_states: embeddings + each layer, (B, T, H); mask (B, T) -> weight x MSE of the (B, B) cosine
        matrices. A batch of one row has no pairs: 0."""
        if mask.shape[0] < 2:
            return hidden_states[-1].sum() * 0.0
        with torch.no_grad():
            start = hidden_states[self.from_layer].detach()
            t = F.normalize(pool(run_private(self.teacher, start, mask, self.config), mask, "mean").float(), dim=-1)
        s = F.normalize(pool(hidden_states[-1], mask, "mean").float(), dim=-1)  # (B, H)
        return self.weight * F.mse_loss(s @ s.T, t @ t.T)


def keep_general_for(model, weight: float, freeze_layers: int, device) -> KeepGeneral | None:
    """None when off. The teacher starts above the frozen layers (their output is still the starting one); with
    trainable embeddings (no frozen layer) it reads the embeddings' output, which then drifts too (an approximation)."""
    if weight <= 0:
        return None
    return KeepGeneral(model, weight, freeze_layers).to(device)
