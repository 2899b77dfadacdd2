"""Predictor: every task from one batched forward pass of the shared encoder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from mtl_core.model.applicability import pieces, represent
from mtl_core.model.checkpoint import load_checkpoint
from mtl_core.model.decoding import decode_task, task_thresholds
from mtl_core.model.device import device_name, pick_device
from mtl_core.model.encoding import EncodedBatch, encode_texts
from mtl_core.serve import fewshot
from mtl_core.serve.quantize import quantize_dynamic
from mtl_core.types import Prediction

if TYPE_CHECKING:  # annotations only: no import cost or cycle at run time
    from transformers import PreTrainedTokenizerBase

    from mtl_core.model.modeling import MultiTaskModel
    from mtl_core.tasks import TaskFile

MAX_CHARS = 1_000_000  # refuse absurd inputs before the tokenizer spends seconds on them


class Predictor:
    """Loads a checkpoint once; `predict` answers every task for a list of texts."""

    def __init__(self, model: MultiTaskModel, tokenizer: PreTrainedTokenizerBase, task_file: TaskFile, meta: dict | None = None, device: str | None = None,
                 version: str | None = None, quantize: bool = False):
        self.device = pick_device(device)
        if quantize:
            model = quantize_dynamic(model, tokenizer)
            self.device = torch.device("cpu")
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.task_file = task_file
        self.meta = meta or {}
        self.version = version
        self.quantized = quantize
        self.max_length = model.config.max_length
        self.last_latency_ms = 0.0
        self.fewshot: dict[str, fewshot.FewShotHead] = {}  # new tasks' heads on this version's encoder
        self._fewshot_stamp: tuple | None = None

    @classmethod
    def from_dir(cls, path: str | Path, device: str | None = None, version: str | None = None,
                 quantize: bool = False) -> Predictor:
        model, tok, task_file, meta = load_checkpoint(path)
        return cls(model, tok, task_file, meta, device=device, version=version, quantize=quantize)

    @property
    def task_names(self) -> list[str]:
        return self.model.task_names

    @property
    def device_label(self) -> str:
        return device_name(self.device)

    def refresh_fewshot(self, home: str | Path | None, tasks: set[str]) -> None:
        """(Re)load the few-shot heads of `tasks` fitted on this version, when their files changed; cheap."""
        stamp = (fewshot.heads_stamp(home), tuple(sorted(tasks)))
        if stamp != self._fewshot_stamp:
            self.fewshot = fewshot.load_heads(home, self.version, tasks - set(self.task_names))
            self._fewshot_stamp = stamp

    @property
    def answered_tasks(self) -> dict[str, str]:
        """task -> kind of every task `predict` answers: the model's heads, then the few-shot heads."""
        return {**{n: self.model.tasks[n].kind for n in self.task_names}, **{n: h.kind for n, h in self.fewshot.items()}}

    @property
    def fewshot_key(self) -> tuple:
        """Changes whenever the few-shot heads do (part of cached predictions' keys)."""
        return self._fewshot_stamp or ()

    def encode(self, texts: list[str]) -> EncodedBatch:
        _check_texts(texts)
        return encode_texts(self.tokenizer, texts, self.max_length)

    @torch.inference_mode()
    def logits(self, batch: EncodedBatch, with_attention: bool = False):
        """Raw head outputs for one encoded batch: one encoder forward for all tasks."""
        self.model.set_attention(eager=with_attention)
        ids = batch.input_ids.to(self.device)
        mask = batch.attention_mask.to(self.device)
        with _autocast(self.device):
            out = self.model(input_ids=ids, attention_mask=mask, output_attentions=with_attention,
                             shape_ids=_on(batch.shape_ids, self.device),
                             output_hidden_states=_wants_states(self.model) or self._fewshot_layers())
        return out

    def predict(self, texts: list[str] | str, with_attention: bool = False, batch_size: int = 64) -> list[Prediction]:
        """Every task for every text; texts are length-bucketed so short ones are not padded to long ones."""
        if isinstance(texts, str):
            texts = [texts]
        _check_texts(texts)
        started = time.perf_counter()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: list[Prediction | None] = [None] * len(texts)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            for i, pred in zip(idx, self._predict_batch([texts[i] for i in idx], with_attention)):
                results[i] = pred
        self.last_latency_ms = (time.perf_counter() - started) * 1000
        return results  # type: ignore[return-value]

    def _fewshot_layers(self) -> bool:
        return any(h.representation != "pooled" for h in self.fewshot.values())

    @torch.inference_mode()
    def features(self, texts: list[str], representation: str, batch_size: int = 64) -> np.ndarray:
        """(N, D) few-shot features (`serve/fewshot.py`) from the same forward `predict` runs."""
        _check_texts(texts)
        self.model.set_attention(eager=False)
        out = []
        for start in range(0, len(texts), batch_size):
            batch = self.encode(texts[start:start + batch_size])
            with _autocast(self.device):
                res = self.model(input_ids=batch.input_ids.to(self.device),
                                 attention_mask=batch.attention_mask.to(self.device),
                                 shape_ids=_on(batch.shape_ids, self.device),
                                 output_hidden_states=representation != "pooled")
            out.append(fewshot.features_from_output(res, batch.attention_mask, representation))
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)

    @torch.inference_mode()
    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(N, H) unit-length sentence vectors from the shared encoder, pooled as the sentence heads pool it:
        cosine similarity is a dot product (near-duplicates for bulk labelling)."""
        from mtl_core.model.modeling import pool

        _check_texts(texts)
        self.model.set_attention(eager=False)
        out = []
        for start in range(0, len(texts), batch_size):
            batch = self.encode(texts[start:start + batch_size])
            ids, mask = batch.input_ids.to(self.device), batch.attention_mask.to(self.device)
            with _autocast(self.device):
                states = self.model.encoder(input_ids=ids, attention_mask=mask, return_dict=True).last_hidden_state
            vectors = pool(states.float(), mask, self.model.config.pooling)
            out.append(torch.nn.functional.normalize(vectors, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)

    def _predict_batch(self, texts: list[str], with_attention: bool) -> list[Prediction]:
        batch = self.encode(texts)
        out = self.logits(batch, with_attention)
        logits = {name: t.float().cpu().numpy() for name, t in out.logits.items()}
        attn = _stack_attention(out.attentions) if with_attention else None
        crf = {name: self.model.crf_scores(name) for name in self.task_names
               if self.model.tasks[name].kind == "token_classification"}
        thr = {name: task_thresholds(self.model, self.model.tasks[name]) for name in self.task_names}  # multi-label
        answers = [{name: decode_task(self.model.tasks[name], logits[name][row], batch, row, text, crf.get(name),
                                      thr[name])
                    for name in self.task_names} for row, text in enumerate(texts)]
        _add_fewshot(self.fewshot, out, batch, answers)
        applies = _applicability(self.model, out, batch, texts, answers)
        preds = []
        for row, (text, tasks) in enumerate(zip(texts, answers)):
            n = batch.lengths[row]
            preds.append(Prediction(
                text=text, tasks=tasks, n_tokens=batch.full_lengths[row], truncated=batch.truncated[row],
                tokens=batch.tokens[row], offsets=batch.offsets[row],
                attentions=None if attn is None else attn[row, :, :, :n, :n].copy(), applies=applies[row],
            ))
        return preds


def _add_fewshot(heads: dict, out, batch: EncodedBatch, answers: list[dict]) -> None:
    """New tasks' answers from the forward just run (no second pass), added to each text's answers."""
    feats: dict[str, np.ndarray] = {}
    for task, head in heads.items():
        if head.representation not in feats:
            feats[head.representation] = fewshot.features_from_output(out, batch.attention_mask,
                                                                       head.representation)
        for row, answer in zip(answers, fewshot.answers(head, feats[head.representation])):
            row[task] = answer


def _on(t: torch.Tensor | None, device) -> torch.Tensor | None:
    return None if t is None else t.to(device)


def _wants_states(model) -> bool:
    """Keep every shared layer's states when the model's applicability pools some (no second forward)."""
    return bool(getattr(getattr(model, "applicability", None), "layers", None))


def _applicability(model, out, batch: EncodedBatch, texts: list[str], answers: list[dict]) -> list[dict[str, float]]:
    """Per text, task -> probability that it applies, from the same forward's states and input word pieces
    (model/applicability.py); empty dicts (unknown) for a model without applicability."""
    fitted = getattr(model, "applicability", None)
    if fitted is None:
        return [{} for _ in texts]
    rep = represent(getattr(out, "hidden_states", None), getattr(out, "pooled", None), batch.attention_mask,
                    fitted.layers)
    ids = pieces(batch.input_ids, batch.attention_mask) if fitted.buckets else None
    return fitted.score(rep, texts, answers, ids)


def _check_texts(texts) -> None:
    for t in texts:
        if not isinstance(t, str):
            raise TypeError(f"predict() takes strings, got {type(t).__name__}")
        if len(t) > MAX_CHARS:
            raise ValueError(f"text of {len(t):,} characters is over the {MAX_CHARS:,} limit")


def _stack_attention(attentions) -> np.ndarray:
    # tuple of L tensors (B, A, T, T) -> (B, L, A, T, T)
    return torch.stack([a.float() for a in attentions], dim=1).cpu().numpy()


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


class NoModelError(RuntimeError):
    """The workspace has no usable model version yet."""


def load_active_predictor(home: str | Path | None = None, device: str | None = None,
                          quantize: bool = False) -> Predictor:
    """The active version's Predictor; if its checkpoint is broken, the newest version that loads.

    The returned predictor's `.meta["fallback_from"]` names a broken active version, so the UI can warn.
    """
    from mtl_core.model.checkpoint import CheckpointError
    from mtl_core.model.registry import Registry

    reg = Registry(home)
    active = reg.active
    if active is None:
        raise NoModelError(
            f"no trained model in {reg.home}: run `python -m mtl_core train` (or `--quick`) first"
        )
    candidates = [active] + [v.id for v in reversed(reg.versions()) if v.id != active]
    errors = []
    for version in candidates:
        try:
            pred = Predictor.from_dir(reg.path_of(version), device=device, version=version, quantize=quantize)
        except CheckpointError as exc:
            errors.append(f"{version}: {exc}")
            continue
        if version != active:
            pred.meta["fallback_from"] = active
            pred.meta["fallback_errors"] = errors
        return pred
    raise NoModelError("no model version could be loaded: " + "; ".join(errors))


def load_version_predictor(home: str | Path | None, version: str | None) -> Predictor:
    """The active version's Predictor (with its fallback) when `version` is None or active, else that version's."""
    from mtl_core.model.registry import Registry

    reg = Registry(home)
    if version is None or version == reg.active:
        return load_active_predictor(reg.home)
    reg.get(version)  # KeyError naming the version when it does not exist
    return Predictor.from_dir(reg.path_of(version), version=version)
