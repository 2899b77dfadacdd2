"""Explanations for one prediction: attention rollout and gradient saliency over input tokens.

Library code (no streamlit). Shapes: L = layers, A = heads, T = tokens, H = hidden size, S = IG steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from mtl_core.tasks import MULTILABEL

if TYPE_CHECKING:  # annotations only: no import cost or cycle at run time
    from mtl_core.model.modeling import MultiTaskModel
    from mtl_core.serve.predictor import Predictor

METHODS = ("grad_x_input", "integrated_gradients")


def attention_rollout(attentions: np.ndarray) -> np.ndarray:
    """(L, A, T, T) attention weights -> (T, T) rollout (Abnar & Zuidema 2020); rows sum to 1.

    Heads are averaged, the identity models the residual connection, rows are renormalised, and the
    per-layer matrices are multiplied bottom-up so row i says how much output token i draws on input j.
    """
    att = np.asarray(attentions, dtype=np.float64)
    if att.ndim != 4 or att.shape[-1] != att.shape[-2]:
        raise ValueError(f"attention_rollout expects (layers, heads, T, T), got shape {att.shape}")
    eye = np.eye(att.shape[-1])
    rollout = eye
    for layer in att:
        joint = layer.mean(axis=0) + eye
        joint /= joint.sum(axis=-1, keepdims=True)
        rollout = joint @ rollout
    return rollout.astype(np.float32)


@dataclass
class Saliency:
    """Signed per-token attribution of one task's output; positive = pushes the target up."""

    tokens: list[str]
    scores: np.ndarray  # (T,) signed, one per token in `tokens`
    task: str
    target: str  # class (or multi-label: label) name, "value" for regression, the tag (or "predicted tags") for NER
    method: str
    output: float = 0.0  # the explained scalar f(x)
    baseline_output: float | None = None  # f(baseline), integrated gradients only


def saliency(predictor: Predictor, text: str, task: str, target: str | None = None, method: str = "grad_x_input",
             steps: int = 16) -> Saliency:
    """Gradient x input (or integrated gradients) on the word embeddings for one task of one text.

    Runs the model with grad enabled (even under an outer inference_mode) but never touches its
    train/eval state or its parameters' `.grad`.
    """
    if method not in METHODS:
        raise ValueError(f"unknown saliency method {method!r}; expected one of {METHODS}")
    if task not in predictor.model.tasks:
        raise ValueError(f"unknown task {task!r}; known: {predictor.task_names}")
    if steps < 1:
        raise ValueError("steps must be >= 1")
    spec = predictor.model.tasks[task]
    with torch.inference_mode(False), torch.enable_grad():
        # encode inside: tensors made under an outer inference_mode cannot enter autograd
        batch = predictor.encode([text])
        ids = batch.input_ids.to(predictor.device)
        mask = batch.attention_mask.to(predictor.device)
        shapes = batch.shape_ids.to(predictor.device) if batch.shape_ids is not None else None  # (1, T)
        word_starts = batch.word_starts(0, text)
        embed = predictor.model.encoder.get_input_embeddings()
        x = embed(ids).detach()  # (1, T, H)
        if method == "grad_x_input":
            scores, out, label = _grad_x_input(predictor.model, spec, x, mask, word_starts, target, shapes)
            base_out = None
        else:
            baseline = _baseline(predictor, embed, ids, batch.offsets[0])
            scores, out, base_out, label = _integrated(predictor.model, spec, x, baseline, mask, word_starts,
                                                       target, steps, shapes)
    return Saliency(tokens=list(batch.tokens[0]), scores=scores, task=task, target=label, method=method,
                    output=out, baseline_output=base_out)


def _grad_x_input(model: MultiTaskModel, spec, x, mask, word_starts, target, shapes=None):
    x = x.requires_grad_(True)
    raw = model(attention_mask=mask, inputs_embeds=x, tasks=[spec.name], shape_ids=shapes).logits[spec.name]
    select, label = _target_selector(spec, raw[0].detach(), word_starts, target)
    f = select(raw)  # (1,)
    (grad,) = torch.autograd.grad(f.sum(), x)
    scores = (grad * x).sum(-1)[0]
    return scores.detach().float().cpu().numpy(), float(f[0].detach()), label


