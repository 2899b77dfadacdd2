"""Per-task LoRA adapters on a frozen shared encoder (peft): the least-shared end of the lab's sharing options.

Every task gets its own LoRA adapter (rank r on the attention query/value projections) on the same frozen
pretrained encoder; only the adapters and the heads train. A forward for one task activates that task's
adapter; a forward for several runs the encoder once per task (so it is a lab strategy, not the served model's
architecture, which answers every task from one encoder pass). Training uses one task per step
(`batching="per_task"`), where each step's forward is for a single task.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from mtl_core.model.modeling import MultiTaskModel, MultiTaskOutput

TARGETS = ["query", "value"]  # BERT-style attention projections (MiniLM); peft matches module names by suffix


class PerTaskAdapters(MultiTaskModel):
    """A MultiTaskModel whose encoder is a peft model with one adapter per task (made by `with_task_adapters`)."""

    def forward(self, *args, tasks: list[str] | None = None, **kwargs) -> MultiTaskOutput:
        tasks = list(tasks or self.task_names)
        if len(tasks) == 1:
            self.encoder.set_adapter(tasks[0])  # peft: that adapter active (and trainable), the others not
            return super().forward(*args, tasks=tasks, **kwargs)
        outs = [self.forward(*args, tasks=[t], **kwargs) for t in tasks]
        logits = {t: o.logits[t] for t, o in zip(tasks, outs, strict=True)}
        return replace(outs[0], logits=logits)


def with_task_adapters(model: MultiTaskModel, rank: int) -> PerTaskAdapters:
    """Give every task of `model` a LoRA adapter of `rank` on its encoder; the encoder's own weights freeze."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=TARGETS)
    names = model.task_names
    peft = get_peft_model(model.encoder, config, adapter_name=names[0])
    for name in names[1:]:
        peft.add_adapter(name, config)
    for pname, p in peft.named_parameters():
        # every adapter trainable when the optimizer is built; a step's backward reaches only the active one
        p.requires_grad_("lora_" in pname)
    model.encoder = peft
    model.__class__ = PerTaskAdapters
    return model


def adapter_parameters(model: torch.nn.Module, task: str) -> list[torch.nn.Parameter]:
    """The LoRA parameters of one task's adapter (tests and diagnostics)."""
    return [p for n, p in model.encoder.named_parameters() if "lora_" in n and n.endswith(f".{task}.weight")]
