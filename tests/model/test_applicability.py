"""Applicability: fitting, scoring, the rules per task, and the checkpoint file (with and without it)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from mtl_core.model.applicability import (
    FILE,
    Applicability,
    capitalised_names,
    default_layers,
    names_score,
    piece_bag,
    strength_score,
)
from mtl_core.model.applicability_fit import embed, fit_applicability, sample_texts
from mtl_core.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mtl_core.serve.predictor import Predictor
from mtl_core.types import Prediction, RegressionPrediction, Span, TokenPrediction
from tests.helpers.applicability import DOMAIN_TEXTS, checkpoint_where


@pytest.fixture(scope="module")
def fitted(tiny_checkpoint):
    model, tok, task_file, meta = load_checkpoint(tiny_checkpoint)
    model.applicability = fit_applicability(model, tok, DOMAIN_TEXTS, n=60)
    return model, tok, task_file, meta


def _scores(model, tok, texts, answers=None):
    rep, ids = embed(model, tok, texts, model.applicability.layers)
    return model.applicability.score(rep, texts, answers or [{} for _ in texts], ids)


def test_rules_per_task(fitted):
    rules = fitted[0].applicability.rules
    assert rules["ner"] == {"rule": "names"}
    assert rules["topic"] == {"rule": "domain", "domain": ["topic"], "polarity": None}
    # identical texts: the held-out classifier cannot tell them apart, so they share one domain
    assert set(rules["sentiment"]["domain"]) == {"sentiment", "sentiment_score"}
    assert rules["sentiment"]["polarity"] == "sentiment_score"  # the -4..4 scale
    assert fitted[0].applicability.fitted["texts"]["topic"] == 60


def test_features_are_layer_states_and_a_bag_of_the_input_pieces(fitted):
    app, n_layers = fitted[0].applicability, fitted[0].encoder.config.num_hidden_layers
    assert app.layers == default_layers(n_layers) and app.buckets == 4096
    assert default_layers(6) == [2, 4, 6] and default_layers(1) == [1]
    assert app.rep_size == len(app.layers) * fitted[0].encoder.config.hidden_size
    assert all(len(row) == len(app.mean) + app.buckets for row in app.weight)
    bag = piece_bag([np.array([101, 7, 7, 102]), np.array([], dtype=np.int64)], 16)
    assert bag[0] @ bag[0] == pytest.approx(1.0) and (bag[0] > 0).sum() <= 3 and not bag[1].any()
    texts = ["Who invented the telephone ?"]
    rep, ids = embed(fitted[0], fitted[1], texts, app.layers)
    assert app.score(rep, texts, [{}]) == [{}]  # the bag's pieces are missing: unknown, not a guess


def test_a_task_applies_to_its_own_kind_of_text_only(fitted):
    model, tok = fitted[0], fitted[1]
    question, news, sms = ("Who invented the telephone ?",
                           "Shares in Acme fell 3% on Friday after the firm warned that profits would miss forecasts.",
                           "WIN a FREE prize!! txt WIN to 80086 now, 150p/msg")
    q, n, s = _scores(model, tok, [question, news, sms])
    assert q["question_type"] > 0.5 > max(n["question_type"], s["question_type"])
    assert n["topic"] > 0.5 > max(q["topic"], s["topic"])
    assert s["spam"] > 0.5 > max(q["spam"], n["spam"])
    assert all(0.0 <= p <= 1.0 for row in (q, n, s) for p in row.values())


def test_names_rule():
    assert capitalised_names("Just saw Taylor Swift in New York!") == ["Taylor", "Swift", "New", "York"]
    assert capitalised_names("Hey. Are we still on? I can pick up the wine.") == []  # sentence starts, "I"
    assert capitalised_names("WINNER!! CALL NOW") == []  # shouting is not a name
    assert names_score("no names here", TokenPrediction([], [])) == 0.0
    span = Span(0, 4, "person", "john", 0.9)
    assert names_score("john is here", TokenPrediction([span], [])) == 1.0  # the head found one


def test_polarity_strength():
    weak, strong = (RegressionPrediction(v, -4.0, 4.0) for v in (0.1, -3.5))
    assert strength_score(weak) < 0.1 and strength_score(strong) > 0.9
    assert strength_score(RegressionPrediction(1.0, -4.0, 4.0)) == pytest.approx(0.5)
    assert strength_score(None) is None


def test_sample_is_seeded_and_cuts_long_texts():
    texts = {"a": [f"First sentence {i}. Second one here. Third one." for i in range(50)], "b": ["x", " ", "y"]}
    one, two = sample_texts(texts, n=20, seed=1), sample_texts(texts, n=20, seed=1)
    assert one == two and len(one["a"]) == 20 and sorted(one["b"]) == ["x", "y"]
    assert any(t.count(".") < 3 for t in one["a"])  # fragments: one or two of the sentences
    assert sample_texts(texts, n=20, seed=2) != one


def test_round_trip_through_the_checkpoint(fitted, tmp_path):
    model, tok, task_file, _ = fitted
    out = save_checkpoint(model, tok, task_file, tmp_path / "ck")
    assert FILE in json.loads((out / "checksums.json").read_text())["sha256"]
    loaded = load_checkpoint(out)[0]
    assert loaded.applicability.to_dict() == model.applicability.to_dict()
    texts = ["Who invented the telephone ?", "lol see u at 7"]
    assert _scores(loaded, tok, texts) == _scores(model, tok, texts)


def test_tampered_or_malformed_file_is_refused(fitted, tmp_path):
    model, tok, task_file, _ = fitted
    out = save_checkpoint(model, tok, task_file, tmp_path / "ck")
    data = json.loads((out / FILE).read_text())
    data["bias"][0] += 1.0
    (out / FILE).write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(out)
    (out / "checksums.json").unlink()  # unchecked, but still validated
    (out / FILE).write_text(json.dumps({**data, "bias": [0.0]}))
    with pytest.raises(CheckpointError, match="shapes"):
        load_checkpoint(out)


def test_old_checkpoint_without_the_file_loads_and_every_task_applies(tiny_checkpoint, tmp_path):
    old = shutil.copytree(tiny_checkpoint, tmp_path / "old")
    assert not (old / FILE).exists()
    pred = Predictor.from_dir(old, device="cpu")
    assert pred.model.applicability is None
    p = pred.predict("Who invented the telephone?")[0]
    assert p.applies == {} and all(p.applies_to(t) for t in p.tasks)
    assert p.to_dict()["applies"] == {}


def test_predictor_fills_applies_from_the_same_forward(fitted, tmp_path):
    model, tok, task_file, _ = fitted
    pred = Predictor.from_dir(save_checkpoint(model, tok, task_file, tmp_path / "ck"), device="cpu")
    text = "WIN a FREE prize!! txt WIN to 80086 now, 150p/msg"
    p = pred.predict(["Who invented the telephone ?", text])[1]
    assert set(p.applies) == set(pred.task_names)
    assert p.applies["spam"] > 0.5 > p.applies["question_type"]
    assert not p.applies_to("question_type") and p.applies_to("spam")
    expected = _scores(pred.model, tok, [text], [p.tasks])[0]
    assert p.applies == pytest.approx(expected, abs=1e-3)
    assert json.loads(json.dumps(p.to_dict()))["applies"]["spam"] == p.applies["spam"]


def test_checkpoint_where_a_task_never_applies(tiny_checkpoint, tmp_path):
    pred = Predictor.from_dir(checkpoint_where(tiny_checkpoint, tmp_path / "ck", "topic"), device="cpu")
    p = pred.predict("anything at all")[0]
    assert p.applies == {"topic": pytest.approx(0.0067, abs=1e-3)}
    assert not p.applies_to("topic") and p.applies_to("sentiment")


def test_applicability_rejects_bad_shapes_and_rules():
    good = dict(domains=["a", "b"], mean=[0.0, 0.0], scale=[1.0, 1.0], weight=[[0.0, 0.0], [0.0, 0.0]],
                bias=[0.0, 0.0], shape=False, rules={"a": {"rule": "domain", "domain": ["a"], "polarity": None}})
    Applicability(**good)
    with pytest.raises(ValueError, match="shapes"):
        Applicability(**{**good, "weight": [[0.0], [0.0]]})
    with pytest.raises(ValueError, match="unknown rule"):
        Applicability(**{**good, "rules": {"a": {"rule": "vibes"}}})
    with pytest.raises(ValueError, match="domain"):
        Applicability(**{**good, "rules": {"a": {"rule": "domain", "domain": ["zzz"]}}})
    scored = Applicability(**good).score(np.zeros((1, 5)), ["x"], [{}])
    assert scored == [{}]  # a representation of another size: unknown, not a crash
    with pytest.raises(ValueError, match="shapes"):
        Applicability(**{**good, "buckets": 4})  # the weights lack the bag's columns


def test_a_file_saved_before_layers_and_bag_still_scores_the_pooled_output(fitted, tmp_path):
    model, tok, task_file, _ = fitted
    hidden = model.encoder.config.hidden_size
    old = Applicability(domains=["topic", "other"], mean=[0.0] * hidden, scale=[1.0] * hidden,
                        weight=[[0.0] * hidden, [0.0] * hidden], bias=[-2.5, 2.5], shape=False,
                        rules={"topic": {"rule": "domain", "domain": ["topic"], "polarity": None}}).to_dict()
    for key in ("layers", "buckets", "bag_scale"):
        old.pop(key)
    model = load_checkpoint(save_checkpoint(model, tok, task_file, tmp_path / "ck"))[0]
    model.applicability = Applicability.from_dict(old)
    assert model.applicability.layers == [] and model.applicability.buckets == 0
    pred = Predictor.from_dir(save_checkpoint(model, tok, task_file, tmp_path / "old"), device="cpu")
    assert pred.predict("anything")[0].applies == {"topic": pytest.approx(0.0067, abs=1e-3)}


def test_prediction_applies_defaults():
    p = Prediction(text="x", tasks={}, n_tokens=1, truncated=False, applies={"a": 0.49, "b": 0.5})
    assert not p.applies_to("a") and p.applies_to("b") and p.applies_to("unknown")
