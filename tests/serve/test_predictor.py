"""Predictor invariants on a tiny random model with the real tokenizer."""

import json

import numpy as np
import pytest

from mtl_core.model.checkpoint import CheckpointError, load_checkpoint
from mtl_core.model.registry import Registry
from mtl_core.model.testing import make_tiny_checkpoint
from mtl_core.serve.predictor import NoModelError, Predictor, load_active_predictor
from mtl_core.types import ClassPrediction, RegressionPrediction, TokenPrediction

ODD = [
    "I loved this movie, Obama was great!",
    "",
    "   \n\t ",
    "emoji 😀🎉 and RTL שלום עליכם and CJK 你好世界",
    "zero\u200bwidth\u200d joiners\ufeff and \x00\x07 control chars",
    "<script>alert(1)</script> <img src=x onerror=alert(1)>",
    "word " * 400,
]


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return Predictor.from_dir(make_tiny_checkpoint(tmp_path_factory.mktemp("ck")))


def test_every_task_answers_with_typed_output(predictor):
    (p,) = predictor.predict(["The stock market fell in London today."])
    assert set(p.tasks) == {"sentiment", "sentiment_score", "topic", "question_type", "spam", "ner"}
    assert isinstance(p.tasks["sentiment"], ClassPrediction)
    assert isinstance(p.tasks["sentiment_score"], RegressionPrediction)
    assert isinstance(p.tasks["ner"], TokenPrediction)
    probs = p.tasks["topic"].probs
    assert abs(sum(probs.values()) - 1) < 1e-6 and p.tasks["topic"].label == max(probs, key=probs.get)
    assert -4 <= p.tasks["sentiment_score"].value <= 4


def test_odd_inputs_never_raise_and_spans_align(predictor):
    preds = predictor.predict(ODD)
    assert [p.text for p in preds] == ODD  # order restored after length bucketing
    for p in preds:
        ner = p.tasks["ner"]
        assert len(ner.tags) == len(p.tokens)
        for s in ner.spans:
            assert 0 <= s.start < s.end <= len(p.text)
            assert p.text[s.start:s.end] == s.text


def test_truncation_is_reported(predictor):
    long_text = "word " * 20_000  # 100k characters
    (p,) = predictor.predict([long_text])
    assert p.truncated and p.n_tokens > predictor.max_length
    assert len(p.tokens) == predictor.max_length
    assert 0 < p.truncated_at < len(long_text)
    (short,) = predictor.predict(["short text"])
    assert not short.truncated and short.truncated_at is None


def test_attention_shape_and_rows_sum_to_one(predictor):
    (p,) = predictor.predict(["attention please, this is a test"], with_attention=True)
    layers, heads = predictor.model.encoder.config.num_hidden_layers, predictor.model.encoder.config.num_attention_heads
    assert p.attentions.shape == (layers, heads, len(p.tokens), len(p.tokens))
    np.testing.assert_allclose(p.attentions.sum(-1), 1.0, atol=1e-4)
    (q,) = predictor.predict(["attention please, this is a test"])
    assert q.attentions is None


def test_sdpa_and_eager_paths_agree(predictor):
    texts = ["a short one", "a somewhat longer sentence about football and the economy"]
    fast = predictor.predict(texts)
    slow = predictor.predict(texts, with_attention=True)
    for a, b in zip(fast, slow):
        for name in ("sentiment", "topic"):
            for label, prob in a.tasks[name].probs.items():
                assert abs(prob - b.tasks[name].probs[label]) < 1e-4


def test_batching_does_not_change_results(predictor):
    texts = [f"text number {i} " * (i % 7 + 1) for i in range(20)]
    one = [predictor.predict([t])[0] for t in texts]
    many = predictor.predict(texts, batch_size=8)
    for a, b in zip(one, many):
        assert abs(a.tasks["sentiment_score"].value - b.tasks["sentiment_score"].value) < 1e-4


def test_saved_then_loaded_predicts_the_same(tmp_path):
    ck = make_tiny_checkpoint(tmp_path / "a", shared_layers=1)
    a = Predictor.from_dir(ck).predict(["same answer twice"])[0]
    b = Predictor.from_dir(ck).predict(["same answer twice"])[0]
    assert a.tasks["topic"].probs == pytest.approx(b.tasks["topic"].probs, abs=1e-6)
    assert a.tasks["ner"].tags == b.tasks["ner"].tags


def test_prediction_is_json_serialisable(predictor):
    (p,) = predictor.predict(["to json"], with_attention=True)
    d = json.loads(json.dumps(p.to_dict(with_attention=True)))
    assert d["tasks"]["sentiment"]["kind"] == "classification" and len(d["attentions"]) == 2


def test_non_string_input_is_a_clear_error(predictor):
    with pytest.raises(TypeError, match="strings"):
        predictor.predict([None])


def test_missing_and_corrupt_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope")
    ck = make_tiny_checkpoint(tmp_path / "ck")
    (ck / "heads.safetensors").write_bytes((ck / "heads.safetensors").read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(ck)
    (ck / "tasks.json").unlink()
    with pytest.raises(CheckpointError, match="missing tasks.json"):
        load_checkpoint(ck)


def test_active_version_falls_back_when_broken(tmp_path):
    reg = Registry(tmp_path / "ws")
    with pytest.raises(NoModelError, match="train"):
        load_active_predictor(reg.home)
    good = reg.register(make_tiny_checkpoint(reg.staging_dir()), note="good")
    bad = reg.register(make_tiny_checkpoint(reg.staging_dir()), note="bad", activate=True)
    (reg.path_of(bad.id) / "encoder" / "model.safetensors").write_bytes(b"garbage")
    pred = load_active_predictor(reg.home)
    assert pred.version == good.id and pred.meta["fallback_from"] == bad.id
