"""A joined task's new head is fitted on the frozen encoder before the round trains them together.

Linear probing then fine-tuning ("LP-FT", Kumar et al. 2022): a randomly initialised head trained jointly with
the encoder for ~100 steps sends large, random gradients into the shared encoder and barely learns itself
(measured: a held-out question_type joined from 48 labels fell to 0.25 test accuracy, against 0.56 for its
few-shot head; docs/RESULTS.md, "Few-shot new tasks"). So each new sentence head first learns alone on the
base encoder's head inputs for its training examples (one forward, then full-batch Adam on the head only:
~1 s on two CPU cores for a few hundred examples). Token heads keep their random start.
"""

from __future__ import annotations

import torch

from mtl_core.data.examples import Example
from mtl_core.model.features import collate, featurize, model_inputs
from mtl_core.model.runner import ModelRunner
from mtl_core.tasks import TaskSpec
from mtl_core.train.losses import task_loss

PROBE_STEPS = 300  # full-batch steps; the loss of a few hundred examples levels off well before
PROBE_LR = 1e-3
MAX_PROBE_EXAMPLES = 2000  # a large joined dataset: a sample is enough to start the head


def warm_start_heads(runner: ModelRunner, specs: list[TaskSpec], examples: dict[str, list[Example]],
                     seed: int = 0) -> dict[str, dict[str, float]]:
    """Fit each new sentence head on the frozen encoder; -> task -> {"examples", "loss_before", "loss_after"}."""
    out = {}
    for spec in specs:
        exs = list(examples.get(spec.name) or [])[:MAX_PROBE_EXAMPLES]
        if spec.kind == "token_classification" or not exs:
            continue
        out[spec.name] = _probe(runner, spec, exs, seed)
    return out


def _probe(runner: ModelRunner, spec: TaskSpec, exs: list[Example], seed: int) -> dict[str, float]:
    model = runner.model
    batch = collate(featurize(spec, exs, runner.tokenizer, runner.length_for(spec)), spec.kind, runner.pad_id)
    inputs = model_inputs(batch, runner.device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        reps = [model.represent(inputs["input_ids"][i:i + 64], inputs["attention_mask"][i:i + 64], spec.name)[0]
                for i in range(0, len(exs), 64)]
    rep = torch.cat(reps).detach()  # (N, H) the head's input, from the base encoder
    labels = batch["labels"].to(runner.device)
    head = model.heads[spec.name]
    head.train()
    opt = torch.optim.Adam(head.parameters(), lr=PROBE_LR)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.no_grad():
            before = float(task_loss(spec.kind, head(rep), labels))
        for _ in range(PROBE_STEPS):
            opt.zero_grad()
            loss = task_loss(spec.kind, head(rep), labels)
            loss.backward()
            opt.step()
    model.train(was_training)  # also clears the fused-head cache: a head's weights changed
    return {"examples": len(exs), "loss_before": round(before, 4), "loss_after": round(float(loss.detach()), 4)}
