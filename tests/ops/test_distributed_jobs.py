"""Worker jobs on two processes through torchrun (gloo, CPU): a round, a killed rank, Cancel on every rank."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from mtl_core.model.registry import Registry
from mtl_core.ops import worker
from mtl_core.store import add_annotation, add_texts, create_job, get_job, job_metrics
from mtl_core.store.db import open_store
from mtl_core.train import distributed
from tests.helpers import ROOT
from tests.helpers.jobs import wait_for_job
from tests.helpers.toy import private_copy, train_toy_base

pytestmark = pytest.mark.distributed

FAST = dict(steps=30, batch_size=8, encoder_lr=1e-3, head_lr=3e-3, dev_size=40, min_replay=16, log_every=5)
ENDED = ("done", "failed", "cancelled")


@pytest.fixture(scope="module")
def toy_base(tmp_path_factory):
    """A workspace whose active v0001 was trained on the toy tasks (built once per module)."""
    root = tmp_path_factory.mktemp("distjobs")
    return train_toy_base(root, steps=40, max_dev=40), root


@pytest.fixture
def ws(toy_base, tmp_path, monkeypatch):
    """A private copy of the toy workspace with corrections; the worker's children find the repo."""
    src, root = toy_base
    home, sessions = private_copy(src, tmp_path, monkeypatch)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    with sessions() as s:
        ids = add_texts(s, [f"the film number {900 + i} was zesty indeed" for i in range(4)], source="predict")
        for i in ids:
            add_annotation(s, i, "polarity", "pos", "ann")
    return home, sessions, {**FAST, "nproc": 2, "base_version": "v0001", "data_dir": str(root)}


def _rank_pids(job_id: int) -> dict[int, int]:
    """rank -> pid of the processes torchrun started for this job (read from /proc)."""
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"mtl_core.ops.distributed_jobs" in cmd and str(job_id).encode() in cmd:
            rank = [e for e in env if e.startswith(b"RANK=")]
            if rank:
                found[int(rank[0][5:])] = int(proc.name)
    return found


def _training(job) -> bool:
    return job.status in ENDED or (job.message or "").startswith("training: step")


def test_round_on_two_processes_registers_and_reports_once(ws):
    home, sessions, params = ws
    with sessions() as s:
        job_id = create_job(s, "train_round", params=params).id
    assert worker.run_job(job_id, home) == "done"  # this process is the worker; torchrun runs the ranks
    with sessions() as s:
        job = get_job(s, job_id)
        points = [(m.step, m.name, m.task) for m in job_metrics(s, job_id)]
    assert job.result["version"] == "v0002" and "2 processes" in job.log
    reg = Registry(home)
    assert reg.active == "v0001" and [v.id for v in reg.versions()] == ["v0001", "v0002"]
    assert ("train_loss", "polarity") in {(n, t) for _, n, t in points}
    assert len(points) == len(set(points))  # rank 0 alone reports: no metric twice
    assert not list(worker.jobs_dir(home).glob("*.result.json"))


def test_killed_rank_fails_the_job_and_leaves_the_active_model(ws):
    home, sessions, params = ws
    job_id = worker.launch("train_round", {**params, "steps": 20000}, home, sessions)
    wait_for_job(sessions, job_id, _training, timeout=240, poll=0.3)
    pids = _rank_pids(job_id)
    assert set(pids) == {0, 1}, pids
    os.kill(pids[1], signal.SIGKILL)
    job = wait_for_job(sessions, job_id, lambda j: j.status in ENDED, timeout=120, poll=0.3)  # no hang: torchrun stops rank 0
    assert job.status == "failed" and "torchrun exit status" in job.message
    reg = Registry(home)
    assert reg.active == "v0001" and [v.id for v in reg.versions()] == ["v0001"]
    time.sleep(1)
    assert _rank_pids(job_id) == {}


def test_cancel_reaches_every_rank(ws):
    home, sessions, params = ws
    job_id = worker.launch("train_round", {**params, "steps": 20000}, home, sessions)
    wait_for_job(sessions, job_id, _training, timeout=240, poll=0.3)
    worker.request_cancel(job_id, home)
    job = wait_for_job(sessions, job_id, lambda j: j.status in ENDED, timeout=120, poll=0.3)
    assert job.status == "cancelled" and (job.step or 0) < job.total == 1000  # permille of the round (pace.py)
    assert [v.id for v in Registry(home).versions()] == ["v0001"]
    time.sleep(1)
    assert _rank_pids(job_id) == {}


@pytest.mark.parametrize("outcome, rc, status, says", [
    ({"status": "done", "result": {"texts": 3}}, 1, "done", "exited abnormally after the job had finished"),
    ({"status": "failed", "message": "ValueError: no usable corrections"}, 1, "failed", "no usable corrections"),
    ({"status": "cancelled"}, 1, "cancelled", ""),
    (None, 1, "failed", "torchrun exit status 1"),  # a rank died before rank 0 wrote anything
])
def test_the_job_ends_as_rank_0_reported(tmp_path, monkeypatch, outcome, rc, status, says):
    """Rank 0's result file decides; torchrun's exit status only says whether every process ended well."""
    home = tmp_path / "home"
    _, sessions = open_store(home)
    with sessions() as s:
        job_id = create_job(s, "score_pool", params={"pool": "predict", "nproc": 2}).id

    def fake_torchrun(nproc, module_args, env=None):
        assert nproc == 2 and module_args == ["mtl_core.ops.distributed_jobs", str(job_id)]
        if outcome is not None:
            (worker.jobs_dir(home) / f"{job_id}.result.json").write_text(json.dumps(outcome))
        return rc

    monkeypatch.setattr(distributed, "run_torchrun", fake_torchrun)
    assert worker.run_job(job_id, home) == status
    with sessions() as s:
        job = get_job(s, job_id)
    assert says in f"{job.message}\n{job.log}"
    assert job.result == (outcome["result"] if status == "done" else {})
    assert not list(worker.jobs_dir(home).glob("*.result.json"))
