"""Several processes, one training run: torchrun's environment -> a process group, DDP, sharded steps.

Start with `torchrun --nproc-per-node N -m mtl_core train ...` (or `--nproc N`, which runs exactly that;
docs/SCALING.md). Every rank draws the same global batch from the same seeded sampler and keeps its
stride of it (`TrainDist.shard`), so all ranks work on the same task(s) in a step. Each task's loss is
scaled by the rank's share of the batch's loss units (rows, or labelled tokens), and DDP averages the
gradients: N ranks take the same step as one process with the whole batch. Rank 0 alone evaluates,
reports, checks Cancel and writes; after every step it broadcasts go / stop / cancel to the others.

One process (no torchrun, or a world size of 1) never touches any of this: `for_training()` is None
and the loop runs exactly as before.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from mtl_core.model.features import IGNORE, Feature
from mtl_core.progress import Cancelled, Reporter

TIMEOUT_ENV = "MTL_STUDIO_DIST_TIMEOUT_S"
# A rank that dies is torchrun's to notice (it stops the others within seconds); this only bounds a
# collective that never completes (a hung rank, a lost node). Rank 0 may evaluate alone for minutes meanwhile.
DEFAULT_TIMEOUT_S = 1800
STOPS = ("completed", "early_stop", "cancelled")  # TrainResult.stopped values, broadcast by index


def timeout_s() -> float:
    return float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)


def active() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    return rank() == 0


def under_torchrun() -> bool:
    """Started by torchrun (or another launcher that sets its variables)?"""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_from_env() -> bool:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR/PORT); False for one process.

    GPUs: rank -> cuda:LOCAL_RANK, NCCL for CUDA tensors and gloo for CPU ones (objects, flags); CPU: gloo."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if dist.is_initialized():
        return True
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():  # two ranks on one GPU: NCCL refuses, after a long wait
            raise ValueError(f"local rank {local}: this node has {torch.cuda.device_count()} GPU(s), one per process")
        torch.cuda.set_device(local)
        backend = "cpu:gloo,cuda:nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s()))
    return True


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (it may fill caches or migrate the store), then the others."""
    if active() and not is_main():
        dist.barrier()
    yield
    if active() and is_main():
        dist.barrier()


def check_nproc(nproc: int) -> None:
    """A clear error before anything starts: at least 1, and with GPUs at most one process per GPU."""
    if nproc < 1:
        raise ValueError(f"--nproc: must be >= 1, got {nproc}")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus and nproc > gpus:
        raise ValueError(f"--nproc {nproc}: this node has {gpus} GPU(s), one process each; "
                         "CUDA_VISIBLE_DEVICES='' trains on CPU processes instead")


def torchrun_command(nproc: int, module_args: list[str]) -> list[str]:
    """One node, `nproc` processes, a free port: `python -m torch.distributed.run --standalone ...`."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", *module_args]


def run_torchrun(nproc: int, module_args: list[str], env: dict[str, str] | None = None) -> int:
    """Run `python -m <module_args>` on `nproc` local processes; torchrun's exit status (non-zero if any rank failed)."""
    return subprocess.run(torchrun_command(nproc, module_args), env=env, check=False).returncode


class SilentReporter:
    """What ranks other than 0 report through: nothing (rank 0 reports for all); never cancels by itself."""

    def progress(self, step: int, total: int | None = None, message: str | None = None) -> None:
        pass

    def log(self, line: str) -> None:
        pass

    def metric(self, step: int, name: str, value: float, task: str | None = None) -> None:
        pass

    def check_cancelled(self) -> None:
        pass


class _MainReporter:
    """Rank 0's reporter inside the loop: forwards everything, but turns Cancelled into a flag that
    `TrainDist.agree` broadcasts, so every rank stops at the same step (raising on rank 0 alone would hang
    the others in their next collective)."""

    def __init__(self, inner: Reporter):
        self.inner, self.cancelled = inner, False

    def progress(self, step: int, total: int | None = None, message: str | None = None) -> None:
        self.inner.progress(step, total, message)

    def log(self, line: str) -> None:
        self.inner.log(line)

    def metric(self, step: int, name: str, value: float, task: str | None = None) -> None:
        self.inner.metric(step, name, value, task)

    def check_cancelled(self) -> None:
        try:
            self.inner.check_cancelled()
        except Cancelled:
            self.cancelled = True


