"""Multi-label tasks: the task kind, csv/jsonl label sets, dedupe, the cache, features and the loss."""

from __future__ import annotations

import json

import pytest
import torch

from mtl_core.data.errors import DataSourceError
from mtl_core.data.examples import Example
from mtl_core.data.loaders import load_examples, parse_label_set
from mtl_core.data.prepare import prepare_task
from mtl_core.data.splits import dedupe, label_counts
from mtl_core.model.features import collate, featurize
from mtl_core.tasks import KINDS, MULTILABEL, SourceSpec, TaskFileError, TaskSpec, parse_task_file
from mtl_core.train.losses import task_loss
from tests.helpers.multilabel import LABELS, toy_rows, write_multilabel_task


def _spec(path, loader="csv", **options) -> TaskSpec:
    return TaskSpec("topics", MULTILABEL, list(LABELS), SourceSpec(loader, {"path": str(path), **options}))


def test_kind_is_known_and_needs_two_labels():
    assert MULTILABEL in KINDS
    spec = parse_task_file({"tasks": [{"name": "t", "kind": MULTILABEL, "labels": ["a", "b"]}]}).tasks[0]
    assert spec.n_outputs == 2 and spec.tag_names == ["a", "b"]
    with pytest.raises(TaskFileError, match="labels"):
        TaskSpec("t", MULTILABEL, ["a"])
    with pytest.raises(TaskFileError, match="duplicates"):
        TaskSpec("t", MULTILABEL, ["a", "a"])


@pytest.mark.parametrize("cell, expected", [
    ("money|sport", ("sport", "money")),  # task-file order, whatever the cell's
    (" sport | weather ", ("sport", "weather")),
    ('["weather", "sport", "sport"]', ("sport", "weather")),  # a repeat counts once
    ("", ()), ("[]", ()), (None, ()), (["money"], ("money",)),
])
def test_label_set_cells(cell, expected):
    assert parse_label_set(cell, LABELS, "line 2", "column 'labels'") == expected


@pytest.mark.parametrize("cell, message", [
    ("sport|golf", "not in task labels"), ('["sport", 3]', "list of labels"), ("[sport", "not a JSON list"),
    ({"a": 1}, "list of labels"), ("[" * 5000, "not a JSON list"),
])
def test_bad_label_sets_name_the_problem(cell, message):
    with pytest.raises(DataSourceError, match=message):
        parse_label_set(cell, LABELS, "line 2", "column 'labels'")


def test_csv_with_pipe_and_json_cells_loads_the_same(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write_multilabel_task(a, n=30)
    write_multilabel_task(b, n=30, json_cells=True)
    pipe = load_examples(_spec(a / "topics.csv", label_column="labels"))
    js = load_examples(_spec(b / "topics.csv", label_column="labels"))
    assert pipe == js
    assert [list(ex.label) for ex in pipe] == [labels for _, labels in toy_rows(30)]
    assert any(ex.label == () for ex in pipe)  # texts with no label are negatives, not errors


def test_csv_unknown_label_names_the_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\nfine text,sport\nbad text,sport|golf\n")
    with pytest.raises(DataSourceError, match=r"line 3: labels \['golf'\]"):
        load_examples(_spec(path))


def test_jsonl_lists_and_pipe_strings(tmp_path):
    path = tmp_path / "t.jsonl"
    rows = [{"text": "a", "label": ["weather", "sport"]}, {"text": "b", "label": "money"}, {"text": "c", "label": []}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    assert [ex.label for ex in load_examples(_spec(path, "jsonl"))] == [("sport", "weather"), ("money",), ()]


def test_example_json_round_trip_keeps_a_hashable_set():
    ex = Example("t", ("sport", "money"))
    back = Example.from_dict(json.loads(json.dumps(ex.to_dict())))
    assert back == ex and isinstance(back.label, tuple) and hash(back) == hash(ex)
    assert ex.to_dict()["label"] == ["sport", "money"]


def test_dedupe_keeps_majority_labels_and_drops_ties():
    merged = dedupe([Example("Same text", ("sport", "money")), Example("same  text", ("sport",)),
                     Example("SAME TEXT", ("sport", "money")), Example("tie", ("sport",)), Example("tie", ())])
    assert merged == [Example("Same text", ("sport", "money"))]  # money 2 of 3 votes; "tie" dropped
    assert label_counts([Example("x", ("sport", "money")), Example("y", ("sport",))]) == {"sport": 2, "money": 1}


def test_prepare_caches_label_sets(tmp_path):
    write_multilabel_task(tmp_path, n=60)
    spec = _spec(tmp_path / "topics.csv", label_column="labels")
    first = prepare_task(spec, tmp_path / "cache")
    again = prepare_task(spec, tmp_path / "cache")  # from the JSONL cache
    assert first == again and sum(len(v) for v in again.values()) == 60
    assert all(isinstance(ex.label, tuple) for split in again.values() for ex in split)


def test_features_are_multi_hot_and_the_loss_is_bce(tiny_predictor):
    spec = TaskSpec("topics", MULTILABEL, list(LABELS))
    feats = featurize(spec, [Example("a", ("sport", "weather")), Example("b", ())], tiny_predictor.tokenizer, 16)
    assert [f.label for f in feats] == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    labels = collate(feats, MULTILABEL, 0)["labels"]
    assert labels.dtype == torch.float and labels.shape == (2, 3)
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    manual = -(labels * torch.log(torch.sigmoid(logits)) + (1 - labels) * torch.log(1 - torch.sigmoid(logits))).mean()
    assert torch.allclose(task_loss(MULTILABEL, logits, labels), manual)
