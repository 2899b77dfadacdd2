"""Export a model version as ONE ONNX graph: shared encoder + every task head.

    python -m mtl_core export --onnx [--version V] [--out DIR]

The graph takes `input_ids` and `attention_mask` (int64, shape (batch, sequence), both axes dynamic) and
returns one tensor per task, named after the task, in task-file order: (batch, n_labels) for
classification, (batch, 1) for regression (on the head's [-1, 1] scale, like the PyTorch model),
(batch, sequence, n_tags) for token classification, (batch, n_labels) sigmoid probabilities for
multi-label classification (outputs.json holds each label's threshold). Next to `model.onnx` the export writes the
tokenizer and `tasks.json`, so the directory is self-contained; decoding is the caller's job
(see mtl_core.model.decoding). The export is checked against PyTorch with onnxruntime before it is reported.

Needs the optional packages `onnx`, `onnxscript` (torch's dynamo exporter) and `onnxruntime` (check).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from mtl_core.model.decoding import task_thresholds
from mtl_core.tasks import MULTILABEL

if TYPE_CHECKING:  # annotations only: no import cost or cycle at run time
    from transformers import PreTrainedTokenizerBase

    from mtl_core.model.modeling import MultiTaskModel
    from mtl_core.tasks import TaskFile

ONNX_FILE = "model.onnx"
TOLERANCE = 1e-4
CHECK_TEXTS = [
    "The stock market fell in London today after the Bank of England raised rates.",
    "what is the capital of Peru ?",
    "WINNER!! claim your free prize now, text WIN to 80082",
    "ok",
]


class ExportError(RuntimeError):
    """The ONNX export failed or does not match the PyTorch model."""


class AllHeads(nn.Module):
    """(input_ids, attention_mask[, shape_ids]) -> tuple of every task's head output, in task order.

    `shape_ids` (B, T) is an input only when a token head reads word shapes (`inputs`)."""

    def __init__(self, model: MultiTaskModel):
        super().__init__()
        self.model = model
        self.names = list(model.task_names)
        self.inputs = ["input_ids", "attention_mask"] + (["shape_ids"] if uses_shapes(model) else [])
        self.sigmoid = {n for n, t in model.tasks.items() if t.kind == MULTILABEL}  # probabilities, not logits

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                shape_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, shape_ids=shape_ids)
        return tuple(out.logits[n].sigmoid() if n in self.sigmoid else out.logits[n] for n in self.names)


def uses_shapes(model: MultiTaskModel) -> bool:
    return model.config.word_shape > 0 and any(t.kind == "token_classification" for t in model.tasks.values())


def _require(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ExportError(f"ONNX export needs the `{module}` package: pip install onnx onnxscript onnxruntime")


def export_onnx(model: MultiTaskModel, path: str | Path, opset: int = 18) -> Path:
    """Write `model` (a MultiTaskModel, fp32) as one ONNX graph at `path`; returns the path."""
    _require("onnx")
    _require("onnxscript")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    model.set_attention(eager=False)
    wrapper = AllHeads(model).eval()
    example = (torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]]), torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]),
               torch.tensor([[0, 65, 1, 0], [0, 65, 0, 0]]))[: len(wrapper.inputs)]
    batch, seq = torch.export.Dim("batch", min=1), torch.export.Dim("sequence", min=2, max=8192)
    for name in ("torch.onnx", "onnxscript", "onnx_ir"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            wrapper, example, dynamo=True, opset_version=opset, verbose=False,
            input_names=wrapper.inputs, output_names=wrapper.names,
            dynamic_shapes={name: {0: batch, 1: seq} for name in wrapper.inputs},
        )
    program.save(str(path))  # weights inside the one file (MiniLM fp32 is ~90 MB, under protobuf's 2 GB)
    return path


def onnx_session(path: str | Path, threads: int | None = None):
    """An onnxruntime CPU session (all graph optimisations on)."""
    _require("onnxruntime")
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def onnx_outputs(session, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 shape_ids: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    given = {"input_ids": input_ids, "attention_mask": attention_mask, "shape_ids": shape_ids}
    feeds = {i.name: given[i.name].numpy().astype(np.int64) for i in session.get_inputs()}
    return dict(zip(names, session.run(names, feeds)))


@torch.inference_mode()
def max_difference(model: MultiTaskModel, session, tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int) -> dict[str, float]:
    """Per task: max |PyTorch - ONNX Runtime| on the texts as one padded batch (padded NER rows excluded)."""
    from mtl_core.model.encoding import encode_texts

    model.set_attention(eager=False)
    batch = encode_texts(tokenizer, texts, max_length)
    torch_out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, shape_ids=batch.shape_ids).logits
    ort_out = onnx_outputs(session, batch.input_ids, batch.attention_mask, batch.shape_ids)
    mask = batch.attention_mask.bool().numpy()
    diffs = {}
    for name, t in torch_out.items():
        t = t.sigmoid() if model.tasks[name].kind == MULTILABEL else t  # as AllHeads exports it
        d = np.abs(t.float().numpy() - ort_out[name])
        diffs[name] = float((d[mask] if d.ndim == 3 else d).max())
    return diffs


def export_version(version: str | None = None, out: str | Path | None = None, home=None,
                   check_texts: list[str] | None = None) -> dict:
    """Export a registered version (default: the active one) to `out` (default <home>/exports/<version>-onnx)."""
    from mtl_core.model.checkpoint import load_checkpoint
    from mtl_core.model.registry import Registry

    reg = Registry(home)
    version = version or reg.active
    if version is None:
        raise FileNotFoundError("no model version registered: train one first")
    src = reg.path_of(version)
    model, tokenizer, task_file, _ = load_checkpoint(src)
    out_dir = Path(out) if out else reg.home / "exports" / f"{version}-onnx"
    return export_model(model, tokenizer, task_file, out_dir, version=version, check_texts=check_texts)


def export_model(model: MultiTaskModel, tokenizer: PreTrainedTokenizerBase, task_file: TaskFile, out_dir: str | Path, version: str | None = None,
                 check_texts: list[str] | None = None) -> dict:
    """Export + tokenizer + tasks.json into `out_dir`; verify with onnxruntime. Raises ExportError on mismatch."""
    out_dir = Path(out_dir)
    path = export_onnx(model, out_dir / ONNX_FILE)
    tokenizer.save_pretrained(out_dir / "tokenizer")
    (out_dir / "tasks.json").write_text(json.dumps(task_file.to_dict(), indent=2), encoding="utf-8")
    outputs = {n: _describe(model.tasks[n], task_thresholds(model, model.tasks[n])) for n in model.task_names}
    (out_dir / "outputs.json").write_text(json.dumps(
        {"version": version, "inputs": AllHeads(model).inputs, "outputs": outputs,
         "max_length": model.config.max_length}, indent=2), encoding="utf-8")
    diffs = max_difference(model, onnx_session(path), tokenizer, check_texts or CHECK_TEXTS, model.config.max_length)
    worst = max(diffs.values())
    if worst > TOLERANCE:
        raise ExportError(f"ONNX outputs differ from PyTorch by {worst:.2e} (> {TOLERANCE:g}): {diffs}")
    return {"path": str(path), "dir": str(out_dir), "version": version, "max_abs_diff": diffs,
            "size_mb": path.stat().st_size / 2**20}


def _describe(spec, thresholds: dict[str, float]) -> dict:
    if spec.kind == MULTILABEL:
        return {"kind": spec.kind, "shape": ["batch", spec.n_outputs], "labels": spec.labels, "thresholds": thresholds,
                "note": "sigmoid probability per label; a label is chosen when its probability >= its threshold"}
    if spec.kind == "token_classification":
        return {"kind": spec.kind, "shape": ["batch", "sequence", spec.n_outputs], "labels": spec.tag_names}
    if spec.kind == "regression":
        return {"kind": spec.kind, "shape": ["batch", 1], "range": list(spec.value_range),
                "note": "head scale [-1, 1]; value = mid + half * raw, clipped (mtl_core.model.decoding.regression_value)"}
    return {"kind": spec.kind, "shape": ["batch", spec.n_outputs], "labels": spec.labels}
