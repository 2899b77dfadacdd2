"""Predictor: every task from one batched forward pass of the shared encoder."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear  # imported by torch itself anyway

from .checkpoint import load_checkpoint
from .decoding import decode_task
from .encoding import EncodedBatch, encode_texts
from .types import Prediction

MAX_CHARS = 1_000_000  # refuse absurd inputs before the tokenizer spends seconds on them


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"


class Predictor:
    """Loads a checkpoint once; `predict` answers every task for a list of texts."""

    def __init__(self, model, tokenizer, task_file, meta: dict | None = None, device: str | None = None,
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
            out = self.model(input_ids=ids, attention_mask=mask, output_attentions=with_attention)
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

    def _predict_batch(self, texts: list[str], with_attention: bool) -> list[Prediction]:
        batch = self.encode(texts)
        out = self.logits(batch, with_attention)
        logits = {name: t.float().cpu().numpy() for name, t in out.logits.items()}
        attn = _stack_attention(out.attentions) if with_attention else None
        preds = []
        for row, text in enumerate(texts):
            n = batch.lengths[row]
            tasks = {
                name: decode_task(self.model.tasks[name], logits[name][row], batch, row, text)
                for name in self.task_names
            }
            preds.append(Prediction(
                text=text, tasks=tasks, n_tokens=batch.full_lengths[row], truncated=batch.truncated[row],
                tokens=batch.tokens[row], offsets=batch.offsets[row],
                attentions=None if attn is None else attn[row, :, :, :n, :n].copy(),
            ))
        return preds


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


# int8 GEMM back ends, fastest first. The engine only matters when the weights are packed (packed weights
# keep their kernels whatever the global setting is at run time). On x86, "x86" and "fbgemm" pack for fbgemm's
# kernels; "onednn" measured 1.1-1.25x slower at batch 1 here and "qnnpack" (the ARM default) 2.7x slower.
QUANT_ENGINES = ("x86", "fbgemm", "qnnpack")


def quant_engine() -> str:
    """The quantized engine `quantize_dynamic` packs for: the first of QUANT_ENGINES this torch build supports."""
    supported = torch.backends.quantized.supported_engines
    return next((e for e in QUANT_ENGINES if e in supported), torch.backends.quantized.engine)


class Int8Linear(DynamicQuantizedLinear):
    """torch's dynamic int8 Linear with 8-bit activations (`reduce_range=False`: the weights carry the range
    reduction, see `quantize_dynamic`), without the per-call dtype dispatch of torch's Python forward, and
    with optional outlier input channels that bypass the int8 GEMM.

    `outliers` (k,) are input channels whose values dwarf the rest (MiniLM has a handful per layer, on every
    text): quantized with the rest, they would set the per-batch activation scale and leave the other
    channels a few int8 steps. They are zeroed in the input for the int8 GEMM (and restored afterwards: the
    caller's tensor, e.g. a LayerNorm output that is also the residual, comes back unchanged) and added back
    exactly in fp32 from `outlier_weight` (k, out), whose columns are zero in the int8 weights.
    """

    outliers: torch.Tensor | None = None
    outlier_weight: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed = self._packed_params._packed_params
        idx = self.outliers
        if idx is None:
            return torch.ops.quantized.linear_dynamic(x, packed, False)
        if x.requires_grad:  # never in inference; keep autograd's view of x intact all the same
            x = x.clone()
        kept = x.index_select(-1, idx)
        x.index_fill_(-1, idx, 0.0)
        try:
            y = torch.ops.quantized.linear_dynamic(x, packed, False)
        finally:
            x.index_copy_(-1, idx, kept)
        y.view(-1, y.shape[-1]).addmm_(kept.view(-1, idx.numel()), self.outlier_weight)
        return y


# Outlier channels: in an encoder linear whose largest input channel peaks over LAYER_RATIO x the median channel's
# peak (|value| on the calibration texts), the input channels over OUTLIER_RATIO x that median, at most MAX_OUTLIERS
# (the largest). On MiniLM (calibration texts) that picks the first feed-forward linear of every layer and the
# second of layers 0-3 (largest channel 9-27x the median), not the attention projections (3-7x) nor the last two
# layers' second feed-forward (4-6x), where bypassing costs more per call than it saves in error. Found once,
# when quantizing, from one fp32 forward over CALIBRATION_TEXTS: these channels come from the special and
# punctuation tokens every text has, not from what a text says, so a few generic sentences find them.
LAYER_RATIO = 8.0
OUTLIER_RATIO = 4.0
MAX_OUTLIERS = 16
CALIBRATION_TEXTS = (
    "What is the capital of Peru?",
    "I loved this movie, it was wonderful!",
    "terrible service, never again",
    "WINNER!! You have been selected to receive a prize. Call now.",
    "ok see you at 5 then",
    "The stock market fell in London today after the Bank of England raised interest rates again.",
    "Barack Obama met Angela Merkel in Berlin on Tuesday to talk about trade.",
    "@john this is the best pizza in Naples lol #food",
    "How many people live in Tokyo ?",
    "The team won the final 3-1 after extra time, their first title since 1998.",
)


def quantize_dynamic(model, tokenizer=None, engine: str | None = None):
    """A copy of `model` with int8 weights (CPU only) for every nn.Linear of the encoder layers.

    Weights: int8 per output channel, symmetric, in [-64, 63]. Activations: quantized per batch at run
    time to the full 8 bits (0..255). Range reduction sits on the weights, not the activations: without
    VNNI, fbgemm multiplies with vpmaddubsw, which adds pairs of uint8 x int8 products in int16; with
    |w| <= 64 a pair is at most 255 * 128 = 32640, so it can never saturate, while torch's default
    (`reduce_range`: 7-bit activations, 8-bit weights) spends the lost bit on the activations, where nearly
    all of this model's rounding error comes from. With a `tokenizer`, the outlier input channels
    (see `Int8Linear`, `OUTLIER_RATIO`) are found on CALIBRATION_TEXTS and kept in fp32.
    Attention math, LayerNorm and GELU stay float. The task heads stay fp32: they are a sliver of the
    compute, and the last projection is the most sensitive to rounding.
    The weights are packed for `engine` (default `quant_engine()`), whatever the process-wide
    `torch.backends.quantized.engine` says; that setting is restored afterwards. The copy records the
    engine as `.quant_engine` and the outlier channel count per layer as `.quant_outliers`.
    """
    import copy

    engine = engine or quant_engine()
    logging.getLogger("torch").setLevel(logging.ERROR)
    model = copy.deepcopy(model).cpu().eval()
    names = [name for name, m in model.named_modules()
             if isinstance(m, torch.nn.Linear) and name.startswith(("encoder.", "private."))]
    outliers = _outlier_channels(model, tokenizer, names) if tokenizer is not None else {}
    modules = dict(model.named_modules())
    bypass = {}
    for name, idx in outliers.items():
        weight = modules[name].weight.data
        bypass[name] = (idx, weight[:, idx].t().contiguous())
        weight[:, idx] = 0
    qmodel = quantize_linears(model, names, engine)
    qmodules = dict(qmodel.named_modules())
    for name, (idx, weight) in bypass.items():
        qmodules[name].outliers, qmodules[name].outlier_weight = idx, weight
    qmodel.quant_engine = engine
    qmodel.quant_outliers = {name: int(idx.numel()) for name, (idx, _) in bypass.items()}
    return qmodel


def quantize_linears(model, names: list[str], engine: str):
    """Swap the named nn.Linear modules of `model` (in place) for Int8Linear: int8 weights per output channel
    in [-64, 63], packed for `engine`; the process-wide engine setting is restored afterwards."""
    from torch.ao.quantization import QConfig, default_dynamic_quant_observer
    from torch.ao.quantization.observer import PerChannelMinMaxObserver

    weight_observer = PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                                         quant_min=-64, quant_max=63)
    qconfig = QConfig(activation=default_dynamic_quant_observer, weight=weight_observer)
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        with warnings.catch_warnings():  # torch 2.13 flags its quantized tensor types as deprecated (still works)
            warnings.simplefilter("ignore", UserWarning)
            return torch.ao.quantization.quantize_dynamic(model, dict.fromkeys(names, qconfig), dtype=torch.qint8,
                                                          mapping={torch.nn.Linear: Int8Linear}, inplace=True)
    finally:
        torch.backends.quantized.engine = previous


@torch.inference_mode()
def _outlier_channels(model, tokenizer, names: list[str]) -> dict[str, torch.Tensor]:
    """Per linear layer name: its outlier input channels (sorted long tensor), from one fp32 forward."""
    peak: dict[str, torch.Tensor] = {}

    def watch(name):
        def hook(module, args):
            x = args[0].detach().abs().reshape(-1, args[0].shape[-1]).amax(0)
            peak[name] = torch.maximum(peak[name], x) if name in peak else x
        return hook

    modules = dict(model.named_modules())
    handles = [modules[n].register_forward_pre_hook(watch(n)) for n in names]
    try:
        batch = encode_texts(tokenizer, list(CALIBRATION_TEXTS), model.config.max_length)
        model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    finally:
        for h in handles:
            h.remove()
    out = {}
    for name, p in peak.items():
        median = p.median()
        big = (p > OUTLIER_RATIO * median).nonzero().flatten()
        if p.max() > LAYER_RATIO * median:
            top = big[p[big].argsort(descending=True)[:MAX_OUTLIERS]]
            out[name] = top.sort().values
    return out


class NoModelError(RuntimeError):
    """The workspace has no usable model version yet."""


def load_active_predictor(home: str | Path | None = None, device: str | None = None,
                          quantize: bool = False) -> Predictor:
    """The active version's Predictor; if its checkpoint is broken, the newest version that loads.

    The returned predictor's `.meta["fallback_from"]` names a broken active version, so the UI can warn.
    """
    from .checkpoint import CheckpointError
    from .registry import Registry

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
