"""`python -m mtl_core lab` on toy tasks with a tiny encoder: the table, the JSON result, clear errors."""

from __future__ import annotations

import json

from mtl_core.cli.lab import _RunLines
from mtl_core.cli.main import main
from mtl_core.lab.results import BASELINE, LabResult
from tests.helpers.toy import make_tiny_encoder_dir, write_toy_tasks


def test_lab_prints_the_table_and_writes_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_RunLines, "EVERY_S", 0.0)  # a progress line at every step, not once a minute
    (tmp_path / "toy").mkdir()
    tasks, enc = write_toy_tasks(tmp_path / "toy"), make_tiny_encoder_dir(tmp_path / "enc")
    out = tmp_path / "lab.json"
    argv = ["--home", str(tmp_path / "ws"), "lab", "--strategies", "equal", "upgrad", "--budget", "custom",
            "--steps", "4", "--task-file", str(tasks), "--encoder", str(enc), "--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| strategy | family | Δm% | polarity | score | things |" in printed
    assert "run 1/5: equal, seed 0: done" in printed  # a line per finished run
    assert "step 4/4 (lab " in printed  # where training stands, while it runs
    assert "TensorBoard: tensorboard --logdir" in printed
    result = LabResult.from_dict(json.loads(out.read_text()))
    assert {r.strategy for r in result.table} == {"equal", "upgrad", BASELINE}
    assert result.best in ("equal", "upgrad")


def test_lab_bad_settings_are_a_clear_error(tmp_path, capsys):
    assert main(["--home", str(tmp_path), "lab", "--strategies", "nope"]) == 2
    assert "unknown ['nope']" in capsys.readouterr().out
    assert main(["--home", str(tmp_path), "lab", "--budget", "custom"]) == 2
    assert "needs steps" in capsys.readouterr().out
