"""Gradient probes while a lab run trains: do the tasks' gradients conflict, and does a step on one task help another?

Every `every` steps, on fixed probe batches (the same texts each time, dropout off):
- conflict: the cosine between every two tasks' gradients on the shared encoder, and the fraction of pairs
  below 0;
- affinity (TAG, Fifty et al. 2021, "lookahead"): for each task i, the shared parameters take one SGD step on
  task i's gradient; Z[i][j] = 1 - L_j(after) / L_j(before) says how much that step lowered task j's loss
  (positive: i helps j). Averaged over the probes of the run.
The lookahead step is plain SGD with `lookahead_lr` on the raw gradient (the paper uses the optimizer's own
step; an Adam step depends on its moments, which a lookahead cannot replay cheaply).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch

from mtl_core.progress import Reporter
from mtl_core.train.step import concat_inputs, task_losses

LOOKAHEAD_LR = 0.1  # large enough that Z[i][i] is clearly positive for every task on MiniLM (docs/LAB.md)


@dataclass
class ProbeRecord:
    steps: list[int] = field(default_factory=list)
    pairs: dict[str, list[float]] = field(default_factory=dict)  # "a|b" -> cosine per probe
    fraction: list[float] = field(default_factory=list)  # fraction of pairs with cosine < 0, per probe
    affinity_sum: list[list[float]] | None = None  # Σ over probes of Z (k, k)
    n_affinity: int = 0

    def affinity(self) -> list[list[float]] | None:
        if not self.n_affinity or self.affinity_sum is None:
            return None
        return [[v / self.n_affinity for v in row] for row in self.affinity_sum]


class GradientProbe:
    """`on_step` callback for `train()`: measures every `every` steps; `affinity=False` skips the lookahead."""

    def __init__(self, model, batches: dict[str, dict], kinds: dict[str, str], device, every: int,
                 reporter: Reporter | None = None, run: str = "", affinity: bool = True,
                 lookahead_lr: float = LOOKAHEAD_LR):
        self.model, self.batches, self.kinds, self.device = model, batches, kinds, device
        self.every, self.reporter, self.run, self.with_affinity = every, reporter, run, affinity
        self.lr = lookahead_lr
        self.names = list(batches)
        self.record = ProbeRecord()
        self.seconds = 0.0

    def __call__(self, step: int) -> None:
        if self.every <= 0 or step % self.every or len(self.names) < 2:
            return
        import time

        t0 = time.perf_counter()
        was_training = self.model.training
        self.model.eval()
        try:
            self._measure(step)
        finally:
            self.model.train(was_training)
            self.seconds += time.perf_counter() - t0

    def _measure(self, step: int) -> None:
        shared = [p for p in self.model.encoder.parameters() if p.requires_grad]
        before = self._losses(grad=True)
        grads = [torch.autograd.grad(before[n], shared, retain_graph=True, allow_unused=True) for n in self.names]
        flat = torch.stack([_flatten(g, shared) for g in grads])  # (k, n shared params)
        unit = flat / flat.norm(dim=1, keepdim=True).clamp(min=1e-12)
        cos = (unit @ unit.T).tolist()
        rec = self.record
        rec.steps.append(step)
        conflicts = []
        for i, j in itertools.combinations(range(len(self.names)), 2):
            key = f"{self.names[i]}|{self.names[j]}"
            rec.pairs.setdefault(key, []).append(cos[i][j])
            conflicts.append(cos[i][j] < 0)
            self._metric(step, "cos", cos[i][j], key)
        rec.fraction.append(sum(conflicts) / len(conflicts))
        self._metric(step, "conflict", rec.fraction[-1], None)
        if self.with_affinity:
            self._affinity(step, shared, grads, {n: float(v.detach()) for n, v in before.items()})

    def _affinity(self, step: int, shared: list, grads: list, before: dict[str, float]) -> None:
        k = len(self.names)
        z = [[0.0] * k for _ in range(k)]
        saved = [p.detach().clone() for p in shared]  # restored exactly: (p - x) + x != p in floating point
        for i, g in enumerate(grads):
            with torch.no_grad():
                try:
                    for p, d in zip(shared, g, strict=True):
                        if d is not None:
                            p.sub_(self.lr * d)
                    after = self._losses(grad=False)
                finally:
                    for p, s in zip(shared, saved, strict=True):
                        p.copy_(s)
            for j, n in enumerate(self.names):
                z[i][j] = 1.0 - float(after[n]) / max(before[n], 1e-8)
        rec = self.record
        rec.affinity_sum = z if rec.affinity_sum is None else [
            [a + b for a, b in zip(r1, r2, strict=True)] for r1, r2 in zip(rec.affinity_sum, z, strict=True)]
        rec.n_affinity += 1
        for i, j in itertools.product(range(k), range(k)):
            self._metric(step, "affinity", z[i][j], f"{self.names[i]}>{self.names[j]}")

    def _losses(self, grad: bool) -> dict[str, torch.Tensor]:
        ids, mask, shapes = (t.to(self.device) for t in concat_inputs(self.batches))
        with torch.set_grad_enabled(grad):
            features = self.model.encoder(input_ids=ids, attention_mask=mask, return_dict=True).last_hidden_state
            logits = self.model._heads(self.names, features, mask, shapes)
            return task_losses(self.model, logits, self.batches, self.kinds, self.device)

    def _metric(self, step: int, name: str, value: float, task: str | None) -> None:
        if self.reporter is not None:
            from mtl_core.lab.results import metric_name

            self.reporter.metric(step, metric_name(self.run, name), float(value), task)


def _flatten(grads: tuple, params: list) -> torch.Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params, strict=True)])
