"""GradientProbe on a constructed trio of tasks over the same texts with the same head weights: "same" (a's
labels: a step on a helps it exactly as much as a itself) and "anti" (a's labels flipped: a step on a hurts it).
Real MultiTaskModel with the tiny random encoder; seconds on CPU.

Every text is "pos" for a and "same" and "neg" for anti. With two classes the loss gradient on a row's logits is
(p0 - y0) * [1, -1]: p0 > 0 for a, p0 - 1 < 0 for anti, so the encoder gradients are positive combinations of the
same per-row vectors with opposite signs, and cos(a, anti) < 0 whatever the random weights. (With balanced
labels it is not: a random tiny encoder gives nearly the same features to every text, the label-dependent parts
cancel over the batch, and what is left is the head's shared bias, "move p towards 0.5", which both tasks want:
cos(a, anti) came out anywhere in (-1, 0.7) depending on the random encoder.)"""

from __future__ import annotations

import random

import pytest
import torch

from mtl_core.data.examples import Example
from mtl_core.lab.probe import GradientProbe
from mtl_core.lab.results import metric_name
from mtl_core.model.features import featurize
from mtl_core.model.modeling import ModelConfig, build_model
from mtl_core.tasks import TaskSpec
from mtl_core.train.step import collate_task
from tests.helpers.reporting import RecordingReporter
from tests.helpers.toy import BAD, GOOD, make_tiny_encoder_dir

MAX_LEN = 32
RUN = "equal/s0"


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    torch.manual_seed(0)  # the random encoder's weights: the same in every session
    return make_tiny_encoder_dir(tmp_path_factory.mktemp("probe") / "enc")


def _setup(encoder_dir, seed: int = 0):
    from transformers import AutoTokenizer

    torch.manual_seed(seed)
    rng = random.Random(seed)
    rows = [f"the film number {i} was {rng.choice(GOOD + BAD)} indeed" for i in range(8)]
    specs = [TaskSpec(name, "classification", labels=["neg", "pos"]) for name in ("a", "same", "anti")]
    examples = {
        "a": [Example(t, "pos") for t in rows],
        "same": [Example(t, "pos") for t in rows],
        "anti": [Example(t, "neg") for t in rows],
    }
    model = build_model(specs, ModelConfig(encoder=str(encoder_dir), max_length=MAX_LEN))
    for name in ("same", "anti"):
        model.heads[name].load_state_dict(model.heads["a"].state_dict())
    tok = AutoTokenizer.from_pretrained(str(encoder_dir))
    pad = tok.pad_token_id or 0
    batches = {s.name: collate_task(featurize(s, examples[s.name], tok, MAX_LEN), s.kind, pad, len(s.labels))
               for s in specs}
    return model, batches, {s.name: s.kind for s in specs}


@pytest.fixture(scope="module")
def probed(encoder_dir):
    """One probe at step 4 on a model in train mode; -> (probe, reporter, state before, state after, mode)."""
    model, batches, kinds = _setup(encoder_dir)
    model.train()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    reporter = RecordingReporter()
    probe = GradientProbe(model, batches, kinds, torch.device("cpu"), every=4, reporter=reporter, run=RUN)
    probe(4)
    after = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return probe, reporter, before, after, model.training


def test_cosines_of_the_constructed_pairs(probed):
    rec = probed[0].record
    assert rec.steps == [4]
    assert set(rec.pairs) == {"a|same", "a|anti", "same|anti"}
    assert rec.pairs["a|same"][0] == pytest.approx(1.0, abs=1e-5)
    assert rec.pairs["a|anti"][0] < 0 and rec.pairs["same|anti"][0] < 0
    assert rec.pairs["a|anti"][0] == pytest.approx(rec.pairs["same|anti"][0], abs=1e-5)
    # (a, same) agree, (a, anti) and (same, anti) conflict: 2 of the 3 pairs
    assert rec.fraction == [pytest.approx(2 / 3)]


def test_lookahead_affinity_signs(probed):
    z = probed[0].record.affinity()
    names = probed[0].names
    assert names == ["a", "same", "anti"]
    a, same, anti = range(3)
    assert z[a][a] > 0 and z[a][same] > 0 and z[a][anti] < 0
    assert z[a][same] == pytest.approx(z[a][a], abs=1e-6)  # the same loss, the same step
    assert z[anti][anti] > 0 and z[anti][a] < 0
    assert probed[0].record.n_affinity == 1


def test_parameters_and_mode_are_restored_exactly(probed):
    _, _, before, after, training = probed
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == []
    assert training is True


def test_eval_mode_is_restored_too(encoder_dir):
    model, batches, kinds = _setup(encoder_dir, seed=1)
    model.eval()
    GradientProbe(model, batches, kinds, torch.device("cpu"), every=1, affinity=False)(1)
    assert model.training is False and not any(m.training for m in model.modules())


def test_reporter_receives_run_metrics(probed):
    metrics = probed[1].metrics
    by_name = {}
    for step, name, value, task in metrics:
        assert step == 4
        by_name.setdefault(name, {})[task] = value
    assert set(by_name) == {metric_name(RUN, "cos"), metric_name(RUN, "conflict"), metric_name(RUN, "affinity")}
    assert set(by_name[f"{RUN}:cos"]) == {"a|same", "a|anti", "same|anti"}
    assert by_name[f"{RUN}:conflict"] == {None: pytest.approx(2 / 3)}
    assert len(by_name[f"{RUN}:affinity"]) == 9 and by_name[f"{RUN}:affinity"]["a>anti"] < 0
    assert by_name[f"{RUN}:affinity"]["a>same"] > 0


def test_only_every_nth_step_and_affinity_averaged(encoder_dir):
    model, batches, kinds = _setup(encoder_dir, seed=2)
    probe = GradientProbe(model, batches, kinds, torch.device("cpu"), every=3)
    for step in range(1, 7):
        probe(step)
    assert probe.record.steps == [3, 6] and probe.record.n_affinity == 2
    assert len(probe.record.fraction) == 2 and all(len(v) == 2 for v in probe.record.pairs.values())
    total = probe.record.affinity_sum
    assert probe.record.affinity() == [[pytest.approx(v / 2) for v in row] for row in total]
    off = GradientProbe(model, batches, kinds, torch.device("cpu"), every=0)
    off(3)
    assert off.record.steps == [] and off.record.affinity() is None
    conflict_only = GradientProbe(model, batches, kinds, torch.device("cpu"), every=1, affinity=False)
    conflict_only(1)
    assert conflict_only.record.steps == [1] and conflict_only.record.affinity() is None


def test_zero_lookahead_step_gives_zero_affinity(encoder_dir):
    """The "after" losses (no grad, eval) and the "before" ones (with grad) are computed alike: no step, no change."""
    model, batches, kinds = _setup(encoder_dir, seed=3)
    probe = GradientProbe(model, batches, kinds, torch.device("cpu"), every=1, lookahead_lr=0.0)
    probe(1)
    assert probe.record.affinity() == [[pytest.approx(0.0, abs=1e-6)] * 3] * 3
