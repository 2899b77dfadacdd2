"""Fine-tuning rounds with a multi-label task: corrected label sets become training examples, and a whole
round (replay distillation, edit memory left to the weights, thresholds tuned again) runs on a tiny model."""

from __future__ import annotations

import json

import pytest

from mtl_core.data.examples import Example
from mtl_core.model.checkpoint import THRESHOLDS
from mtl_core.model.modeling import ModelConfig
from mtl_core.model.registry import Registry
from mtl_core.rounds.finetune import RoundConfig, run_round
from mtl_core.rounds.round_data import build_round_data, correction_example, load_corrections
from mtl_core.store import add_annotation, add_texts
from mtl_core.store.db import open_store
from mtl_core.tasks import MULTILABEL, TaskSpec, load_task_file
from mtl_core.train.loop import TrainConfig
from mtl_core.train.pipeline import prepare, train_new_version
from tests.helpers.multilabel import LABELS, write_multilabel_task
from tests.helpers.toy import make_tiny_encoder_dir

SPEC = TaskSpec("topics", MULTILABEL, list(LABELS))
NEW = [f"memo {i} on football and dollars" for i in range(6)]


@pytest.mark.parametrize("value, label", [
    (["weather", "sport"], ("sport", "weather")),  # task-file order
    ([], ()),  # "none of the labels" is a correction too
    (["sport", "sport"], ("sport",)),
])
def test_correction_example_keeps_a_label_set(value, label):
    assert correction_example(SPEC, "a text", value) == Example("a text", label)


@pytest.mark.parametrize("value", [["golf"], "sport", None, [{"start": 0, "end": 1, "label": "sport"}], 3.0])
def test_correction_example_refuses_what_is_no_label_set(value):
    assert correction_example(SPEC, "a text", value) is None


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlround")
    task_file = write_multilabel_task(root, n=160)
    cfg = TrainConfig(steps=80, batch_size=16, eval_every=80, head_lr=3e-3, encoder_lr=3e-3, freeze_layers=0,
                      freeze_embeddings=False)
    home = root / "home"
    train_new_version(task_file, ModelConfig(encoder=str(make_tiny_encoder_dir(root / "enc")), max_length=32), cfg,
                      home=home, progress=False)
    return home, root, task_file


def test_a_round_learns_corrected_label_sets(base, monkeypatch):
    home, root, task_file = base
    monkeypatch.setenv("MTL_STUDIO_HOME", str(home))
    _, sessions = open_store(home)
    with sessions() as s:
        ids = add_texts(s, NEW, source="predict")
        for i in ids:
            add_annotation(s, i, "topics", ["sport", "money"], "ann")
        add_annotation(s, add_texts(s, ["odd one"])[0], "topics", ["golf"], "ann")  # not a label: skipped
        corrections = load_corrections(s)
    data = build_round_data(load_task_file(task_file), prepare(task_file, home)[1], corrections, min_replay=8)
    assert {ex.label for ex in data.corrections["topics"]} == {("sport", "money")}
    assert data.skipped["invalid_label"] == 1
    cfg = RoundConfig(steps=30, batch_size=8, encoder_lr=1e-3, head_lr=3e-3, dev_size=40, min_replay=16, log_every=10)
    out = run_round(home, "v0001", cfg, sessions=sessions, data_dir=str(root))
    assert out.version == "v0002" and out.counts["topics"]["corrections"] == 6
    assert out.comparison["edit_memory"]["topics"]["unsupported"] == 1  # label sets stay with the weights
    assert out.comparison["test"]["tasks"]["topics"]["metric"] == "micro_f1"
    assert out.comparison["corrections"]["counts"]["topics"]["n"] == 6
    saved = json.loads((Registry(home).path_of("v0002") / THRESHOLDS).read_text())["tasks"]["topics"]
    assert set(saved) == set(LABELS)
