"""Training on several processes (gloo, CPU): the same step as one process, agreed stops, no hangs.

The ranks run in spawned processes joined like torchrun's (tests/helpers/distributed.py); the
end-to-end paths through torchrun itself (CLI, worker jobs) are in tests/ops/test_distributed_jobs.py.
"""

from __future__ import annotations

import pytest
import torch

from mtl_core.model.checkpoint import load_checkpoint
from mtl_core.model.features import IGNORE, Feature
from mtl_core.model.testing import make_tiny_checkpoint
from mtl_core.tasks import load_task_file
from mtl_core.train import distributed
from mtl_core.train.loop import TrainConfig, train
from mtl_core.train.pipeline import prepare
from tests.helpers.distributed import run_ranks
from tests.helpers.reporting import RecordingReporter
from tests.helpers.toy import write_toy_tasks

pytestmark = pytest.mark.distributed


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """(toy task file, a tiny checkpoint with its heads, a home whose data cache holds the toy splits)."""
    root = tmp_path_factory.mktemp("dist")
    tasks = write_toy_tasks(root)
    ckpt = make_tiny_checkpoint(root / "ckpt", task_file=load_task_file(tasks), max_length=32)
    prepare(tasks, root / "home")  # the ranks read the cache, as they would after rank 0 filled it
    return str(tasks), str(ckpt), str(root / "home")


def _no_dropout(model) -> None:
    """Exact comparisons need a deterministic forward: dropout masks depend on how rows fall on ranks."""
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0


def train_once(tasks: str, ckpt: str, home: str, cfg: dict, dropout: bool = True, cancel_at: int | None = None) -> dict:
    """Train the tiny checkpoint on the toy tasks (in this process, or as one rank of several); `cancel_at`:
    rank 0's reporter cancels once that step is reported."""
    reporter = RecordingReporter(cancel_at_step=cancel_at) if distributed.is_main() else None
    model, tok, _, _ = load_checkpoint(ckpt)
    if not dropout:
        _no_dropout(model)
    task_file, prepared = prepare(tasks, home)
    result = train(model, tok, task_file, prepared, TrainConfig(**cfg), reporter=reporter, progress=False)
    return {"state": {k: v.detach().clone() for k, v in model.state_dict().items()}, "history": result.history,
            "dev": result.dev.get("average"), "stopped": result.stopped, "best_step": result.best_step}


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


STEP = dict(steps=1, eval_every=1, encoder_lr=1e-3, head_lr=3e-3, freeze_embeddings=False, freeze_layers=0,
            max_dev=20)


@pytest.mark.parametrize("variant", [
    dict(batching="mixed", loss_weighting="uncertainty", batch_size=6),  # 1-row task slices: rank 1 borrows one
    dict(batching="per_task", loss_weighting="equal", batch_size=7, sampling="round_robin", steps=3),
])
def test_two_ranks_take_the_same_step_as_one_process(toy, variant):
    cfg = {**STEP, **variant}
    single = train_once(*toy, cfg, dropout=False)
    ranks = run_ranks(train_once, 2, *toy, cfg, False)
    for r in ranks:
        assert _max_diff(r["state"], single["state"]) < 1e-5
    logged = [[row["loss"] for row in run["history"] if "loss" in row] for run in (single, *ranks)]
    assert logged[0] and logged[0][-1].keys() == logged[1][-1].keys() == logged[2][-1].keys()
    for task, value in logged[0][-1].items():  # every rank logs the global batch's loss
        assert logged[1][-1][task] == pytest.approx(value, rel=1e-5) and logged[2][-1][task] == logged[1][-1][task]


def test_shard_splits_rows_and_loss_units_across_ranks():
    groups = {"cls": [Feature([1, 2], 0), Feature([1], 1), Feature([3], 0)],
              "tok": [Feature([1, 2, 3], [0, IGNORE, 1]), Feature([1, 2], [IGNORE, 0])],
              "one": [Feature([5], 1)]}
    parts = [distributed.shard(groups, r, 2) for r in range(2)]
    for name in groups:
        assert sum(shares[name] for _, shares in parts) == pytest.approx(1.0)
    assert parts[0][0]["cls"] == groups["cls"][0::2] and parts[1][0]["cls"] == groups["cls"][1:2]
    assert [shares["tok"] for _, shares in parts] == [2 / 3, 1 / 3]  # labelled tokens, not rows
    # rank 1 has no row of "one": it runs rank 0's at share 0, so both ranks have the same graph
    assert parts[1][0]["one"] == groups["one"] and parts[1][1]["one"] == 0.0