def _integrated(model: MultiTaskModel, spec, x, baseline, mask, word_starts, target, steps, shapes=None):
    """Midpoint Riemann sum of the gradient along baseline -> x, every step (plus x and the baseline,
    for the target choice and the completeness check) in one batched forward."""
    alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps
    path = baseline + alphas.view(-1, 1, 1) * (x - baseline)  # (S, T, H)
    inputs = torch.cat([path, x, baseline], dim=0).detach().requires_grad_(True)
    shapes = None if shapes is None else shapes.expand(inputs.shape[0], -1)
    raw = model(attention_mask=mask.expand(inputs.shape[0], -1), inputs_embeds=inputs,
                tasks=[spec.name], shape_ids=shapes).logits[spec.name]
    select, label = _target_selector(spec, raw[steps].detach(), word_starts, target)
    f = select(raw)  # (S + 2,)
    (grad,) = torch.autograd.grad(f[:steps].sum(), inputs)
    mean_grad = grad[:steps].mean(0)  # (T, H)
    scores = ((x[0] - baseline[0]) * mean_grad).sum(-1)
    f = f.detach()
    return scores.detach().float().cpu().numpy(), float(f[steps]), float(f[steps + 1]), label


def _baseline(predictor: Predictor, embed, ids, offsets) -> torch.Tensor:
    """[PAD] embedding for every real token; [CLS]/[SEP] stay as they are, so the reference is
    "an empty sentence of the same length" and attributions land on words, not on the frame."""
    pad_id = predictor.tokenizer.pad_token_id
    pad_id = 0 if pad_id is None else pad_id
    special = torch.tensor([e <= s for s, e in offsets], device=ids.device)
    base_ids = torch.where(special, ids[0], torch.full_like(ids[0], pad_id))
    return embed(base_ids.unsqueeze(0)).detach()


def _target_selector(spec, raw_x: torch.Tensor, word_starts: list[bool], target: str | None):
    """-> (fn mapping head output (B, ...) to one scalar per row, target label)."""
    if spec.kind in ("classification", MULTILABEL):  # multi-label: one label's own logit (default: the most probable)
        labels = list(spec.labels)
        if target is None:
            k = int(raw_x.argmax())
        elif target in labels:
            k = labels.index(target)
        else:
            raise ValueError(f"task {spec.name!r} has no class {target!r}; classes: {labels}")
        return (lambda raw: raw[:, k]), labels[k]
    if spec.kind == "regression":
        lo, hi = spec.value_range
        # the head predicts on [-1, 1]; scale to the task's units (unclipped, so the map stays linear)
        return (lambda raw: (lo + hi) / 2 + (hi - lo) / 2 * raw[:, 0]), "value"
    return _tag_selector(spec, raw_x, word_starts, target)


def _tag_selector(spec, raw_x: torch.Tensor, word_starts: list[bool], target: str | None):
    """NER: sum over word-start tokens of the predicted tag's logit (or of a given tag's logit)."""
    tags = spec.tag_names
    starts = torch.tensor(word_starts, dtype=torch.bool, device=raw_x.device)
    if target is None:
        chosen = raw_x.argmax(-1)  # (T,) predicted tag per token
        label = "predicted tags"
    elif target in tags:
        chosen = torch.full(starts.shape, tags.index(target), dtype=torch.long, device=raw_x.device)
        label = target
    else:
        raise ValueError(f"task {spec.name!r} has no tag {target!r}; tags: {tags}")
    weight = torch.zeros(raw_x.shape, dtype=raw_x.dtype, device=raw_x.device)  # (T, C) one-hot mask
    weight[starts, chosen[starts]] = 1.0
    return (lambda raw: (raw * weight).sum(dim=(1, 2))), label
