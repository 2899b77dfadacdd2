"""One optimizer step of the training loop: draw the step's batches, run the shared encoder over them (once over
all rows, or per task where padding to the widest task would waste work, and always per task for a Jacobian
aggregator), combine the task losses (a loss weighting, or an aggregator: aggregators.py), update."""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from mtl_core.model.features import collate
from mtl_core.train.aggregators import JointCombiner
from mtl_core.train.distill import soft_loss, soft_targets, soft_weights
from mtl_core.train.keep_general import KeepGeneral
from mtl_core.train.losses import head_crf, task_loss

BATCHINGS = ("per_task", "mixed", "all")
# one pass over the concatenated rows pads every task to the widest; past this many padded tokens per real one,
# a pass per task is cheaper on a CPU (the default budget's joint batch, 6 tasks x 5 rows, 128 tokens: 1.69 -> 0.64 s
# a step, bench/speed/aggregator_cost.py). On CUDA one wide pass stays: six small passes are launch-bound there.
SPLIT_WASTE = 1.25


def collate_task(features: list, kind: str, pad_id: int, n_out: int) -> dict[str, torch.Tensor]:
    batch = collate(features, kind, pad_id)
    soft = soft_targets(features, kind, n_out, batch["input_ids"].shape[1])
    if soft is not None:
        batch["soft"] = soft
        weights = soft_weights(features)
        if weights is not None:
            batch["soft_w"] = weights
    return batch