def test_unused_heads_and_empty_shards_do_not_hang(toy):
    """Batch 1 per task: one head trains per step (the others unused on every rank) and rank 1 never has a row
    of its own. DWA's weights come from the global losses: the ranks stay identical."""
    cfg = {**STEP, "steps": 6, "eval_every": 6, "batch_size": 1, "loss_weighting": "dwa", "sampling": "round_robin"}
    ranks = run_ranks(train_once, 2, *toy, cfg, timeout=90)
    assert all(r["stopped"] == "completed" for r in ranks)
    assert _max_diff(ranks[0]["state"], ranks[1]["state"]) == 0.0


@pytest.mark.parametrize("how", ["cancel", "early_stop"])
def test_rank_0_stop_reaches_every_rank(toy, how):
    """Cancel (polled by rank 0's reporter) and early stopping (decided by rank 0's dev evaluation) stop every
    rank after the same step; without the broadcast, rank 1 would wait in its next collective."""
    if how == "cancel":
        cfg, cancel_at = {**STEP, "steps": 200, "eval_every": 200, "log_every": 5}, 10
    else:  # no learning: the second evaluation is no better than the first
        cfg, cancel_at = {**STEP, "steps": 200, "eval_every": 4, "patience": 1, "encoder_lr": 0.0,
                          "head_lr": 0.0, "log_every": 4}, None
    ranks = run_ranks(train_once, 2, *toy, cfg, True, cancel_at, timeout=90)
    last = [[row["step"] for row in r["history"] if "loss" in row][-1] for r in ranks]
    assert [r["stopped"] for r in ranks] == ["cancelled" if how == "cancel" else "early_stop"] * 2
    assert last[0] == last[1] == (10 if how == "cancel" else 8)


def test_short_run_gives_the_same_metrics_within_noise(toy):
    """Dropout on: 2 ranks are not bit-identical to one process (other masks), but learn the same."""
    cfg = {**STEP, "steps": 60, "eval_every": 60, "batch_size": 16, "max_dev": 40}
    single = train_once(*toy, cfg)
    ranks = run_ranks(train_once, 2, *toy, cfg, timeout=120)
    assert ranks[0]["dev"] == pytest.approx(single["dev"], abs=0.1)
    assert ranks[0]["dev"] > 0.5 and ranks[1]["dev"] is None  # rank 0 alone evaluates


def stall_or_collect(seconds: float):
    """Rank 1 never joins the collective; rank 0's all-reduce must give up after the configured timeout."""
    import time

    import torch.distributed as dist

    if not distributed.is_main():
        time.sleep(seconds)
        return None
    t0 = time.time()
    try:
        dist.all_reduce(torch.ones(1))
    except Exception as exc:  # gloo raises on timeout
        return {"failed_after": time.time() - t0, "error": type(exc).__name__}
    return {"failed_after": None}


def test_a_stuck_rank_times_out_instead_of_hanging():
    ranks = run_ranks(stall_or_collect, 2, 10.0, timeout=90, env={distributed.TIMEOUT_ENV: "3"})
    assert ranks[0]["failed_after"] is not None and ranks[0]["failed_after"] < 9  # 3 s, not rank 1's 10 s


def test_nproc_is_checked_against_the_gpus(monkeypatch):
    with pytest.raises(ValueError, match=">= 1"):
        distributed.check_nproc(0)
    distributed.check_nproc(4)  # no GPU: any number of CPU (gloo) processes
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    distributed.check_nproc(2)
    with pytest.raises(ValueError, match="2 GPU"):  # two processes on one GPU: NCCL would refuse, late
        distributed.check_nproc(3)
