"""Run a function on N local processes joined in a gloo process group, as torchrun would (tests only).

`run_ranks(fn, world, *args)` starts `world` spawned processes with torchrun's variables set (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT), joins them through `mtl_core.train.distributed.init_from_env`,
calls `fn(*args)` in each and returns the results by rank. A process that fails, or outlives `timeout`,
fails the call (the survivors are killed): a hang shows up as a test failure, not a stuck suite.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import traceback
from pathlib import Path

import torch
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_env(rank: int, world: int, port: int) -> dict[str, str]:
    return {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}


def _entry(fn, rank: int, world: int, port: int, out: str, args: tuple, env: dict) -> None:
    os.environ.update({**rank_env(rank, world, port), **env})
    torch.set_num_threads(1)
    from mtl_core.train import distributed

    try:
        distributed.init_from_env()
        result = fn(*args)
        torch.save(result, Path(out) / f"{rank}.pt")
    except BaseException:
        (Path(out) / f"{rank}.err").write_text(traceback.format_exc())
        raise
    finally:
        distributed.shutdown()


def run_ranks(fn, world: int, *args, timeout: float = 120, env: dict | None = None) -> list:
    """[fn's result on rank 0, rank 1, ...]; RuntimeError naming the failed ranks (with their tracebacks)."""
    ctx = mp.get_context("spawn")
    port = free_port()
    with tempfile.TemporaryDirectory() as out:
        procs = [ctx.Process(target=_entry, args=(fn, r, world, port, out, args, env or {})) for r in range(world)]
        for p in procs:
            p.start()
        deadline = time.time() + timeout
        for p in procs:
            p.join(max(0.0, deadline - time.time()))
        hung = [r for r, p in enumerate(procs) if p.is_alive()]
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
        errors = {r: (Path(out) / f"{r}.err").read_text() for r in range(world) if (Path(out) / f"{r}.err").exists()}
        if hung or errors or any(p.exitcode != 0 for p in procs):
            raise RuntimeError(f"ranks failed: hung={hung}, exit codes={[p.exitcode for p in procs]}\n"
                               + "\n".join(f"rank {r}:\n{e}" for r, e in errors.items()))
        return [torch.load(Path(out) / f"{r}.pt", weights_only=False) for r in range(world)]
