"""int8 dynamic quantization of the encoder's linear layers for CPU inference (`Predictor(quantize=True)`)."""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING

import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear  # imported by torch itself anyway

from mtl_core.model.encoding import encode_texts

if TYPE_CHECKING:  # annotations only: no import cost or cycle at run time
    from transformers import PreTrainedTokenizerBase

    from mtl_core.model.modeling import MultiTaskModel

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


def quantize_dynamic(model: MultiTaskModel, tokenizer: PreTrainedTokenizerBase=None, engine: str | None = None):
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


def quantize_linears(model: MultiTaskModel, names: list[str], engine: str):
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
def _outlier_channels(model: MultiTaskModel, tokenizer: PreTrainedTokenizerBase, names: list[str]) -> dict[str, torch.Tensor]:
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
