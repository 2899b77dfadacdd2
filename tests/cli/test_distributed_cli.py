"""`train --nproc N` (torchrun under the hood) and the `round` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mtl_core.cli.main import main
from mtl_core.cli.rounds import without_nproc
from mtl_core.model.registry import Registry
from mtl_core.store import add_annotation, add_texts
from mtl_core.store.db import open_store
from tests.helpers import ROOT
from tests.helpers.toy import make_tiny_encoder_dir, write_toy_tasks


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("clitoy")
    return write_toy_tasks(root), make_tiny_encoder_dir(root / "enc")


def _train_argv(toy, home, *extra) -> list[str]:
    task_file, enc = toy
    return ["--home", str(home), "train", "--task-file", str(task_file), "--encoder", str(enc), "--max-length", "32",
            "--steps", "30", "--batch-size", "8", "--eval-every", "30", "--max-dev", "40", "--freeze-layers", "0",
            "--json", *extra]


def test_without_nproc_keeps_every_other_argument():
    assert without_nproc(["--home", "h", "train", "--nproc", "4", "--steps", "3"]) == ["--home", "h", "train",
                                                                                        "--steps", "3"]
    assert without_nproc(["round", "--nproc=2", "--json"]) == ["round", "--json"]


def test_nproc_below_one_is_a_clear_error(toy, tmp_path, capsys):
    assert main(_train_argv(toy, tmp_path, "--nproc", "0")) == 2
    assert "--nproc: must be >= 1" in capsys.readouterr().err


@pytest.mark.distributed
def test_train_on_two_processes_registers_one_version(toy, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "mtl_core", *_train_argv(toy, tmp_path, "--nproc", "2")],
                          capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("{")]  # rank 0 alone prints its report
    report = json.loads(line)
    reg = Registry(tmp_path)
    assert [v.id for v in reg.versions()] == [report["version"]] == [reg.active]  # registered once
    assert set(report["test"]["tasks"]) == {"polarity", "score", "things"}


def test_round_command_registers_an_inactive_version(toy, tmp_path, capsys):
    assert main(_train_argv(toy, tmp_path)) == 0
    _, sessions = open_store(tmp_path)
    with sessions() as s:
        for i in add_texts(s, [f"the film number {900 + i} was zesty indeed" for i in range(3)], source="predict"):
            add_annotation(s, i, "polarity", "pos", "ann")
    capsys.readouterr()
    task_file, _ = toy
    argv = ["--home", str(tmp_path), "round", "--steps", "10", "--batch-size", "8", "--dev-size", "20",
            "--min-replay", "8", "--data-dir", str(task_file.parent), "--edit-memory", "false", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    reg = Registry(tmp_path)
    assert out["version"] == "v0002" and out["base_version"] == "v0001" and reg.active == "v0001"
    assert out["counts"]["polarity"]["corrections"] == 3
