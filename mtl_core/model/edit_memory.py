"""Edit memory: corrections the fine-tuned weights still get wrong, kept as key -> answer pairs.

A GRACE-style adaptor (Hartvigsen et al., "Aging with GRACE: Lifelong Model Editing with Discrete
Key-Value Adaptors", NeurIPS 2023) on a task head's input: a key is the representation of a corrected
text (sentence tasks: the pooled vector; NER: the contextual vector of a corrected word's first piece),
its value the corrected answer. An input whose representation lies within a key's radius (cosine
distance) gets that answer; every other input is answered by the network alone.

A key's radius is half the distance to the nearest reference example (replayed training data, dev)
whose gold answer conflicts with the key's value, capped by `radius_cap`: an edit never reaches a known
example it would answer wrongly. A correction with a conflicting example closer than `MIN_RADIUS` gets
no key (its label contradicts the data at that point; the weights decide).

The memory is part of the checkpoint (buffers in heads.safetensors), so the Predictor, evaluation and
the ONNX export all apply it; a fine-tuning round drops the base's memory and builds a new one from all
current corrections, because training moves every representation.
"""

from __future__ import annotations

import torch
from torch import nn

from mtl_core.model.features import IGNORE, collate, featurize, model_inputs, sorted_batches
from mtl_core.model.runner import ModelRunner
from mtl_core.tasks import MULTILABEL, TaskSpec

MIN_RADIUS = 1e-3  # below this a key would only match its own text, and only in the same numeric path
MARGIN = 10.0  # logit of a remembered class (softmax ~0.9999 against zeros)
REGRESSION_CONFLICT = 1.0  # a reference conflicts with a regression edit when its gold differs this much


class EditMemory(nn.Module):
    """One task's keys (N, H), radii (N,) and values (N,): class / tag ids, or normalised regression values."""

    def __init__(self, keys: torch.Tensor, radius: torch.Tensor, values: torch.Tensor, kind: str, n_out: int):
        super().__init__()
        self.kind = kind
        self.register_buffer("keys", nn.functional.normalize(keys.float(), dim=-1))
        self.register_buffer("radius", radius.float())
        self.register_buffer("values", values.long() if kind != "regression" else values.float())
        self.register_buffer("answers", torch.eye(n_out) * MARGIN if kind != "regression" else torch.zeros(1))

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def hits(self, reps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., H) representations -> (hit mask (...), index of the nearest key (...))."""
        flat = nn.functional.normalize(reps.float(), dim=-1)
        dist = 1.0 - flat @ self.keys.T
        best, idx = dist.min(-1)
        return best <= self.radius[idx], idx

    def forward(self, reps: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Override the head's logits wherever a key matches. reps (B, H) | (B, T, H)."""
        if len(self) == 0:
            return logits
        hit, idx = self.hits(reps)
        if self.kind == "regression":
            override = self.values[idx].unsqueeze(-1).to(logits.dtype)
        else:
            override = self.answers[self.values[idx]].to(logits.dtype)
        return torch.where(hit.unsqueeze(-1), override, logits)


def memory_from_state(state: dict, specs: dict) -> dict[str, EditMemory]:
    """EditMemory modules shaped like the `memory.<task>.*` tensors of a saved state dict."""
    out = {}
    for task, spec in specs.items():
        prefix = f"memory.{task}."
        if prefix + "keys" in state:
            out[task] = EditMemory(state[prefix + "keys"], state[prefix + "radius"], state[prefix + "values"],
                                   spec.kind, spec.n_outputs)
    return out


