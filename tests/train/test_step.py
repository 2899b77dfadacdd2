"""train/step.py: a joint step's forward pass per task gives the same update as one pass over the concatenated,
padded batch; the split is chosen when padding would waste work."""

from __future__ import annotations

import pytest
import torch

from mtl_core.model.modeling import ModelConfig
from mtl_core.train.step import collate_task, split_pays, step
from mtl_core.train.weighting import LossWeighting
from tests.helpers.toy import make_tiny_encoder_dir, write_toy_tasks


def _batch(rows: int, width: int) -> dict:
    return {"input_ids": torch.ones(rows, width, dtype=torch.long)}


def test_split_pays_only_when_padding_wastes_work_on_a_cpu():
    assert not split_pays({"a": _batch(5, 20)}, "cpu")  # one task: nothing to split
    assert not split_pays({"a": _batch(5, 20), "b": _batch(5, 22)}, "cpu")  # similar widths: one pass
    assert split_pays({"a": _batch(5, 128), "b": _batch(5, 20)}, "cpu")  # 1280 padded vs 740 real tokens
    assert not split_pays({"a": _batch(5, 128), "b": _batch(5, 20)}, "cuda")  # launch-bound there
    assert split_pays({"a": _batch(4, 10), "b": _batch(4, 30)}, "cpu")  # 240 padded / 160 real = 1.5
    assert not split_pays({"a": _batch(4, 24), "b": _batch(4, 30)}, "cpu")  # 240 / 216 = 1.11


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_step")
    return write_toy_tasks(root), make_tiny_encoder_dir(root / "enc")


@pytest.mark.parametrize("mmoe", [0, 2])
@pytest.mark.parametrize("weighting", ["equal", "uncertainty"])
def test_per_task_passes_give_the_one_pass_update(toy, tmp_path, mmoe, weighting):
    from transformers import AutoTokenizer

    from mtl_core.model.features import featurize
    from mtl_core.model.modeling import build_model
    from mtl_core.train.pipeline import prepare

    task_file, enc = toy
    tf, prepared = prepare(task_file, home=tmp_path)
    tok = AutoTokenizer.from_pretrained(enc)
    specs = tf.tasks
    batches = {s.name: collate_task(featurize(s, prepared[s.name]["train"][2 * i: 2 * i + 3 + i], tok, 32), s.kind,
                                    tok.pad_token_id, len(s.tag_names) if s.kind == "token_classification"
                                    else len(s.labels)) for i, s in enumerate(specs)}
    assert len({b["input_ids"].shape[1] for b in batches.values()}) > 1  # the widths differ: padding matters
    kinds = {s.name: s.kind for s in specs}
    torch.manual_seed(0)
    base = build_model(specs, ModelConfig(encoder=str(enc), max_length=32, mmoe_experts=mmoe))
    grads, losses = {}, {}
    for split in (False, True):
        model = build_model(specs, ModelConfig(encoder=str(enc), max_length=32, mmoe_experts=mmoe))
        model.load_state_dict(base.state_dict())
        model.eval()  # dropout off: both paths see the same function
        w = LossWeighting(weighting, specs)
        params = [p for p in model.parameters() if p.requires_grad] + list(w.parameters())
        opt = torch.optim.SGD(params, lr=0.0)  # lr 0: the step leaves .grad to compare
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _s: 1.0)
        losses[split] = step(model, w, opt, sched, batches, kinds, torch.device("cpu"), None, split=split)
        grads[split] = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)
    assert grads[True].keys() == grads[False].keys() and grads[True]
    for k, g in grads[False].items():
        torch.testing.assert_close(grads[True][k], g, atol=1e-6, rtol=1e-4, msg=k)
