"""Helpers for the Train/Models page tests (not collected: no test_ prefix)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mtl_core.data.examples import Example
from mtl_core.eval.compare import compare_answers
from mtl_core.model.registry import Registry
from mtl_core.model.testing import make_tiny_checkpoint
from mtl_core.store import add_annotation, add_texts, create_job, finish_job, start_job
from mtl_core.store.db import open_store
from mtl_core.tasks import load_task_file


def add_round_version(home: Path, seed: int = 1, parent: str = "v0001") -> str:
    """Register a second tiny checkpoint (other weights) as an inactive round result of `parent`."""
    reg = Registry(home)
    staging = reg.staging_dir()
    shutil.rmtree(staging)
    make_tiny_checkpoint(staging, seed=seed)
    extra = {"kind": "round", "corrections": [1, 2, 3], "correction_counts": {"sentiment": 3},
             "data_counts": {"sentiment": {"corrections": 3, "replay": 12, "train": 18, "dev": 40}},
             "round_config": {"strategy": "lora", "steps": 150}, "base_metrics": {"sentiment": 0.8}}
    info = reg.register(staging, note="round from v0001: 3 corrections (lora)", parent=parent,
                        metrics={"sentiment": 0.7}, extra=extra, activate=False)
    return info.id


def comparison(drop: bool) -> dict:
    """A comparison on constructed answers: sentiment improves, or drops by 25 points when `drop`."""
    specs = {t.name: t for t in load_task_file().tasks}
    exs = [Example(f"movie {i} <b>was</b> ok", label=lab) for i, lab in enumerate(["positive", "negative"] * 4)]
    gold = [e.label for e in exs]
    good, bad = list(gold), ["positive"] * 8
    old, new = (good, bad) if drop else (bad, good)
    test = compare_answers({"sentiment": specs["sentiment"]}, {"sentiment": exs}, {"sentiment": old},
                           {"sentiment": new}, "test")
    corr = compare_answers({"sentiment": specs["sentiment"]}, {"sentiment": exs[:2]},
                           {"sentiment": bad[:2]}, {"sentiment": good[:2]}, "corrections")
    return {"test": test, "corrections": corr, "regressions": test["regressions"]}


def flipped_comparison() -> dict:
    """Same sentiment accuracy before and after, but half the examples the old model got right now wrong."""
    specs = {t.name: t for t in load_task_file().tasks}
    exs = [Example(f"review {i}", label="positive") for i in range(8)]
    old, new = ["positive"] * 4 + ["negative"] * 4, ["negative"] * 4 + ["positive"] * 4
    test = compare_answers({"sentiment": specs["sentiment"]}, {"sentiment": exs}, {"sentiment": old},
                           {"sentiment": new}, "test")
    return {"test": test, "corrections": {"counts": {}}, "regressions": test["regressions"]}


def finished_round(home: Path, version: str, status: str = "done", drop: bool = False, **fields) -> int:
    """A train_round job row that ended with `status` (done: result with a comparison, `comparison` if given)."""
    _, sessions = open_store(home)
    with sessions() as s:
        job_id = create_job(s, "train_round", params={"base_version": "v0001"}).id
        start_job(s, job_id, pid=os.getpid())
        result = {}
        if status == "done":
            result = {"version": version, "base_version": "v0001", "strategy": "lora", "n_corrections": 2,
                      "timings": {"total": 42.0}, "comparison": fields.get("comparison") or comparison(drop)}
        finish_job(s, job_id, status=status, result=result, message=fields.get("message", "finished"))
        if fields.get("log"):
            from mtl_core.store import append_job_log

            append_job_log(s, job_id, fields["log"])
    return job_id


def running_round(home: Path) -> int:
    _, sessions = open_store(home)
    with sessions() as s:
        job_id = create_job(s, "train_round", params={"base_version": "v0001"}, total=150).id
        start_job(s, job_id, pid=os.getpid())
    return job_id


def add_corrections(home: Path, n: int = 3) -> None:
    _, sessions = open_store(home)
    with sessions() as s:
        ids = add_texts(s, [f"a corrected text {i}" for i in range(n)])
        for i in ids:
            add_annotation(s, i, "sentiment", "positive", "ann")


def frame(at, *columns: str, index: str | None = None):
    """The first dataframe showing all `columns` (or whose index holds `index`): dataframe keys are not exposed."""
    for df in at.dataframe:
        value = df.value
        if all(c in value.columns for c in columns) and (index is None or index in value.index):
            return value
    raise KeyError(f"no dataframe with columns {columns}")
