"""Distilled replay: soft targets from the model itself, and a loss that leaves a teacher-matching model still."""

from __future__ import annotations

import torch

from mtl_core.model.checkpoint import load_checkpoint
from mtl_core.model.features import IGNORE, Feature, featurize
from mtl_core.train.distill import attach_teacher_targets, soft_loss, soft_targets


def _tiny(tiny_checkpoint):
    model, tok, task_file, _ = load_checkpoint(tiny_checkpoint)
    return model.eval(), tok, {t.name: t for t in task_file.tasks}


def _feats(spec, tok, texts, label=None, words=None):
    from mtl_core.data.examples import Example

    if spec.kind == "token_classification":
        exs = [Example(t, words=t.split(), tags=["O"] * len(t.split())) for t in texts]
    else:
        exs = [Example(t, label=label) for t in texts]
    return featurize(spec, exs, tok, 32)


TEXTS = ["a quiet film about nothing", "Paris in spring", "what is the capital of peru ?", "win a free prize now"]


def test_blend_one_is_the_models_own_answer_and_zero_is_gold(tiny_checkpoint):
    model, tok, specs = _tiny(tiny_checkpoint)
    spec = specs["sentiment"]
    feats = _feats(spec, tok, TEXTS, label="positive")
    assert attach_teacher_targets(model, "sentiment", spec.kind, feats, [True, True, False, True], 1.0, 0, "cpu", 2) == 3
    with torch.no_grad():
        ids = torch.tensor([feats[0].input_ids])
        probs = model(input_ids=ids, attention_mask=torch.ones_like(ids), tasks=["sentiment"]).logits["sentiment"].softmax(-1)
    assert torch.allclose(torch.tensor(feats[0].soft), probs[0], atol=1e-5)
    assert feats[2].soft is None
    gold = _feats(spec, tok, TEXTS[:1], label="positive")
    attach_teacher_targets(model, "sentiment", spec.kind, gold, [True], 0.0, 0, "cpu", 2)
    assert gold[0].soft is None  # blend 0 = plain gold labels: nothing attached
    attach_teacher_targets(model, "sentiment", spec.kind, gold, [True], 0.5, 0, "cpu", 2)
    assert abs(sum(gold[0].soft) - 1) < 1e-5 and gold[0].soft[1] >= 0.5  # half one-hot "positive"


def test_token_targets_are_distributions_on_labelled_pieces(tiny_checkpoint):
    model, tok, specs = _tiny(tiny_checkpoint)
    spec = specs["ner"]
    feats = _feats(spec, tok, TEXTS)
    attach_teacher_targets(model, "ner", spec.kind, feats, [True] * 4, 0.7, 0, "cpu", len(spec.tag_names))
    width = max(len(f.input_ids) for f in feats)
    targets = soft_targets(feats, spec.kind, len(spec.tag_names), width)
    assert targets.shape == (4, width, len(spec.tag_names))
    for i, f in enumerate(feats):
        for j, lab in enumerate(f.label):
            if lab != IGNORE:
                assert abs(float(targets[i, j].sum()) - 1) < 1e-5


def test_rows_without_soft_target_get_their_gold_one_hot():
    feats = [Feature([1, 2], 1, soft=[0.3, 0.7]), Feature([1, 2, 3], 0)]
    t = soft_targets(feats, "classification", 2, 3)
    assert torch.allclose(t, torch.tensor([[0.3, 0.7], [1.0, 0.0]]))
    assert soft_targets([Feature([1], 0)], "classification", 2, 1) is None
    reg = soft_targets([Feature([1], 0.5, soft=0.1), Feature([1], -0.2)], "regression", 1, 1)
    assert torch.allclose(reg, torch.tensor([0.1, -0.2]))


def test_matching_the_teacher_is_a_stationary_point():
    logits = torch.randn(5, 3, requires_grad=True)
    target = logits.detach().softmax(-1)
    soft_loss("classification", logits, target, torch.zeros(5, dtype=torch.long)).backward()
    assert logits.grad.abs().max() < 1e-6
    tok_logits = torch.randn(2, 4, 3, requires_grad=True)
    labels = torch.tensor([[0, IGNORE, 1, 2], [IGNORE, 0, 0, IGNORE]])
    soft_loss("token_classification", tok_logits, tok_logits.detach().softmax(-1), labels).backward()
    assert tok_logits.grad.abs().max() < 1e-6


def test_distill_bounds_are_checked():
    import pytest

    from mtl_core.rounds.finetune import RoundConfig
    from mtl_core.train.loop import TrainConfig

    with pytest.raises(ValueError, match="distill"):
        TrainConfig(distill=1.5)
    with pytest.raises(ValueError, match="distill"):
        RoundConfig(distill=-0.1)
    with pytest.raises(ValueError, match="distill_focal"):
        RoundConfig(distill_focal=-1)
    with pytest.raises(ValueError, match="distill_focal"):
        TrainConfig(distill_focal=1000)