@torch.no_grad()
def representations(runner: ModelRunner, spec: TaskSpec, examples: list, batch_size: int = 64):
    """-> (reps, gold, predicted). Sentence tasks: one row per example; token tasks: one per labelled word.

    gold/predicted are class or tag ids (regression: normalised values)."""
    if not examples:
        return torch.empty(0), torch.empty(0), torch.empty(0)
    feats = featurize(spec, examples, runner.tokenizer, runner.length_for(spec))
    reps, gold, pred = [], [], []
    pad, model, device = runner.pad_id, runner.model, runner.device
    model.eval()
    for idx in sorted_batches(feats, batch_size):
        batch = collate([feats[i] for i in idx], spec.kind, pad)
        rep, logits = model.represent(**model_inputs(batch, device), task=spec.name)
        rep, logits, labels = rep.float().cpu(), logits.float().cpu(), batch["labels"]
        if spec.kind == "token_classification":
            keep = labels != IGNORE
            reps.append(rep[keep])
            gold.append(labels[keep])
            pred.append(logits.argmax(-1)[keep])
        else:
            reps.append(rep)
            gold.append(labels)
            pred.append(logits.squeeze(-1) if spec.kind == "regression" else logits.argmax(-1))
    cat = (lambda xs: torch.cat(xs)) if reps else (lambda xs: torch.empty(0))
    return cat(reps), cat(gold), cat(pred)


def disagree(kind: str, a: torch.Tensor, b: torch.Tensor, half_range: float) -> torch.Tensor:
    """Elementwise (broadcasting): True where answer a contradicts answer b (class / tag ids, or normalised
    regression values more than REGRESSION_CONFLICT apart on the task's scale)."""
    if kind == "regression":
        return (a - b).abs() * half_range > REGRESSION_CONFLICT
    return a != b


def build_task_memory(runner: ModelRunner, spec: TaskSpec, corrections: list, references: list,
                      radius_cap: float) -> tuple[EditMemory | None, dict]:
    """Keys for the corrections (words, for NER) the model still gets wrong; radii bounded by references."""
    half = (spec.value_range[1] - spec.value_range[0]) / 2 if spec.kind == "regression" else 1.0
    reps, gold, pred = representations(runner, spec, corrections)
    stats = {"candidates": int(gold.numel()), "keys": 0, "conflicting": 0}
    if not gold.numel():
        return None, stats
    wrong = disagree(spec.kind, gold, pred, half)
    keys, values = nn.functional.normalize(reps[wrong], dim=-1), gold[wrong]
    if not len(values):
        return None, stats
    ref_reps, ref_gold, _ = representations(runner, spec, references)
    # every correction is a reference too, the ones the weights already get right included: an edit must
    # not claim another correction's input (nor undo what the weights learnt)
    corr_reps, corr_gold = nn.functional.normalize(reps, dim=-1), gold.to(values.dtype)
    all_reps = torch.cat([nn.functional.normalize(ref_reps, dim=-1), corr_reps]) if len(ref_gold) else corr_reps
    all_gold = torch.cat([ref_gold.to(values.dtype), corr_gold]) if len(ref_gold) else corr_gold
    dist = 1.0 - keys @ all_reps.T
    dist = torch.where(disagree(spec.kind, values[:, None], all_gold[None, :], half), dist, torch.full_like(dist, 2.0))
    radius = (dist.min(-1).values / 2).clamp(max=radius_cap)
    ok = radius >= MIN_RADIUS
    stats.update(keys=int(ok.sum()), conflicting=int((~ok).sum()), still_wrong=int(wrong.sum()))
    if not ok.any():
        return None, stats
    return EditMemory(keys[ok], radius[ok], values[ok], spec.kind, spec.n_outputs), stats


def attach_round_memory(runner: ModelRunner, corrections: dict[str, list], prepared: dict, radius_cap: float,
                        max_refs: int) -> dict[str, dict]:
    """Replace the model's memory with one built from a round's corrections; -> per-task stats.

    References: up to `max_refs` of the round's replayed originals (`prepared[task]["distill"]` flags
    them) and up to `max_refs` of its dev examples."""
    model = runner.model
    model.memory.clear()
    stats = {}
    for task, examples in corrections.items():
        spec = model.tasks[task]
        if spec.kind == MULTILABEL:  # keys hold one class id per text: label sets are left to the weights
            stats[task] = {"candidates": len(examples), "keys": 0, "conflicting": 0, "unsupported": 1}
            continue
        data = prepared.get(task, {})
        flags = data.get("distill") or []
        replay = [ex for ex, is_replay in zip(data.get("train", []), flags) if is_replay][:max_refs]
        refs = replay + list(data.get("dev", []))[:max_refs]
        memory, stats[task] = build_task_memory(runner, spec, examples, refs, radius_cap)
        if memory is not None:
            model.memory[task] = memory.to(runner.device)
    return stats
