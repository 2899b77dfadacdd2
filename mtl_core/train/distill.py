"""Replay with the base model's own answers as targets (knowledge distillation, as in LwF).

A fine-tuning round replays original training examples so the shared encoder does not forget. With a
hard gold label, a replayed example the base model got wrong (or was unsure of) still pulls the model
somewhere new; with the base model's answer as the target, replay says "keep answering what you
answered", which is the thing a round must not change. `blend` mixes the two:
target = blend x teacher + (1 - blend) x gold.

Soft targets are computed once, before training, by the model itself (it is the teacher until its
first update), in eval mode and without gradients.

Focal distillation (Yan et al. 2021, "positive-congruent training"): with `focal` = beta > 0, a replayed
example the teacher answered right weighs 1 + beta in the loss, the others 1, so the round holds on hardest to
the answers a negative flip would break. "Right" is the evaluation's rule: same class, every tag, or a value
within `tolerance` (in the head's normalised units).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from mtl_core.eval.compare import REGRESSION_TOLERANCE, is_right
from mtl_core.model.decoding import regression_target
from mtl_core.model.features import IGNORE, Feature, collate, model_inputs, sorted_batches
from mtl_core.tasks import MULTILABEL, TaskSpec

if TYPE_CHECKING:  # annotations only: no import cost or cycle at run time
    from mtl_core.model.modeling import MultiTaskModel


@torch.no_grad()
def attach_teacher_targets(model: MultiTaskModel, task: str, kind: str, feats: list[Feature], which: list[bool], blend: float,
                           pad_id: int, device, n_labels: int, batch_size: int = 64, focal: float = 0.0,
                           tolerance: float = 0.0) -> int:
    """Set `f.soft` (and, with `focal`, `f.soft_weight`) on the features flagged in `which`; returns how many
    got one."""
    chosen = [f for f, flag in zip(feats, which) if flag]
    if not chosen or blend <= 0:
        return 0
    was_training = model.training
    model.eval()
    for idx in sorted_batches(chosen, batch_size):
        group = [chosen[i] for i in idx]
        batch = collate(group, kind, pad_id)
        logits = model(**model_inputs(batch, device), tasks=[task]).logits[task].float().cpu()
        for f, out in zip(group, logits):
            f.soft = _blended_target(kind, f, out, blend, n_labels)
            if focal > 0:
                f.soft_weight = 1.0 + focal * _teacher_right(kind, f, out, tolerance)
    model.train(was_training)
    return len(chosen)


def _blended_target(kind: str, f: Feature, out: torch.Tensor, blend: float, n_labels: int):
    if kind == "regression":
        teacher = out.squeeze(-1)
    elif kind == "token_classification":
        teacher = out[: len(f.label)].softmax(-1)
    elif kind == MULTILABEL:
        teacher = out.sigmoid()  # independent per-label probabilities
    else:
        teacher = out.softmax(-1)
    return (blend * teacher + (1 - blend) * _gold_target(kind, f, n_labels)).tolist()


def _teacher_right(kind: str, f: Feature, out: torch.Tensor, tolerance: float) -> bool:
    """Whether the teacher's answer counts as right under the evaluation's rule (eval/compare.is_right), with
    class / tag ids for labels (multi-label at 0.5: the task's tuned thresholds are not at hand here)."""
    if kind == "regression":
        return is_right(kind, float(f.label), float(out.squeeze(-1)), tolerance)
    if kind == MULTILABEL:
        return is_right(kind, {i for i, v in enumerate(f.label) if v}, set((out > 0).nonzero().flatten().tolist()))
    if kind == "token_classification":
        gold = torch.tensor(f.label)
        keep = gold != IGNORE  # the first piece of each word carries its tag
        return is_right(kind, gold[keep].tolist(), out[: len(f.label)].argmax(-1)[keep].tolist())
    return is_right(kind, int(f.label), int(out.argmax()))


def normalised_tolerance(spec: TaskSpec) -> float:
    """The evaluation's regression tolerance in the head's normalised units (0 for other kinds)."""
    if spec.kind != "regression":
        return 0.0
    lo = spec.value_range[0]
    return regression_target(spec, lo + REGRESSION_TOLERANCE) - regression_target(spec, lo)


def _gold_target(kind: str, f: Feature, n_labels: int) -> torch.Tensor:
    """The gold label as a target: the value (regression), else one-hot per example or per token."""
    if kind == "regression":
        return torch.tensor(float(f.label))
    if kind == MULTILABEL:
        return torch.tensor(f.label, dtype=torch.float)  # already multi-hot
    gold = torch.tensor(f.label if kind == "token_classification" else int(f.label))
    return nn.functional.one_hot(gold.clamp(min=0), n_labels).float()  # ignored tokens (-100): masked in the loss


def soft_targets(features: list[Feature], kind: str, n_labels: int, width: int) -> torch.Tensor | None:
    """The batch's target tensor when any feature has a soft target (the others get their gold one).

    classification: (B, C) probabilities (multi-label: per label); token: (B, width, C); regression: (B,) values.
    None otherwise."""
    if not any(f.soft is not None for f in features):
        return None
    rows = [torch.tensor(f.soft) if f.soft is not None else _gold_target(kind, f, n_labels) for f in features]
    if kind != "token_classification":
        return torch.stack(rows).float()
    out = torch.zeros((len(features), width, n_labels))
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def soft_weights(features: list[Feature]) -> torch.Tensor | None:
    """(B,) loss weight per row (focal distillation), or None when every row weighs 1."""
    if all(f.soft_weight == 1.0 for f in features):
        return None
    return torch.tensor([f.soft_weight for f in features], dtype=torch.float)


def soft_loss(kind: str, logits: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor,
              weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy against probability targets (MSE for regression, per-label binary cross-entropy for
    multi-label); token positions with no label skip. `weights` (B,) scale each row's loss (not renormalised:
    focal distillation adds weight, as in the paper)."""
    if kind == "regression":
        rows = (logits.squeeze(-1).float() - targets.float()) ** 2
    elif kind == MULTILABEL:
        rows = nn.functional.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none").mean(-1)
    elif kind == "token_classification":
        keep = labels.flatten() != IGNORE
        flat = logits.flatten(0, 1).float()[keep]
        rows = -(targets.flatten(0, 1)[keep] * flat.log_softmax(-1)).sum(-1)  # one per labelled token
        if weights is not None:  # each token takes its row's weight
            weights = weights.repeat_interleave(labels.shape[1])[keep.to(weights.device)]
    else:
        rows = -(targets * logits.float().log_softmax(-1)).sum(-1)
    return (rows * weights.to(rows.device)).mean() if weights is not None else rows.mean()
