"""Which task trains next (samplers) and how much its loss counts (loss weighting)."""

from __future__ import annotations

import math
import random

import torch
from torch import nn

SAMPLINGS = ("proportional", "temperature", "round_robin")
WEIGHTINGS = ("equal", "static", "uncertainty", "dwa")


class TaskSampler:
    """Per-task batches: p(task) ∝ n (proportional), n^(1/T) (temperature), or a fixed cycle (round_robin)."""

    def __init__(self, sizes: dict[str, int], how: str, temperature: float, rng: random.Random,
                 boost: dict[str, float] | None = None):
        self.names = [n for n, s in sizes.items() if s > 0]
        self.how, self.rng, self._i = how, rng, 0
        power = 1.0 if how == "proportional" else 1.0 / temperature
        boost = boost or {}
        raw = [sizes[n] ** power * boost.get(n, 1.0) for n in self.names]
        self.probs = [r / sum(raw) for r in raw]

    def next(self) -> str:
        if self.how == "round_robin":
            name = self.names[self._i % len(self.names)]
            self._i += 1
            return name
        return self.rng.choices(self.names, weights=self.probs, k=1)[0]


class LossWeighting(nn.Module):
    """Combines per-task losses. `uncertainty` learns log-variances (Kendall et al. 2018);
    `dwa` re-weights by how fast each task's loss fell over the last two windows (Liu et al. 2019)."""

    def __init__(self, how: str, tasks: list, dwa_temperature: float = 2.0, dwa_window: int = 50):
        super().__init__()
        self.how = how
        self.names = [t.name for t in tasks]
        self.static = {t.name: float(t.loss_weight) for t in tasks}
        self.kind = {t.name: t.kind for t in tasks}
        self.log_vars = nn.ParameterDict({n: nn.Parameter(torch.zeros(())) for n in self.names})
        self.log_vars.requires_grad_(how == "uncertainty")
        self.dwa_t, self.window = dwa_temperature, dwa_window
        self._sums = {n: [0.0, 0] for n in self.names}
        self._hist: dict[str, list[float]] = {n: [] for n in self.names}
        self.dwa_weights = {n: 1.0 for n in self.names}

    def forward(self, name: str, loss: torch.Tensor, observed: float | None = None) -> torch.Tensor:
        """`observed`: the task's loss over all ranks (DWA tracks it; `loss` is then this rank's part)."""
        if self.how == "static":
            return self.static[name] * loss
        if self.how == "uncertainty":
            s = self.log_vars[name]
            # regression losses get the 1/2 factor of the Gaussian likelihood
            scale = 0.5 if self.kind[name] == "regression" else 1.0
            return scale * torch.exp(-s) * loss + 0.5 * s
        if self.how == "dwa":
            self._track(name, float(loss.detach()) if observed is None else observed)
            return self.dwa_weights[name] * loss
        return loss

    def _track(self, name: str, value: float) -> None:
        acc = self._sums[name]
        acc[0] += value
        acc[1] += 1
        if acc[1] < self.window:
            return
        self._hist[name].append(acc[0] / acc[1])
        self._sums[name] = [0.0, 0]
        ready = [n for n in self.names if len(self._hist[n]) >= 2]
        if not ready:
            return
        ratios = {n: self._hist[n][-1] / max(self._hist[n][-2], 1e-8) for n in ready}
        exp = {n: math.exp(r / self.dwa_t) for n, r in ratios.items()}
        total = sum(exp.values())
        for n in ready:
            self.dwa_weights[n] = len(ready) * exp[n] / total

    def current(self) -> dict[str, float]:
        if self.how == "uncertainty":
            return {n: float(torch.exp(-self.log_vars[n].detach())) for n in self.names}
        if self.how == "dwa":
            return dict(self.dwa_weights)
        if self.how == "static":
            return dict(self.static)
        return {n: 1.0 for n in self.names}