def loss_units(feature: Feature) -> int:
    """What a task's loss averages over: labelled tokens (token tasks) or the row (every other task)."""
    if isinstance(feature.label, list):
        return sum(1 for tag in feature.label if tag != IGNORE)
    return 1


def shard(groups: dict[str, list[Feature]], rank: int, world: int) -> tuple[dict[str, list[Feature]], dict[str, float]]:
    """Rank `rank`'s rows of each task's global batch (every world-th, so lengths stay balanced) and its
    share of each task's loss units. A rank left with no rows of a task runs the task's first row at share
    0: every rank then has the same tasks in its graph (the same gradients to reduce, in DDP and `sync_grads`)."""
    local, shares = {}, {}
    for name, feats in groups.items():
        mine = feats[rank::world]
        total = sum(loss_units(f) for f in feats)
        shares[name] = sum(loss_units(f) for f in mine) / total if total else 0.0
        local[name] = mine or feats[:1]
    return local, shares


class TrainDist:
    """The training loop's view of a process group of `world` > 1 ranks."""

    def __init__(self, device: torch.device):
        self.rank, self.world, self.device = dist.get_rank(), dist.get_world_size(), device
        self.is_main = self.rank == 0
        self._scale: dict[str, float] = {}
        self._reporter: _MainReporter | None = None

    def reporter(self, reporter: Reporter) -> Reporter:
        if not self.is_main:
            return SilentReporter()
        self._reporter = _MainReporter(reporter)
        return self._reporter

    def wrap(self, model: nn.Module) -> nn.Module:
        """DDP over the trainable parameters. `find_unused_parameters`: a step trains one task's head (or a
        few); the others get no gradient, on every rank alike, and keep `grad=None` as in one process (AdamW
        skips them). No buffers to broadcast: the model has no running statistics."""
        cuda = self.device.type == "cuda"
        ids = [self.device.index if self.device.index is not None else torch.cuda.current_device()] if cuda else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True,
                                                   forward_sync_buffers=False)

    def shard(self, groups: dict[str, list[Feature]]) -> dict[str, list[Feature]]:
        """This rank's stride of each task's global batch (`shard`); remembers its shares for `combine`."""
        local, self._scale = shard(groups, self.rank, self.world)
        return local

    def combine(self, losses: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """Local task losses -> (what this rank backpropagates, the global loss per task).

        part = loss x share: the parts of all ranks sum to the global batch's loss; x world because DDP
        averages gradients. The global values (one all-reduce) feed DWA and the logged losses."""
        names = list(losses)
        parts = [losses[n] * self._scale[n] for n in names]
        total = torch.stack([p.detach().float() for p in parts])
        dist.all_reduce(total)
        return ({n: p * self.world for n, p in zip(names, parts)},
                {n: float(v) for n, v in zip(names, total.tolist())})

    def sync_grads(self, module: nn.Module) -> None:
        """Average the gradients of parameters outside DDP (the learnt loss weights of `uncertainty`)."""
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def agree(self, stopped: str) -> str:
        """Rank 0's verdict after a step (its evaluation may stop early; Cancel is checked here, every
        step), broadcast so all ranks leave the loop together."""
        if self.is_main and stopped == "completed" and self._reporter is not None:
            self._reporter.check_cancelled()
            if self._reporter.cancelled:
                stopped = "cancelled"
        code = torch.tensor([STOPS.index(stopped)], dtype=torch.long)
        dist.broadcast(code, src=0)
        return STOPS[int(code.item())]


def for_training(device: torch.device, seed: int) -> TrainDist | None:
    """The loop's distributed helper when this process is one of several, else None.

    Dropout differs per rank (seed + rank); the task sampler's own `random.Random(seed)` stays shared."""
    if not active():
        return None
    torch.manual_seed(seed + dist.get_rank())
    return TrainDist(device)
