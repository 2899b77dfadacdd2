"""How a joint step combines the tasks' gradients on the shared encoder (Jacobian descent).

Every name but "none" needs `TrainConfig.batching="all"` (each step holds a batch of every task). Which code
does the work (docs/LAB.md):
- torchjd.aggregation: PCGrad, CAGrad, IMTL-G, Aligned-MTL, Nash-MTL, UPGrad, MGDA, applied with
  `torchjd.autojac.jac_to_grad`. The per-task Jacobian of the shared parameters is built here, one
  `torch.autograd.grad` per task: each task's loss comes from its own forward pass (train/step.py), so its
  backward covers its rows only, where `autojac.mtl_backward` on one concatenated batch backpropagates every
  task through every row (n times the work: 1.6 s against 0.3 s a step for the six tasks on CPU). Each head
  gets its own task's gradient.
- torchjd.scalarization: FAMO (loss values only: one backward, plus a forward after the step to update it).
- here: GradNorm (Chen et al. 2018), which torchjd does not provide.
"""

from __future__ import annotations

import torch
from torchjd.aggregation import Aggregator

AGGREGATORS = ("none", "pcgrad", "cagrad", "imtl", "aligned_mtl", "nash_mtl", "upgrad", "mgda", "famo", "gradnorm")
LOSS_ONLY = ("famo",)  # combine the loss values; no per-task Jacobian


def make_aggregator(name: str, n_tasks: int) -> Aggregator:
    """A fresh aggregator (Nash-MTL, GradNorm keep state across steps) for `n_tasks` tasks."""
    from torchjd import aggregation as agg

    makers = {
        "pcgrad": agg.PCGrad, "imtl": agg.IMTLG, "aligned_mtl": agg.AlignedMTL, "upgrad": agg.UPGrad,
        "mgda": agg.MGDA,
        "cagrad": lambda: agg.CAGrad(c=0.4),  # c = 0.4: the paper's setting for multi-task vision benchmarks
        "nash_mtl": lambda: agg.NashMTL(n_tasks=n_tasks),
        "gradnorm": lambda: GradNorm(n_tasks),
    }
    if name not in makers:
        raise ValueError(f"no Jacobian aggregator called {name!r} (one of {sorted(makers)})")
    return makers[name]()


class GradNorm(Aggregator):
    """GradNorm: task weights w that pull each task's weighted gradient norm w_i·|g_i| towards the mean norm
    times (r_i / mean r)^alpha, r_i = L_i / L_i(first step). Weights move by a sign step on |w_i g_i - t_i|
    with the target held constant, as in the paper, scaled by the mean norm so `lr` is unit-free; they are
    renormalised to sum to the number of tasks. Set `losses` (k,) before each call."""

    def __init__(self, n_tasks: int, alpha: float = 1.5, lr: float = 0.025):
        super().__init__()
        self.alpha, self.lr = alpha, lr
        self.weights = torch.ones(n_tasks)
        self.initial: torch.Tensor | None = None
        self.losses: torch.Tensor | None = None

    def forward(self, matrix: torch.Tensor, /) -> torch.Tensor:  # (k tasks, n params) -> (n,)
        norms = matrix.norm(dim=1).detach()  # (k,)
        w = self.weights.to(matrix)
        combined = w @ matrix
        if self.losses is not None:
            losses = self.losses.detach().to(matrix)
            if self.initial is None:
                self.initial = losses.clamp(min=1e-8)
            ratio = losses / self.initial
            target = (w * norms).mean() * (ratio / ratio.mean().clamp(min=1e-8)) ** self.alpha
            step = torch.sign(w * norms - target) * norms / norms.mean().clamp(min=1e-12)
            w = (w - self.lr * step).clamp(min=1e-3)
            self.weights = (w * len(w) / w.sum()).cpu()
        return combined


class JointCombiner:
    """One joint step's backward: fills `.grad` of every trainable parameter from the per-task losses."""

    def __init__(self, name: str, task_names: list[str]):
        self.name, self.names = name, list(task_names)
        self.needs_jacobian = name not in LOSS_ONLY
        if self.needs_jacobian:
            self.aggregator = make_aggregator(name, len(self.names))
        else:
            from torchjd.scalarization import FAMO

            self.famo = FAMO(len(self.names))
        self.last_weights: dict[str, float] = {n: 1.0 for n in self.names}

    def backward(self, losses: dict[str, torch.Tensor], shared: list, per_task: dict) -> None:
        """Fill `.grad`. `losses`: task -> its loss (best from its own forward pass: see the module docstring);
        `shared`: the shared encoder's trainable parameters; `per_task`: task -> its own trainable parameters
        (head, private layers); a parameter listed under several tasks gets the sum of their gradients."""
        values = [losses[n] for n in self.names]
        if not self.needs_jacobian:
            self.famo.to(values[0].device)
            self.famo(torch.stack(values).float()).backward()
            weights = torch.softmax(self.famo._w.detach().flatten(), dim=0) * len(values)
            self.last_weights = dict(zip(self.names, weights.tolist(), strict=True))
            return
        from torchjd.autojac import jac_to_grad

        gradnorm = isinstance(self.aggregator, GradNorm)
        if gradnorm:
            self.aggregator.losses = torch.stack([v.detach() for v in values]).float()
            used = self.aggregator.weights  # the weights this step combines with (it then updates them)
        rows = [self._task_grads(i, values[i], shared, per_task[n]) for i, n in enumerate(self.names)]
        for j, p in enumerate(shared):
            p.jac = torch.stack([r[j] for r in rows])  # (k tasks, *p.shape): the field jac_to_grad aggregates
        weights = jac_to_grad(shared, self.aggregator)
        if gradnorm:
            weights = used
        if weights is not None:
            self.last_weights = dict(zip(self.names, [float(w) for w in weights], strict=True))

    def _task_grads(self, i: int, loss: torch.Tensor, shared: list, own: list) -> list[torch.Tensor]:
        """Task i's gradient: added to its own parameters' `.grad`; returned for the shared ones (its Jacobian row)."""
        last = i == len(self.names) - 1  # losses may share one graph (one forward): keep it for the next task
        grads = torch.autograd.grad(loss, shared + own, retain_graph=not last, allow_unused=True)
        for p, g in zip(own, grads[len(shared):], strict=True):
            if g is not None:
                p.grad = g if p.grad is None else p.grad + g
        return [torch.zeros_like(p) if g is None else g for p, g in zip(shared, grads[: len(shared)], strict=True)]

    def after_step(self, losses_again: dict[str, torch.Tensor]) -> None:
        """FAMO learns its weights from how each loss moved across the step (same batch, new weights)."""
        if not self.needs_jacobian:
            self.famo.update(torch.stack([losses_again[n].detach() for n in self.names]).float())
