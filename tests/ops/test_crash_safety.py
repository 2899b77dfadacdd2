"""kill -9 in the middle of writes: the SQLite store stays intact and keeps every commit; a killed training
round leaves the active model untouched, and the next round runs to the end."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mtl_core.model.modeling import ModelConfig
from mtl_core.model.registry import Registry
from mtl_core.ops import worker
from mtl_core.serve.predictor import Predictor
from mtl_core.store import add_annotation, add_texts, get_job, mark_stale_jobs_failed
from mtl_core.store.db import open_store
from mtl_core.store.jobs import pid_alive
from mtl_core.train.loop import TrainConfig
from mtl_core.train.pipeline import train_new_version
from tests.helpers import ROOT, TESTS
from tests.helpers.jobs import wait_for_job
from tests.helpers.toy import make_tiny_encoder_dir, write_toy_tasks

WRITER = TESTS / "helpers" / "annotation_writer.py"
BATCH = 100  # texts per batch in annotation_writer.py
ROUND = dict(steps=400, batch_size=8, encoder_lr=1e-3, head_lr=3e-3, lora_lr=5e-3, dev_size=40, min_replay=16,
             log_every=5)


def _env() -> dict:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def run_writer_until_killed(url: str, tag: str, min_events: int, log: Path) -> tuple[list[int], list[str]]:
    """Start the writer, SIGKILL it once it has reported `min_events` commits; returns what it reported."""
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, str(WRITER), url, tag], stdout=subprocess.PIPE, stderr=err,
                                text=True, env=_env())
    watchdog = threading.Timer(180, proc.kill)  # a stuck writer fails the test instead of hanging it
    watchdog.start()
    events: list[int] = []
    batches: list[str] = []
    try:
        for line in proc.stdout:
            _record(line, events, batches)
            if len(events) >= min_events:
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait()
        for line in proc.stdout:  # lines written before the kill are still in the pipe
            _record(line, events, batches)
    finally:
        watchdog.cancel()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, log.read_text()[-2000:]
    return events, batches


def _record(line: str, events: list[int], batches: list[str]) -> None:
    if not line.endswith("\n"):
        return  # a partial line cannot come from a flushed print, but never trust it
    kind, value = line.split()
    if kind == "event":
        events.append(int(value))
    else:
        batches.append(value)


def test_sigkill_during_writes_keeps_every_commit(tmp_path):
    db = tmp_path / "store.db"
    url = f"sqlite:///{db}"
    rng = random.Random(7)
    for round_number in range(3):  # each writer starts on the database its predecessor was killed over
        tag = str(round_number)
        events, batches = run_writer_until_killed(url, tag, 50 + rng.randrange(40), tmp_path / f"w{tag}.log")
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            stored = [row[0] for row in conn.execute(
                "SELECT id FROM annotation_events WHERE annotator = ?", (f"writer-{tag}",))]
            counts = dict(conn.execute(
                "SELECT source, count(*) FROM texts WHERE source LIKE ? GROUP BY source", (f"batch-{tag}-%",)))
            duplicated_keys = conn.execute(
                "SELECT count(*) - count(DISTINCT event_key) FROM annotation_events").fetchone()[0]
        assert len(events) >= 50 and len(set(events)) == len(events)
        assert sorted(stored) == sorted(set(stored)) and set(events) <= set(stored)  # every reported id, once
        assert len(stored) - len(events) <= 1  # at most the commit that was being reported at the kill
        assert duplicated_keys == 0
        assert all(counts.get(name) == BATCH for name in batches)  # reported batches: complete
        assert set(counts.values()) <= {BATCH}  # any batch at all: all of it or none (one transaction)


# ------------------------------------------------------------------------------ killed training round


@pytest.fixture
def toy_home(tmp_path, monkeypatch):
    """A workspace whose active v0001 was trained on the toy tasks, with corrections to fine-tune on."""
    task_file, encoder = write_toy_tasks(tmp_path), make_tiny_encoder_dir(tmp_path / "enc")
    home = tmp_path / "home"
    cfg = TrainConfig(steps=20, batch_size=16, eval_every=20, head_lr=3e-3, encoder_lr=1e-3, freeze_layers=0,
                      freeze_embeddings=False, max_dev=40)
    train_new_version(task_file, ModelConfig(encoder=str(encoder), max_length=32), cfg, home=home, progress=False)
    monkeypatch.setenv("MTL_STUDIO_HOME", str(home))
    monkeypatch.delenv("MTL_STUDIO_DATABASE_URL", raising=False)
    monkeypatch.setenv("PYTHONPATH", _env()["PYTHONPATH"])
    _, sessions = open_store(home)
    with sessions() as s:
        ids = add_texts(s, [f"the film number {900 + i} was zesty indeed" for i in range(6)], source="predict")
        for text_id in ids:
            add_annotation(s, text_id, "polarity", "pos", "ann")
    return home, sessions, str(tmp_path)


def _answers(home: Path) -> list[dict]:
    reg = Registry(home)
    predictor = Predictor.from_dir(reg.path_of(reg.active), device="cpu")
    return [p.to_dict() for p in predictor.predict(["the film number 3 was great indeed", "i met Paris"])]


def test_kill_9_mid_round_then_a_new_round_succeeds(toy_home):
    home, sessions, data_dir = toy_home
    registry_before, answers_before = (home / "models" / "registry.json").read_bytes(), _answers(home)
    params = {**ROUND, "base_version": "v0001", "data_dir": data_dir}
    job_id = worker.launch("train_round", params, home, sessions)
    job = wait_for_job(sessions, job_id, lambda j: j.status != "queued" and ((j.step or 0) >= 10 or
                                                                         j.status != "running"), timeout=600)
    assert job.status == "running" and job.step < ROUND["steps"], job.message  # really mid-training
    os.kill(job.pid, signal.SIGKILL)
    deadline = time.time() + 30
    while pid_alive(job.pid) and time.time() < deadline:
        time.sleep(0.1)
    with sessions() as s:
        assert job_id in mark_stale_jobs_failed(s, worker.STALE_AFTER_S)
        assert get_job(s, job_id).status == "failed"
    assert (home / "models" / "registry.json").read_bytes() == registry_before  # nothing half-registered
    assert _answers(home) == answers_before  # the active model still loads and answers as before

    second = worker.launch("train_round", {**params, "steps": 10}, home, sessions)
    job = wait_for_job(sessions, second, lambda j: j.status in ("done", "failed", "cancelled"), timeout=600)
    assert job.status == "done", (job.message, job.log)
    reg = Registry(home)
    assert job.result["version"] == "v0002" and [v.id for v in reg.versions()] == ["v0001", "v0002"]
    assert reg.active == "v0001" and _answers(home) == answers_before
