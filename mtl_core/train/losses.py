"""Each task kind's training loss (soft distillation targets: distill.py)."""

from __future__ import annotations

import torch
from torch import nn

from mtl_core.model.crf import crf_loss
from mtl_core.model.features import IGNORE
from mtl_core.tasks import MULTILABEL


def task_loss(kind: str, logits: torch.Tensor, labels: torch.Tensor, crf: nn.Module | None = None) -> torch.Tensor:
    """MSE (regression), cross-entropy per labelled token or per text, binary cross-entropy per label
    (multi-label: logits and multi-hot labels (B, n_labels)); a token head with a CRF: its NLL."""
    if crf is not None:
        return crf_loss(crf, logits, labels)
    if kind == "regression":
        return nn.functional.mse_loss(logits.squeeze(-1).float(), labels.float())
    if kind == "token_classification":
        return nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE)
    if kind == MULTILABEL:
        return nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float())
    return nn.functional.cross_entropy(logits.float(), labels)


def head_crf(model: nn.Module, task: str) -> nn.Module | None:
    """The CRF of a task's head, if it has one (DDP keeps the model in `.module`)."""
    return getattr(getattr(model, "module", model).heads[task], "crf", None)
