"""New task heads on a trained model (a fine-tuning round joining a task to the shared encoder).

A head is built exactly as `MultiTaskModel` builds it (kind, size, dropout, word shapes, CRF) and randomly
initialised; no existing weight changes. With per-task upper layers (`ModelConfig.shared_layers`), the new
task gets a copy of the first task's: the pretrained upper layers the others started from are gone. With MMoE
(`ModelConfig.mmoe_experts`), a new sentence task gets a new gate over the trained, shared experts.
"""

from __future__ import annotations

import copy

import torch

from mtl_core.model.heads import make_head
from mtl_core.model.modeling import MultiTaskModel
from mtl_core.tasks import TaskSpec


def add_heads(model: MultiTaskModel, specs: list[TaskSpec], seed: int = 0) -> None:
    """Register a new, randomly initialised head per spec (ValueError for a task the model has already).

    `seed` fixes the initialisation (every rank of a distributed round builds the same heads) without
    touching the global random state."""
    taken = [s.name for s in specs if s.name in model.tasks]
    if taken:
        raise ValueError(f"the model already has a head for {taken}")
    ref = next(model.heads.parameters())
    hidden = model.encoder.config.hidden_size
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for spec in specs:
            model.heads[spec.name] = make_head(spec, hidden, model.config).to(ref.device, ref.dtype)
            if len(model.private) and model.branch_from is None:  # every task private: the new one too
                model.private[spec.name] = copy.deepcopy(next(iter(model.private.values())))
            if model.mmoe is not None and spec.kind != "token_classification":
                model.mmoe.add_task(spec.name)  # its own gate over the shared experts (mmoe.py)
            model.tasks[spec.name] = spec
    model.train(model.training)  # clears the fused-head cache: the set of heads changed
