"""A multi-label task end to end on a tiny encoder: training, tuned thresholds in the checkpoint, predictions,
batch files, ONNX export and saliency (seconds, CPU)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from mtl_core.data.examples import Example
from mtl_core.eval.compare import predict_answers
from mtl_core.eval.thresholds import tune_thresholds
from mtl_core.model.checkpoint import THRESHOLDS, CheckpointError, load_checkpoint, save_checkpoint
from mtl_core.model.decoding import DEFAULT_THRESHOLD, sigmoid
from mtl_core.model.modeling import ModelConfig
from mtl_core.model.registry import Registry
from mtl_core.serve import batch as batch_job
from mtl_core.serve.explain import saliency
from mtl_core.serve.predictor import load_active_predictor
from mtl_core.tasks import MULTILABEL
from mtl_core.train.loop import TrainConfig
from mtl_core.train.pipeline import prepare, train_new_version
from mtl_core.types import MultiLabelPrediction
from tests.helpers.multilabel import LABELS, write_multilabel_task
from tests.helpers.reporting import RecordingReporter
from tests.helpers.runner import cpu_runner
from tests.helpers.toy import make_tiny_encoder_dir

TEXTS = ["note 900 about football and rain today", "note 901 about dollars today", "note 902 about nothing today",
         "a text unlike the training data", "rain", "football dollars rain"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("multilabel")
    task_file = write_multilabel_task(root, n=200)
    enc = make_tiny_encoder_dir(root / "enc")
    cfg = TrainConfig(steps=150, batch_size=16, eval_every=75, head_lr=3e-3, encoder_lr=3e-3, freeze_layers=0,
                      freeze_embeddings=False, log_every=10)
    home = root / "home"
    info, report = train_new_version(task_file, ModelConfig(encoder=str(enc), max_length=32), cfg, home=home,
                                     progress=False)
    return home, info, report, task_file


@pytest.fixture(scope="module")
def predictor(trained):
    return load_active_predictor(trained[0])


def test_training_runs_and_the_loss_falls(trained):
    report = trained[2]
    losses = [row["loss"]["topics"] for row in report["history"] if "loss" in row]
    assert len(losses) == 15 and losses[-1] < 0.6 * losses[0]  # BCE on a separable toy set
    test = report["test"]["tasks"]["topics"]
    assert {"micro_f1", "macro_f1", "exact_match", "f1_sport", "f1_money", "f1_weather", "primary"} <= set(test)
    assert test["primary"] == test["micro_f1"] > 0.8
    assert set(report["test_details"]["topics"]["report"]) == set(LABELS)


def test_thresholds_are_saved_checked_and_reloaded(trained, predictor, tmp_path):
    home, info, *_ = trained
    path = Registry(home).path_of(info.id)
    saved = json.loads((path / THRESHOLDS).read_text())["tasks"]
    assert set(saved) == {"topics"} and set(saved["topics"]) == set(LABELS)
    assert all(0.05 <= t <= 0.95 for t in saved["topics"].values())
    assert THRESHOLDS in json.loads((path / "checksums.json").read_text())["sha256"]
    model, tok, task_file, _ = load_checkpoint(path)
    assert model.thresholds == saved == predictor.model.thresholds
    model.thresholds = {"topics": {"sport": 0.7}}  # a label without one stays at the default
    again, *_ = load_checkpoint(save_checkpoint(model, tok, task_file, tmp_path / "copy"))
    assert again.thresholds == {"topics": {"sport": 0.7}}
    (tmp_path / "copy" / THRESHOLDS).write_text(json.dumps({"tasks": {"topics": {"sport": 0.9}}}))
    with pytest.raises(CheckpointError, match="thresholds.json does not match"):
        load_checkpoint(tmp_path / "copy")


def test_dev_without_a_label_keeps_the_default(predictor):
    runner = cpu_runner(predictor.model, predictor.tokenizer, 32)
    spec = predictor.model.tasks["topics"]
    dev = [Example(f"note {i} about football today", ("sport",)) for i in range(4)] + [Example("plain", ())]
    tuned = tune_thresholds(runner, spec, dev)
    assert tuned["weather"] == tuned["money"] == DEFAULT_THRESHOLD and tuned["sport"] != DEFAULT_THRESHOLD
    assert tune_thresholds(runner, spec, []) == dict.fromkeys(LABELS, DEFAULT_THRESHOLD)


def test_predictions_are_the_labels_at_or_above_their_threshold(trained, predictor):
    preds = predictor.predict(TEXTS)
    thresholds = predictor.model.thresholds["topics"]
    for pred in preds:
        answer = pred.tasks["topics"]
        assert isinstance(answer, MultiLabelPrediction) and answer.kind == MULTILABEL
        assert answer.thresholds == thresholds and list(answer.probs) == LABELS
        assert answer.labels == [lab for lab in LABELS if answer.probs[lab] >= answer.thresholds[lab]]
        assert all(0.0 <= p <= 1.0 for p in answer.probs.values())
        assert pred.to_dict()["tasks"]["topics"]["labels"] == answer.labels
    _, prepared = prepare(trained[3], trained[0])
    test = prepared["topics"]["test"]  # held out: the Predictor and evaluation give the same answers
    answers = [p.tasks["topics"].labels for p in predictor.predict([ex.text for ex in test])]
    runner = cpu_runner(predictor.model, predictor.tokenizer, 32)
    assert answers == predict_answers(runner, predictor.model.tasks["topics"], test)
    assert np.mean([a == list(ex.label) for a, ex in zip(answers, test)]) >= 0.8
    logits = predictor.logits(predictor.encode(TEXTS[:1])).logits["topics"].float().numpy()[0]
    assert list(preds[0].tasks["topics"].probs.values()) == pytest.approx(list(sigmoid(logits.astype(np.float64))))


def test_batch_file_has_the_label_list_and_a_probability_per_label(predictor, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("text\n" + "\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    counts = batch_job.predict_file(predictor, source, "in.csv", "text", out, RecordingReporter())
    assert counts["predicted"] == len(TEXTS)
    rows = list(csv.DictReader(io.StringIO((out / "predictions.csv").read_text("utf-8"))))
    probs = [f"topics_prob_{lab}" for lab in LABELS]
    assert list(rows[0]) == ["row", "text", "topics", *probs, "topics_applies", "truncated"]
    preds = predictor.predict(TEXTS)
    for row, pred in zip(rows, preds):
        assert row["topics"] == "|".join(pred.tasks["topics"].labels)
        assert [float(row[c]) for c in probs] == pytest.approx(list(pred.tasks["topics"].probs.values()), abs=1e-4)
    record = json.loads((out / "predictions.jsonl").read_text("utf-8").splitlines()[0])
    assert record["topics"]["labels"] == preds[0].tasks["topics"].labels and set(record["topics"]["thresholds"]) == set(LABELS)


def test_saliency_explains_one_labels_logit(predictor):
    default = saliency(predictor, TEXTS[0], "topics")
    chosen = predictor.predict([TEXTS[0]])[0].tasks["topics"]
    assert default.target == max(chosen.probs, key=chosen.probs.get)
    money = saliency(predictor, TEXTS[0], "topics", target="money", method="integrated_gradients", steps=4)
    assert money.target == "money" and len(money.scores) == len(money.tokens)
    with pytest.raises(ValueError, match="no class"):
        saliency(predictor, TEXTS[0], "topics", target="golf")


def test_onnx_export_gives_sigmoid_probabilities(predictor, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    from mtl_core.model.encoding import encode_texts
    from mtl_core.serve.export import export_model, onnx_outputs, onnx_session

    info = export_model(predictor.model, predictor.tokenizer, predictor.task_file, tmp_path, version="ml")
    described = json.loads((tmp_path / "outputs.json").read_text())["outputs"]["topics"]
    assert described["kind"] == MULTILABEL and described["thresholds"] == predictor.model.thresholds["topics"]
    assert info["max_abs_diff"]["topics"] < 1e-4
    batch = encode_texts(predictor.tokenizer, TEXTS, 32)
    probs = onnx_outputs(onnx_session(tmp_path / "model.onnx"), batch.input_ids, batch.attention_mask,
                         batch.shape_ids)["topics"]
    expected = [list(p.tasks["topics"].probs.values()) for p in predictor.predict(TEXTS)]
    assert probs.shape == (len(TEXTS), 3) and np.allclose(probs, expected, atol=1e-4)