def draw(sampler, stream, batching: str, batch_size: int) -> dict[str, list]:
    """per_task: one task's batch. mixed: tasks drawn per batch slice, then grouped by task.
    all: every task, batch_size / n_tasks rows each (what Jacobian aggregators need: all tasks every step)."""
    if batching == "per_task":
        name = sampler.next()
        return {name: stream.next(name)}
    if batching == "all":
        share = max(1, batch_size // len(sampler.names))
        return {n: stream.next(n)[:share] for n in sampler.names}
    slices = defaultdict(int)
    for _ in range(4):  # 4 slices of batch_size/4 keep per-task length bucketing useful
        slices[sampler.next()] += 1
    return {n: stream.next(n)[: max(1, batch_size * k // 4)] for n, k in slices.items()}


def concat_inputs(batches: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every task's rows in one batch, padded to the widest: ids, mask, shape ids, each (B, T)."""
    names = list(batches)
    width = max(b["input_ids"].shape[1] for b in batches.values())
    return tuple(torch.cat([nn.functional.pad(_get(batches[n], key), (0, width - batches[n]["input_ids"].shape[1]))
                            for n in names]) for key in ("input_ids", "attention_mask", "shape_ids"))


def task_losses(model, logits: dict, batches: dict, kinds: dict, device) -> dict[str, torch.Tensor]:
    """Each task's loss on its own rows of the concatenated batch (rows in `batches` order)."""
    losses, row = {}, 0
    for n in batches:
        labels = batches[n]["labels"].to(device)
        rows = slice(row, row + labels.shape[0])
        row += labels.shape[0]
        out = logits[n][rows]
        if kinds[n] == "token_classification":
            out = out[:, : labels.shape[1]]
        soft = batches[n].get("soft")
        losses[n] = soft_loss(kinds[n], out, soft.to(device), labels, batches[n].get("soft_w")) if soft is not None else \
            task_loss(kinds[n], out, labels, head_crf(model, n))
    return losses


def split_pays(batches: dict, device) -> bool:
    """Whether a forward pass per task beats one over the concatenated batch (see SPLIT_WASTE)."""
    if len(batches) < 2 or torch.device(device).type == "cuda":
        return False
    widths = [(b["input_ids"].shape[0], b["input_ids"].shape[1]) for b in batches.values()]
    padded = sum(r for r, _ in widths) * max(w for _, w in widths)
    return padded > SPLIT_WASTE * sum(r * w for r, w in widths)


def step(model, weighting, opt, sched, batches: dict, kinds: dict, device, clip, dist=None,
         combiner: JointCombiner | None = None, split: bool | None = None,
         keep: KeepGeneral | None = None) -> dict[str, float]:
    """One optimizer step; with several tasks, the shared encoder runs once over the concatenated rows, or once
    per task when `split` (default: `split_pays`; never under torchrun, where DDP expects one forward a step).
    `dist` (several processes): each loss is this rank's part of the global one; the values returned are global.
    `combiner`: the tasks' gradients on the shared encoder are aggregated (aggregators.py) instead of summed;
    each task's rows then run on their own (`per_task_losses`).
    `keep`: its relational term (keep_general.py) joins the weighted sum of the task losses."""
    names, observed = list(batches), {}
    opt.zero_grad(set_to_none=True)
    if combiner is not None:
        losses = per_task_losses(model, batches, kinds, device)
        combiner.backward(losses, *_param_split(model, names))
    else:
        split = split_pays(batches, device) if split is None else split
        extra: list[torch.Tensor] = []  # the keep-general term, filled by the forward(s) when `keep`
        losses = per_task_losses(model, batches, kinds, device, keep, extra) if split and dist is None else \
            _joint_losses(model, batches, kinds, device, keep, extra)
        losses, observed = dist.combine(losses) if dist else (losses, {})
        total = sum(weighting(n, raw, observed.get(n)) for n, raw in losses.items()) + sum(extra)
        total.backward()
        if dist is not None:
            dist.sync_grads(weighting)  # parameters outside DDP: the learnt loss weights
    if clip:
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], clip)
    opt.step()
    sched.step()
    if combiner is not None and not combiner.needs_jacobian:  # FAMO: the same batch's losses after the step
        with torch.no_grad():
            combiner.after_step(per_task_losses(model, batches, kinds, device))
    return observed or {n: float(raw.detach()) for n, raw in losses.items()}


def _joint_losses(model, batches: dict, kinds: dict, device, keep: KeepGeneral | None = None,
                  extra: list | None = None) -> dict[str, torch.Tensor]:
    ids, mask, shapes = (t.to(device) for t in concat_inputs(batches))
    return task_losses(model, _forward(model, ids, mask, shapes, list(batches), device, keep, extra), batches,
                       kinds, device)


def _forward(model, ids, mask, shapes, names: list[str], device, keep: KeepGeneral | None, extra: list | None):
    """The heads' logits; with `keep`, its term for these rows is appended to `extra`."""
    with _amp(device):
        out = model(input_ids=ids, attention_mask=mask, tasks=names, shape_ids=shapes,
                    output_hidden_states=keep is not None)
        if keep is not None:
            extra.append(keep.loss(out.hidden_states, mask))
    return out.logits


def per_task_losses(model, batches: dict, kinds: dict, device, keep: KeepGeneral | None = None,
                    extra: list | None = None) -> dict[str, torch.Tensor]:
    """Each task's loss from a forward pass over its own rows alone. The tasks' graphs are then separate, so a
    task's backward runs over its own rows only: the per-task Jacobian a combiner needs costs about one summed
    backward, where a backward per task through the concatenated batch cost n (measured 5.4x faster for the six
    tasks on CPU; bench/speed/aggregator_cost.py)."""
    out = {}
    for n, batch in batches.items():
        ids, mask, shapes = (t.to(device) for t in concat_inputs({n: batch}))
        logits = _forward(model, ids, mask, shapes, [n], device, keep, extra)
        out[n] = task_losses(model, logits, {n: batch}, kinds, device)[n]
    return out


def _param_split(model, names: list[str]) -> tuple[list, dict[str, list]]:
    """(the shared encoder's trainable parameters, task -> its head's and private layers' trainable ones).

    MMoE (model/mmoe.py): a task's gate is its own. The experts are shared by every task but are not part of
    the encoder the aggregator works on; they are listed with every task, so their gradient is the sum of the
    tasks' gradients, as with a plain summed loss."""
    shared = [p for p in model.encoder.parameters() if p.requires_grad]
    mmoe = getattr(model, "mmoe", None)
    gates = mmoe.gates if mmoe is not None else {}
    experts = [p for p in mmoe.experts.parameters() if p.requires_grad] if mmoe is not None else []
    modules = {n: [model.heads[n]] + ([model.private[n]] if n in model.private else [])
               + ([gates[n]] if n in gates else []) for n in names}
    per_task = {n: [p for m in ms for p in m.parameters() if p.requires_grad] + (experts if n in gates else [])
                for n, ms in modules.items()}
    return shared, per_task


def _get(batch: dict, key: str) -> torch.Tensor:
    return batch[key] if key in batch else torch.zeros_like(batch["input_ids"])  # sentence tasks: no shape ids


def _amp(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)
