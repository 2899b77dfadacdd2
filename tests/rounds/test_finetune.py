"""Fine-tuning rounds on toy tasks with a tiny encoder: data, strategies, comparison, the worker job."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mtl_core.data.examples import Example
from mtl_core.eval.compare import (
    compare_answers,
    confusion_diff,
    fixed_and_broken,
    format_answer,
    label_deltas,
    regressions,
    tags_to_spans,
)
from mtl_core.model.checkpoint import load_checkpoint
from mtl_core.model.registry import Registry
from mtl_core.model.version_marks import discard_version, discarded_versions
from mtl_core.ops import worker
from mtl_core.rounds.finetune import RoundConfig, run_round
from mtl_core.rounds.round_data import build_round_data, load_corrections, spans_to_example
from mtl_core.store import add_annotation, add_texts, create_job, get_job, job_metrics, undo_last
from mtl_core.tasks import TaskSpec, load_task_file
from tests.helpers import ROOT
from tests.helpers.toy import private_copy, train_toy_base

NEW_POS = [f"the film number {900 + i} was zesty indeed" for i in range(6)]
NEW_NEG = [f"the film number {950 + i} was soggy indeed" for i in range(6)]
FAST = dict(steps=60, batch_size=8, encoder_lr=1e-3, head_lr=3e-3, lora_lr=5e-3, dev_size=40, min_replay=16,
            log_every=10)


@pytest.fixture(scope="module")
def toy_base(tmp_path_factory):
    """A workspace whose active v0001 was trained on the toy tasks (built once per module)."""
    root = tmp_path_factory.mktemp("toyft")
    return train_toy_base(root, steps=120, max_dev=40), root


@pytest.fixture
def ws(toy_base, tmp_path, monkeypatch):
    """A private copy of the toy workspace (MTL_STUDIO_HOME points at it) + its store sessions."""
    src, root = toy_base
    return (*private_copy(src, tmp_path, monkeypatch), str(root))


def _correct(sessions, texts, task, values, annotator="ann"):
    with sessions() as s:
        ids = add_texts(s, texts, source="predict")
        return [add_annotation(s, i, task, v, annotator).id for i, v in zip(ids, values)]


def _toy_test_text(home, root) -> str:
    from mtl_core.train.pipeline import prepare

    _, prepared = prepare(Path(root) / "tasks.yaml", home)
    return prepared["polarity"]["test"][0].text


# ---------------------------------------------------------------------------------- data


def test_round_data_excludes_test_uses_replay_and_latest_label(ws):
    home, sessions, root = ws
    _correct(sessions, NEW_POS[:2], "polarity", ["neg", "neg"])
    _correct(sessions, NEW_POS[:1], "polarity", ["pos"], annotator="other")  # later label wins
    _correct(sessions, [_toy_test_text(home, root)], "polarity", ["pos"])  # a test text: never trained on
    _correct(sessions, ["i met Rome in town 5"], "things", [[{"start": 6, "end": 10, "label": "thing"}]])
    _correct(sessions, ["bad label text"], "polarity", ["maybe"])
    with sessions() as s:
        undone = add_annotation(s, add_texts(s, ["undone text here"])[0], "polarity", "pos", "u")
        undo_last(s, "u")
        corrections = load_corrections(s)
    assert undone.id not in {c.event_id for c in corrections}
    from mtl_core.train.pipeline import prepare

    task_file, prepared = prepare(Path(root) / "tasks.yaml", home)
    data = build_round_data(task_file, prepared, corrections, replay_ratio=4, upsample=2, min_replay=8)
    assert data.skipped == {"in_test_split": 1, "invalid_label": 1, "unknown_task": 0}
    polarity = {ex.text: ex.label for ex in data.corrections["polarity"]}
    assert polarity == {NEW_POS[0]: "pos", NEW_POS[1]: "neg"}
    assert data.counts["polarity"]["corrections"] == 2 and data.counts["polarity"]["replay"] == 8
    assert data.counts["score"]["corrections"] == 0 and data.counts["score"]["replay"] > 0  # replayed anyway
    test_texts = {ex.text for ex in prepared["polarity"]["test"]}
    assert not test_texts & {ex.text for ex in data.prepared["polarity"]["train"]}
    (ner,) = data.corrections["things"]
    assert ner.words == ("i", "met", "Rome", "in", "town", "5") and ner.tags[2] == "B-thing"
    again = build_round_data(task_file, prepared, corrections, replay_ratio=4, upsample=2, min_replay=8)
    assert again.prepared == data.prepared  # replay is deterministic


def test_spans_to_bio_over_whitespace_words():
    ex = spans_to_example("Tom  Hanks visited New York.", [{"start": 0, "end": 10, "label": "person"},
                                                          {"start": 19, "end": 27, "label": "geo-loc"}])
    assert ex.words == ("Tom", "Hanks", "visited", "New", "York.")
    assert ex.tags == ("B-person", "I-person", "O", "B-geo-loc", "I-geo-loc")
    assert tags_to_spans(list(ex.words), list(ex.tags)) == [("Tom Hanks", "person"), ("New York.", "geo-loc")]


def test_round_config_validates():
    with pytest.raises(ValueError, match="strategy"):
        RoundConfig(strategy="bitfit")
    with pytest.raises(ValueError, match="steps"):
        RoundConfig(steps=0)
    with pytest.raises(ValueError, match="unknown"):
        RoundConfig.from_params({"stepz": 3})
    assert RoundConfig().train_config().eval_every == RoundConfig().steps


# ---------------------------------------------------------------------------------- rounds


def test_round_fixes_corrections_and_registers_inactive(ws):
    home, sessions, root = ws
    ids = _correct(sessions, NEW_POS + NEW_NEG, "polarity", ["pos"] * 6 + ["neg"] * 6)
    out = run_round(home, "v0001", RoundConfig(**{**FAST, "steps": 100}), sessions=sessions, data_dir=root)
    reg = Registry(home)
    assert reg.active == "v0001" and out.version == "v0002"
    info = reg.get("v0002")
    assert info.parent == "v0001" and sorted(info.extra["corrections"]) == sorted(ids)
    assert info.extra["round_config"]["strategy"] == "full" and set(info.metrics) == {"polarity", "score", "things"}
    corr = out.comparison["corrections"]["counts"]["polarity"]
    assert corr["right_new"] >= 11 and corr["right_new"] >= corr["right_old"]
    test = out.comparison["test"]
    assert set(test["tasks"]) == {"polarity", "score", "things"}
    assert {"old", "new", "delta", "metric"} <= set(test["tasks"]["polarity"])
    assert "polarity" in test["confusion"] and isinstance(test["regressions"], list)


@pytest.mark.parametrize("strategy", ["lora", "freeze"])
def test_lora_and_freeze_save_a_plain_loadable_checkpoint(ws, strategy):
    home, sessions, root = ws
    _correct(sessions, NEW_POS[:4], "polarity", ["pos"] * 4)
    before, *_ = load_checkpoint(Registry(home).path_of("v0001"))
    out = run_round(home, "v0001", RoundConfig(**{**FAST, "steps": 20, "strategy": strategy, "freeze_layers": 1,
                                                 "lora_r": 4, "lora_alpha": 8}),
                    sessions=sessions, data_dir=root)
    path = Registry(home).path_of(out.version)
    keys = (path / "encoder" / "model.safetensors").read_bytes()[:20000]
    assert b"lora" not in keys and b"base_layer" not in keys
    model, *_ = load_checkpoint(path)
    assert type(model.encoder).__name__ == "BertModel"
    # applicability refitted on the moved encoder: another representation, other standardisation
    assert model.applicability is not None and set(model.applicability.rules) == set(model.tasks)
    assert model.applicability.mean != before.applicability.mean
    assert max(model.applicability.fitted["texts"].values()) <= 200  # the round's smaller sample
    old, new = before.encoder.state_dict(), model.encoder.state_dict()
    layer0 = "encoder.layer.0.attention.self.query.weight"
    layer1 = "encoder.layer.1.attention.self.query.weight"
    if strategy == "freeze":
        assert (old[layer0] == new[layer0]).all() and not (old[layer1] == new[layer1]).all()
    else:
        assert not (old[layer0] == new[layer0]).all()  # adapters merged into the weights
        assert (old["encoder.layer.0.attention.self.key.weight"] == new["encoder.layer.0.attention.self.key.weight"]).all()


def test_no_corrections_is_a_clear_error(ws):
    home, sessions, root = ws
    with pytest.raises(ValueError, match="no usable corrections"):
        run_round(home, "v0001", RoundConfig(**FAST), sessions=sessions, data_dir=root)


def _job(sessions, params):
    with sessions() as s:
        return create_job(s, "train_round", params=params).id


def test_cancel_gives_cancelled_and_no_version(ws, monkeypatch):
    home, sessions, root = ws
    _correct(sessions, NEW_POS[:3], "polarity", ["pos"] * 3)
    job_id = _job(sessions, {**FAST, "steps": 200, "base_version": "v0001", "data_dir": root})
    calls = []
    original = worker.JobContext.check_cancelled

    def cancel_during_training(self):
        calls.append(1)
        if len(calls) > 4:  # past loading and the first training steps
            worker.cancel_flag(self.home, self.job_id).touch()
        original(self)

    monkeypatch.setattr(worker.JobContext, "check_cancelled", cancel_during_training)
    assert worker.run_job(job_id, home) == "cancelled"
    with sessions() as s:
        job = get_job(s, job_id)
        # the bar counts the whole round's work in permille (rounds/pace.py): cancelled mid-training
        assert job.status == "cancelled" and job.total == 1000 and (job.step or 0) < 1000
    assert [v.id for v in Registry(home).versions()] == ["v0001"]


def test_crash_leaves_job_failed_and_active_untouched(ws, monkeypatch):
    home, sessions, root = ws
    _correct(sessions, NEW_POS[:3], "polarity", ["pos"] * 3)
    import mtl_core.rounds.finetune as ft

    def boom(*args, **kwargs):
        raise RuntimeError("training exploded")

    monkeypatch.setattr(ft, "train", boom)
    job_id = _job(sessions, {**FAST, "base_version": "v0001", "data_dir": root})
    assert worker.run_job(job_id, home) == "failed"
    with sessions() as s:
        job = get_job(s, job_id)
    assert "training exploded" in job.message and "RuntimeError" in job.log
    reg = Registry(home)
    assert reg.active == "v0001" and [v.id for v in reg.versions()] == ["v0001"]
    assert not list((reg.home / "tmp").glob("round-*"))  # staging cleaned up


def test_worker_subprocess_runs_the_full_round(ws, monkeypatch):
    home, sessions, root = ws
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    _correct(sessions, NEW_POS[:4] + NEW_NEG[:4], "polarity", ["pos"] * 4 + ["neg"] * 4)
    job_id = worker.launch("train_round", {**FAST, "steps": 30, "base_version": "v0001", "data_dir": root},
                           home, sessions)
    deadline = time.time() + 600
    while time.time() < deadline:
        with sessions() as s:
            job = get_job(s, job_id)
        if job.status in ("done", "failed", "cancelled"):
            break
        time.sleep(0.5)
    assert job.status == "done", (job.message, job.log)
    assert job.pid != os.getpid() and job.result["version"] == "v0002"
    assert job.result["comparison"]["test"]["tasks"]["polarity"]["old"] >= 0
    with sessions() as s:
        names = {(m.name, m.task) for m in job_metrics(s, job_id)}
    assert ("train_loss", "polarity") in names and ("dev", "polarity") in names
    assert Registry(home).active == "v0001"


def test_discard_marks_without_unregistering(ws):
    home, *_ = ws
    with pytest.raises(ValueError, match="active"):
        discard_version("v0001", home)
    assert discarded_versions(home) == {}


# ---------------------------------------------------------------------------------- comparison (pure)

SPEC = TaskSpec(name="mood", kind="classification", labels=["neg", "pos"])
NER = TaskSpec(name="ents", kind="token_classification", labels=["person"])
REG = TaskSpec(name="score", kind="regression", value_range=(-4.0, 4.0))


def test_fixed_broken_and_deltas_on_constructed_answers():
    exs = [Example(f"t{i}", label=lab) for i, lab in enumerate(["pos", "pos", "neg", "neg"])]
    old = ["neg", "pos", "neg", "pos"]  # t0 wrong, t1 right, t2 right, t3 wrong
    new = ["pos", "neg", "neg", "neg"]  # t0 fixed, t1 broken, t3 fixed
    fixed, broken = fixed_and_broken("mood", "classification", exs, [e.label for e in exs], old, new, "test")
    assert [f["text"] for f in fixed] == ["t0", "t3"] and [b["text"] for b in broken] == ["t1"]
    assert broken[0] == {"split": "test", "task": "mood", "text": "t1", "gold": "pos", "old": "pos", "new": "neg"}
    out = compare_answers({"mood": SPEC}, {"mood": exs}, {"mood": old}, {"mood": new}, "test")
    assert out["tasks"]["mood"]["old"] == pytest.approx(0.5) and out["tasks"]["mood"]["new"] == pytest.approx(0.7333, abs=1e-3)
    assert out["confusion"]["mood"]["diff"] == [[1, -1], [0, 0]]  # rows: gold neg/pos
    assert out["counts"]["mood"] == {"n": 4, "right_old": 2, "right_new": 3, "fixed": 2, "broken": 1,
                                     "nfr": 0.25}
    rows = {r["label"]: r for r in out["labels"] if r["task"] == "mood"}
    assert rows["neg"]["delta_f1"] == pytest.approx(0.8 - 0.5)


def test_regression_and_ner_right_or_wrong():
    exs = [Example("a", label=1.0), Example("b", label=-2.0)]
    fixed, broken = fixed_and_broken("score", "regression", exs, [1.0, -2.0], [3.0, -2.5], [1.5, 0.0], "test")
    assert [f["text"] for f in fixed] == ["a"] and [b["text"] for b in broken] == ["b"]  # |err| > 1 is wrong
    ner = [Example("Tom met Ann", words=("Tom", "met", "Ann"), tags=("B-person", "O", "B-person"))]
    gold = [list(ner[0].tags)]
    fixed, _ = fixed_and_broken("ents", "token_classification", ner, gold, [["B-person", "O", "O"]], gold, "c")
    assert fixed[0]["old"] == "Tom (person)" and fixed[0]["new"] == "Tom (person); Ann (person)"
    assert format_answer("regression", 0.5) == "+0.50"


def test_regressions_threshold_is_one_point():
    tasks = {"a": {"delta": -0.011}, "b": {"delta": -0.009}, "c": {"delta": 0.2}}
    assert regressions({"tasks": tasks}) == ["a"]
    assert regressions(tasks, threshold=0.005) == ["a", "b"]


def test_label_and_confusion_helpers_ignore_missing_sides():
    old = {"mood": {"report": {"neg": {"precision": 1, "recall": 0.5, "f1-score": 0.6, "support": 2},
                               "macro avg": {}}, "confusion": [[1, 1], [0, 2]]}}
    new = {"mood": {"report": {"neg": {"precision": 1, "recall": 1, "f1-score": 1.0, "support": 2}},
                    "confusion": [[2, 0], [0, 2]]}, "other": {}}
    (row,) = label_deltas(old, new)
    assert row["delta_f1"] == pytest.approx(0.4) and row["support"] == 2
    assert confusion_diff(old, new, {"mood": ["neg", "pos"]})["mood"]["diff"] == [[1, -1], [0, 0]]


def test_default_task_names_are_accepted():
    names = [t.name for t in load_task_file().tasks]
    assert RoundConfig(tasks=names[:2]).tasks == names[:2]



def test_edit_memory_answers_what_the_weights_did_not_learn(ws):
    home, sessions, root = ws
    _correct(sessions, NEW_POS + NEW_NEG, "polarity", ["neg"] * 6 + ["pos"] * 6)  # against the toy's rule
    gentle = {**FAST, "steps": 10, "encoder_lr": 1e-5, "head_lr": 1e-5}
    out = run_round(home, "v0001", RoundConfig(**gentle), sessions=sessions, data_dir=root)
    weights = out.comparison["corrections_weights_only"]["polarity"]
    with_memory = out.comparison["corrections"]["counts"]["polarity"]
    keys = out.comparison["edit_memory"]["polarity"]["keys"]
    assert weights["right_new"] < 12 and keys > 0 and with_memory["right_new"] >= weights["right_new"] + keys
    model, tok, _, _ = load_checkpoint(Registry(home).path_of(out.version))
    assert len(model.memory["polarity"]) == keys == Registry(home).get(out.version).extra["edit_memory"]["polarity"]
    off = run_round(home, "v0001", RoundConfig(**gentle, edit_memory=False), sessions=sessions, data_dir=root)
    assert off.comparison["edit_memory"] == {}
    assert off.comparison["corrections"]["counts"]["polarity"]["right_new"] == weights["right_new"]