def test_focal_weighs_the_teachers_right_answers_more(tiny_checkpoint):
    model, tok, specs = _tiny(tiny_checkpoint)
    spec = specs["sentiment"]
    feats = _feats(spec, tok, TEXTS, label="positive")
    attach_teacher_targets(model, "sentiment", spec.kind, feats, [True] * 4, 1.0, 0, "cpu", 2, focal=4.0)
    for f in feats:  # the teacher's own argmax decides "right", the weight follows it
        right = max(range(2), key=lambda i: f.soft[i]) == f.label
        assert f.soft_weight == (5.0 if right else 1.0)
    reg = specs["sentiment_score"]
    rfeats = _feats(reg, tok, TEXTS, label=0.0)
    attach_teacher_targets(model, "sentiment_score", reg.kind, rfeats, [True] * 4, 1.0, 0, "cpu", 1, focal=2.0,
                           tolerance=10.0)  # every value within a wide tolerance: all right
    assert [f.soft_weight for f in rfeats] == [3.0] * 4
    plain = _feats(spec, tok, TEXTS, label="positive")
    attach_teacher_targets(model, "sentiment", spec.kind, plain, [True] * 4, 1.0, 0, "cpu", 2)
    assert {f.soft_weight for f in plain} == {1.0}  # focal 0: no weights


def test_row_weights_scale_each_rows_loss():
    from mtl_core.train.distill import soft_weights

    logits = torch.randn(2, 3)
    target = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    per_row = [float(soft_loss("classification", logits[i:i + 1], target[i:i + 1], torch.zeros(1))) for i in range(2)]
    weighted = float(soft_loss("classification", logits, target, torch.zeros(2), torch.tensor([3.0, 1.0])))
    assert abs(weighted - (3 * per_row[0] + per_row[1]) / 2) < 1e-5
    tok = torch.randn(2, 3, 4)
    labels = torch.tensor([[0, 1, IGNORE], [2, IGNORE, IGNORE]])
    soft = tok.softmax(-1).roll(1, -1)
    ones = float(soft_loss("token_classification", tok, soft, labels, torch.ones(2)))
    assert abs(ones - float(soft_loss("token_classification", tok, soft, labels))) < 1e-6
    assert soft_weights([Feature([1], 0), Feature([1], 1)]) is None
    assert soft_weights([Feature([1], 0, soft_weight=2.0), Feature([1], 1)]).tolist() == [2.0, 1.0]


def test_a_batch_carries_its_row_weights_into_the_task_loss():
    from mtl_core.train.step import collate_task, task_losses

    feats = [Feature([101, 7, 102], 0, soft=[0.9, 0.1], soft_weight=3.0), Feature([101, 8, 102], 1)]
    batch = collate_task(feats, "classification", 0, 2)
    assert batch["soft_w"].tolist() == [3.0, 1.0]
    logits = {"t": torch.tensor([[0.0, 1.0], [1.0, 0.0]])}
    weighted = float(task_losses(None, logits, {"t": batch}, {"t": "classification"}, "cpu")["t"])
    del batch["soft_w"]
    plain = float(task_losses(None, logits, {"t": batch}, {"t": "classification"}, "cpu")["t"])
    rows = -(torch.tensor([[0.9, 0.1], [0.0, 1.0]]) * logits["t"].log_softmax(-1)).sum(-1)
    assert abs(weighted - float((rows * torch.tensor([3.0, 1.0])).mean())) < 1e-5
    assert abs(plain - float(rows.mean())) < 1e-5


def test_teacher_right_follows_the_evaluations_rule_for_every_kind():
    from mtl_core.tasks import MULTILABEL, TaskSpec
    from mtl_core.train.distill import _teacher_right, normalised_tolerance

    assert _teacher_right("classification", Feature([1], 1), torch.tensor([0.1, 2.0]), 0.0)
    assert not _teacher_right("classification", Feature([1], 0), torch.tensor([0.1, 2.0]), 0.0)
    assert _teacher_right("regression", Feature([1], 0.5), torch.tensor([0.7]), 0.25)
    assert not _teacher_right("regression", Feature([1], 0.5), torch.tensor([0.8]), 0.25)
    tags = torch.tensor([[3.0, 0, 0], [0, 0, 0], [0, 3.0, 0]])  # piece 1 is ignored: its argmax does not count
    assert _teacher_right("token_classification", Feature([1, 2, 3], [0, IGNORE, 1]), tags, 0.0)
    assert not _teacher_right("token_classification", Feature([1, 2, 3], [0, IGNORE, 2]), tags, 0.0)
    assert _teacher_right(MULTILABEL, Feature([1], [1.0, 0.0, 1.0]), torch.tensor([2.0, -1.0, 0.5]), 0.0)
    assert not _teacher_right(MULTILABEL, Feature([1], [1.0, 0.0, 0.0]), torch.tensor([2.0, -1.0, 0.5]), 0.0)
    score = TaskSpec("s", "regression", value_range=(-4.0, 4.0))
    assert normalised_tolerance(score) == 0.25  # 1.0 on a -4..4 scale, in the head's -1..1 units
    assert normalised_tolerance(TaskSpec("c", "classification", ["a", "b"])) == 0.0
