"""Fine-tuning rounds on several processes (torchrun): rank 0 runs the whole round, the others train with it.

Rank 0 loads the base, answers with it, trains (in step with the others: train/distributed.py), builds
the edit memory, answers with the new model and registers the version: every write is its own. The other
ranks load the same base, data and corrections and train; they write nothing and report nothing. Under
one process, `run_round_ranked` is `run_round`.
"""

from __future__ import annotations

from pathlib import Path

from mtl_core.progress import JobRun, Reporter
from mtl_core.rounds.config import RoundConfig
from mtl_core.rounds.finetune import RoundResult, _load, _train, run_round, train_round_job
from mtl_core.rounds.pace import RoundPace
from mtl_core.store.db import Sessions
from mtl_core.train.distributed import SilentReporter, is_main


def run_round_ranked(home: str | Path | None, base_version: str | None, cfg: RoundConfig, sessions: Sessions,
                     reporter: Reporter, note: str = "", data_dir: str | None = None) -> RoundResult | None:
    """`run_round` on rank 0 (its result); None on the other ranks, once training is over."""
    if is_main():
        return run_round(home, base_version, cfg, sessions=sessions, reporter=reporter, note=note, data_dir=data_dir)
    follow_round(home, base_version, cfg, sessions, data_dir)
    return None


def follow_round(home: str | Path | None, base_version: str | None, cfg: RoundConfig, sessions: Sessions,
                 data_dir: str | None) -> None:
    """A rank other than 0: the round's load and train phases only (`Cancelled` when rank 0 cancels)."""
    silent = SilentReporter()
    r = _load(home, base_version, cfg, sessions, silent, data_dir)
    r.runner.model.memory.clear()  # rank 0 clears the base's edits before training too: the same network everywhere
    _train(r, RoundPace(silent))  # the phases rank 0 reports; here they go nowhere


def train_round_ranked(ctx: JobRun) -> dict | None:
    """The "train_round" job on one rank: rank 0 is the normal handler (reports into the job), the others follow."""
    if is_main():
        return train_round_job(ctx)
    params = dict(ctx.params)
    base = params.pop("base_version", None)
    params.pop("note", None)
    data_dir = params.pop("data_dir", None)
    follow_round(ctx.home, base, RoundConfig.from_params(params), ctx.sessions, data_dir)
    return None
