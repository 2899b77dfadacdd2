"""Soft sharing for sentence heads: MMoE (Ma et al. 2018, multi-gate mixture of experts) on the pooled vector.

`ModelConfig.mmoe_experts = E` (0 = off) puts E small experts, shared by every task, between the pooled sentence
vector and the sentence heads; each sentence task has its own gate, a softmax over the experts, so tasks that
conflict can lean on different experts while the encoder below stays fully shared. Shapes: B = batch,
H = hidden size, E = experts.

Only sentence tasks go through it: a token head reads one state per token (B, T, H), and the gates are per
text. A task without a gate (none should exist: `MultiTaskModel.__init__`, `new_heads.add_heads` and
`task_edit.edit_model` keep one per task) falls back to the plain pooled vector. Checkpoints saved before
the option load with `mmoe_experts = 0` (the dataclass default), i.e. without it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mtl_core.tasks import TaskSpec

MAX_EXPERTS = 16


def check_experts(n: int) -> None:
    """ModelConfig.mmoe_experts: 0 (off) or 2..MAX_EXPERTS (one expert would be a plain shared layer)."""
    if n != 0 and not 2 <= n <= MAX_EXPERTS:
        raise ValueError(f"ModelConfig.mmoe_experts: must be 0 (off) or between 2 and {MAX_EXPERTS}")


def mmoe_for(tasks: list[TaskSpec], hidden: int, n_experts: int) -> MixtureOfExperts | None:
    """The model's MMoE (a gate per sentence task), or None when `n_experts` is 0."""
    names = [t.name for t in tasks if t.kind != "token_classification"]
    return MixtureOfExperts(hidden, n_experts, names) if n_experts else None


class MixtureOfExperts(nn.Module):
    """E experts Linear(H, H) + GELU over the pooled vector, one gate Linear(H, E) + softmax per task."""

    def __init__(self, hidden: int, n_experts: int, task_names: list[str]):
        super().__init__()
        check_experts(n_experts)
        self.hidden, self.n_experts = hidden, n_experts
        # the E experts' Linear(H, H) layers stacked into one (E*H, H) matrix: one GEMM instead of E
        self.experts = nn.Linear(hidden, n_experts * hidden)
        self.gates = nn.ModuleDict()
        for name in task_names:
            self.add_task(name)

    def add_task(self, name: str) -> None:
        """A new, randomly initialised gate for `name` (a task joining the model), on the experts' device/dtype."""
        ref = self.experts.weight
        self.gates[name] = nn.Linear(self.hidden, self.n_experts).to(ref.device, ref.dtype)

    def expert_outputs(self, pooled: torch.Tensor) -> torch.Tensor:  # (B, H) -> (B, E, H)
        return F.gelu(self.experts(pooled)).unflatten(-1, (self.n_experts, self.hidden))

    def gate(self, pooled: torch.Tensor, name: str) -> torch.Tensor:  # (B, H) -> (B, E), each row sums to 1
        return torch.softmax(self.gates[name](pooled), dim=-1)

    def forward(self, pooled: torch.Tensor, name: str) -> torch.Tensor:
        """(B, H) pooled vector -> (B, H) the task's mix of the experts, plus the pooled vector itself."""
        if name not in self.gates:
            return pooled
        mixed = torch.einsum("be,beh->bh", self.gate(pooled, name), self.expert_outputs(pooled))  # (B, H)
        # Residual: the heads keep the pretrained pooled vector and the experts learn a correction to it. Without
        # it, freshly initialised experts would replace the encoder's representation at step 0 (every head starts
        # from noise), and the encoder's gradient would pass only through the gated experts (scaled by the gate
        # weights), which slows and destabilises early training.
        return pooled + mixed
