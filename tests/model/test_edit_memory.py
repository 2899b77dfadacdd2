"""Edit memory: remembered corrections apply to their own (and nearby) inputs only, survive save/load."""

from __future__ import annotations

import shutil

import torch

from mtl_core.data.examples import Example
from mtl_core.eval.compare import predict_answers
from mtl_core.model.checkpoint import load_checkpoint, save_checkpoint
from mtl_core.model.edit_memory import attach_round_memory, build_task_memory, representations
from tests.helpers.runner import cpu_runner

TEXTS = ["a quiet film about nothing much", "the best picture of the year , truly", "a dull and lifeless mess",
         "what is the tallest mountain ?", "call now to claim your prize", "bbc news : markets fall again"]
OTHERS = ["an utterly charming comedy", "boring from start to end", "who wrote hamlet ?", "stocks rise on hopes",
          "i will see you at noon", "a film that will be forgotten", "the cast is superb", "weak plot , weak acting"]


def _model(tiny_checkpoint):
    model, tok, task_file, _ = load_checkpoint(tiny_checkpoint)
    return model.eval(), tok, task_file


def _flipped(model, tok, spec, texts):
    """Examples labelled with a class the model does NOT predict (so each one is a mistake to fix)."""
    answers = predict_answers(cpu_runner(model, tok), spec, [Example(t, label=spec.labels[0]) for t in texts])
    return [Example(t, label=next(lab for lab in spec.labels if lab != a)) for t, a in zip(texts, answers)]


def test_remembered_corrections_apply_and_nothing_else_changes(tiny_checkpoint):
    model, tok, _ = _model(tiny_checkpoint)
    spec = model.tasks["question_type"]
    corrections = _flipped(model, tok, spec, TEXTS)
    refs = [Example(t, label=spec.labels[i % len(spec.labels)]) for i, t in enumerate(OTHERS)]
    before_others = predict_answers(cpu_runner(model, tok), spec, refs)
    memory, stats = build_task_memory(cpu_runner(model, tok), spec, corrections, refs, radius_cap=0.5)
    assert stats["candidates"] == len(TEXTS) and memory is not None
    model.memory["question_type"] = memory
    fixed = predict_answers(cpu_runner(model, tok), spec, corrections)
    kept = [ex.label for ex in corrections]
    assert sum(a == g for a, g in zip(fixed, kept)) >= len(memory) > 0  # every key fixes its own text
    after_others = predict_answers(cpu_runner(model, tok), spec, refs)
    # a reference never lies inside a key's radius when its gold label conflicts with the key
    for ref, gold, old, new in zip(refs, [r.label for r in refs], before_others, after_others):
        if new != old:
            assert new == gold, ref.text


def test_radius_excludes_every_conflicting_reference(tiny_checkpoint):
    model, tok, _ = _model(tiny_checkpoint)
    spec = model.tasks["sentiment"]
    corrections = _flipped(model, tok, spec, TEXTS)
    refs = [Example(t, label=spec.labels[i % 2]) for i, t in enumerate(OTHERS + TEXTS[:2])]
    memory, _ = build_task_memory(cpu_runner(model, tok), spec, corrections, refs, radius_cap=1.0)
    reps, gold, _ = representations(cpu_runner(model, tok), spec, refs)
    dist = 1 - torch.nn.functional.normalize(reps, dim=-1) @ memory.keys.T  # (refs, keys)
    for k in range(len(memory)):
        conflicting = gold != memory.values[k]
        assert (dist[conflicting, k] > memory.radius[k]).all()


def test_ner_memory_works_per_word_and_survives_save_load(tiny_checkpoint, tmp_path):
    model, tok, task_file = _model(tiny_checkpoint)
    spec = model.tasks["ner"]
    words = ["steve", "visited", "the", "louvre", "in", "paris"]
    answer = predict_answers(cpu_runner(model, tok), spec, [Example(" ".join(words), words=words, tags=["O"] * 6)])[0]
    tags = ["B-person", "O", "O", "B-facility", "O", "B-geo-loc"]
    tags = [t if t != a else "B-other" for t, a in zip(tags, answer)]  # every tag differs from the model's
    ex = Example(" ".join(words), words=words, tags=tags)
    others = [Example(t, words=t.split(), tags=["O"] * len(t.split())) for t in OTHERS]
    stats = attach_round_memory(cpu_runner(model, tok), {"ner": [ex]}, {"ner": {"train": others, "distill": [True] * 8,
                                                                     "dev": []}}, 0.5, 100)
    assert stats["ner"]["candidates"] == 6
    got = predict_answers(cpu_runner(model, tok), spec, [ex])[0]
    assert sum(g == t for g, t in zip(got, tags)) == stats["ner"]["keys"] > 0
    out = save_checkpoint(model, tok, task_file, tmp_path / "ckpt")
    again, tok2, _, _ = load_checkpoint(out)
    assert len(again.memory["ner"]) == stats["ner"]["keys"]
    assert predict_answers(cpu_runner(again, tok2), spec, [ex] + others) == predict_answers(cpu_runner(model, tok), spec, [ex] + others)
    shutil.rmtree(out)


def test_regression_memory_sets_the_value(tiny_checkpoint):
    model, tok, _ = _model(tiny_checkpoint)
    spec = model.tasks["sentiment_score"]
    corr = [Example(TEXTS[0], label=3.5)]
    refs = [Example(t, label=-3.0) for t in OTHERS]
    memory, _ = build_task_memory(cpu_runner(model, tok), spec, corr, refs, radius_cap=0.5)
    model.memory["sentiment_score"] = memory
    assert abs(predict_answers(cpu_runner(model, tok), spec, corr)[0] - 3.5) < 1e-3
