"""ONNX export: one graph with every head, dynamic batch/sequence, same outputs as PyTorch (onnxruntime)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

from mtl_core.model.checkpoint import load_checkpoint  # noqa: E402
from mtl_core.model.encoding import encode_texts  # noqa: E402
from mtl_core.serve.export import ONNX_FILE, export_model, max_difference, onnx_outputs, onnx_session  # noqa: E402
from tests.helpers.runner import cpu_runner

TEXTS = ["The stock market fell in London today.", "ok", "What is the capital of Peru ?", "word " * 200,
         "emoji 😀 and 你好"]


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory):
    model, tok, task_file, _ = load_checkpoint(tiny_checkpoint)
    out = tmp_path_factory.mktemp("onnx")
    info = export_model(model, tok, task_file, out, version="tiny")
    return model, tok, out, info


def test_export_writes_one_graph_with_every_head(exported):
    model, _, out, info = exported
    assert (out / ONNX_FILE).is_file() and (out / "tokenizer").is_dir() and (out / "tasks.json").is_file()
    session = onnx_session(out / ONNX_FILE)
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask", "shape_ids"]  # NER reads word shapes
    assert [o.name for o in session.get_outputs()] == model.task_names
    for i in session.get_inputs():
        assert all(isinstance(d, str) for d in i.shape)  # batch and sequence are dynamic
    described = json.loads((out / "outputs.json").read_text())
    assert list(described["outputs"]) == model.task_names
    assert max(info["max_abs_diff"].values()) <= 1e-4


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_onnxruntime_matches_pytorch(exported, batch_size):
    model, tok, out, _ = exported
    session = onnx_session(out / ONNX_FILE)
    diffs = max_difference(model, session, tok, TEXTS[:batch_size], model.config.max_length)
    assert set(diffs) == set(model.task_names)
    assert max(diffs.values()) <= 1e-4, diffs


def test_output_shapes_follow_the_input(exported):
    model, tok, out, _ = exported
    session = onnx_session(out / ONNX_FILE)
    batch = encode_texts(tok, TEXTS, model.config.max_length)
    got = onnx_outputs(session, batch.input_ids, batch.attention_mask, batch.shape_ids)
    b, t = batch.input_ids.shape
    for spec in model.tasks.values():
        shape = got[spec.name].shape
        assert shape == ((b, t, spec.n_outputs) if spec.kind == "token_classification" else (b, spec.n_outputs))
        assert np.isfinite(got[spec.name]).all()


def test_cli_export(workspace, tmp_path, capsys):
    from mtl_core.cli.main import main

    out = tmp_path / "exported"
    assert main(["export", "--onnx", "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["version"] == "v0001" and (out / ONNX_FILE).is_file()
    assert max(info["max_abs_diff"].values()) <= 1e-4


def test_edit_memory_is_part_of_the_exported_graph(tiny_checkpoint, tmp_path):
    from mtl_core.data.examples import Example
    from mtl_core.eval.compare import predict_answers
    from mtl_core.model.edit_memory import build_task_memory

    model, tok, task_file, _ = load_checkpoint(tiny_checkpoint)
    spec = model.tasks["sentiment"]
    answers = predict_answers(cpu_runner(model, tok), spec, [Example(t, label="positive") for t in TEXTS[:3]])
    flipped = [Example(t, label="negative" if a == "positive" else "positive") for t, a in zip(TEXTS, answers)]
    memory, _ = build_task_memory(cpu_runner(model, tok), spec, flipped, [], radius_cap=0.05)
    model.memory["sentiment"] = memory
    assert predict_answers(cpu_runner(model, tok), spec, flipped) == [ex.label for ex in flipped]
    export_model(model, tok, task_file, tmp_path, version="tiny-memory")
    diffs = max_difference(model, onnx_session(tmp_path / ONNX_FILE), tok, TEXTS, model.config.max_length)
    assert max(diffs.values()) <= 1e-4, diffs
