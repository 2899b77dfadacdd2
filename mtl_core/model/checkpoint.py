"""A checkpoint is a directory; loading it never unpickles anything.

    encoder/            encoder in `save_pretrained` form (config.json + model.safetensors)
    tokenizer/          the tokenizer files
    heads.safetensors   task heads (and private upper layers, if any)
    tasks.json          the task file the heads were built from
    model_config.json   ModelConfig
    train_config.json   how it was trained (optional)
    metrics.json        dev/test metrics (optional)
    applicability.json  which tasks apply to a text (optional; model/applicability.py)
    thresholds.json     multi-label heads' per-label decision thresholds, tuned on dev (optional; 0.5 without)
    checksums.json      SHA-256 of every weights file, written last and checked on load (older checkpoints
                        have none and load unchecked)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoTokenizer

from mtl_core.model.applicability import FILE as APPLICABILITY
from mtl_core.model.applicability import Applicability, save_applicability
from mtl_core.model.edit_memory import memory_from_state
from mtl_core.model.modeling import ModelConfig, MultiTaskModel, encoder_from_config, load_encoder
from mtl_core.tasks import TaskFile, TaskFileError, parse_task_file

if TYPE_CHECKING:  # annotations only: no import cost or cycle at run time
    from transformers import PreTrainedTokenizerBase

REQUIRED = ("encoder/config.json", "tokenizer", "heads.safetensors", "tasks.json", "model_config.json")
CHECKSUMS = "checksums.json"
THRESHOLDS = "thresholds.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin")
HASH_CHUNK = 1 << 20


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, incomplete or corrupted."""


def save_checkpoint(
    model: MultiTaskModel,
    tokenizer: PreTrainedTokenizerBase,
    task_file: TaskFile,
    out_dir: str | Path,
    train_config: dict | None = None,
    metrics: dict | None = None,
) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / CHECKSUMS).unlink(missing_ok=True)  # a stale one would condemn the new weights
    model.encoder.save_pretrained(out / "encoder", safe_serialization=True)
    tokenizer.save_pretrained(out / "tokenizer")
    head_state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not k.startswith("encoder.")}
    save_file(head_state, str(out / "heads.safetensors"))
    _write_json(out / "tasks.json", task_file.to_dict())
    _write_json(out / "model_config.json", asdict(model.config))
    if train_config is not None:
        _write_json(out / "train_config.json", train_config)
    if metrics is not None:
        _write_json(out / "metrics.json", metrics)
    (out / APPLICABILITY).unlink(missing_ok=True)
    if getattr(model, "applicability", None) is not None:
        save_applicability(model.applicability, out)
    (out / THRESHOLDS).unlink(missing_ok=True)
    if getattr(model, "thresholds", None):
        _write_json(out / THRESHOLDS, {"tasks": model.thresholds})
    _write_json(out / CHECKSUMS, {"sha256": {rel: _sha256(out / rel) for rel in _weight_files(out)}})
    return out


def _weight_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if (p.suffix in WEIGHT_SUFFIXES or p.name in (APPLICABILITY, THRESHOLDS)) and p.is_file())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksums(root: Path) -> None:
    """Raise CheckpointError naming the first weights file whose SHA-256 differs from the one saved with it."""
    if not (root / CHECKSUMS).exists():
        return  # saved before checksums existed
    sums = _read_json(root / CHECKSUMS).get("sha256")
    if not isinstance(sums, dict) or not all(isinstance(v, str) for v in sums.values()):
        raise CheckpointError(f"checkpoint {root}: {CHECKSUMS} has no sha256 table")
    for rel, expected in sorted(sums.items()):
        path = root / rel
        if not path.resolve().is_relative_to(root.resolve()):
            raise CheckpointError(f"checkpoint {root}: {CHECKSUMS} names a file outside it ({rel!r})")
        if not path.is_file():
            raise CheckpointError(f"checkpoint {root} is corrupted: weights file {rel} is missing")
        if _sha256(path) != expected:
            raise CheckpointError(f"checkpoint {root} is corrupted: weights file {rel} does not match its "
                                  "SHA-256 checksum (damaged or changed after saving)")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=float), encoding="utf-8")
    tmp.replace(path)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"checkpoint file {path.name} is unreadable: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"checkpoint file {path.name} is not a JSON object")
    return data


def check_checkpoint(path: str | Path) -> Path:
    """Raise CheckpointError naming what is missing; return the resolved path."""
    root = Path(path)
    if not root.is_dir():
        raise CheckpointError(f"model directory not found: {root}")
    missing = [name for name in REQUIRED if not (root / name).exists()]
    if missing:
        raise CheckpointError(f"checkpoint {root} is incomplete: missing {', '.join(missing)}")
    return root


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu"):
    """-> (model in eval mode, tokenizer, task_file, meta dict with train_config/metrics)."""
    root = check_checkpoint(path)
    verify_checksums(root)
    try:
        task_file = parse_task_file(_read_json(root / "tasks.json"))
        config = ModelConfig(**{"word_shape": 0, **_read_json(root / "model_config.json")})  # older: no shapes
    except (TaskFileError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {root}: bad task/model config: {exc}") from None
    try:
        encoder = load_encoder(str(root / "encoder"))
        tokenizer = AutoTokenizer.from_pretrained(str(root / "tokenizer"))
        heads = load_file(str(root / "heads.safetensors"))
    except Exception as exc:  # safetensors/transformers raise many types for truncated files
        raise CheckpointError(f"checkpoint {root} is corrupted: {type(exc).__name__}: {exc}") from None
    try:
        model = _assemble(encoder, task_file, config, heads, root)
        model.applicability = _applicability(root)  # None for checkpoints saved before it: every task applies
        model.thresholds = _thresholds(root, task_file)  # {} without the file: every label at 0.5
        meta = {
            "train_config": _read_json(root / "train_config.json") if (root / "train_config.json").exists() else {},
            "metrics": _read_json(root / "metrics.json") if (root / "metrics.json").exists() else {},
            "encoder_name": _encoder_name(root),
        }
    except CheckpointError:
        raise
    except Exception as exc:  # e.g. torch's RuntimeError for a tensor of the wrong shape: still a bad checkpoint
        raise CheckpointError(f"checkpoint {root}: the weights do not fit the model: "
                              f"{type(exc).__name__}: {str(exc)[:300]}") from None
    return model.to(device).eval(), tokenizer, task_file, meta


def _assemble(encoder, task_file: TaskFile, config: ModelConfig, heads: dict, root: Path) -> MultiTaskModel:
    if config.shared_layers is not None and config.shared_layers >= encoder.config.num_hidden_layers:
        # the saved encoder was already cut to K layers; rebuild the private copies' shape from it
        full = AutoConfig.from_pretrained(str(root / "encoder"))
        full.num_hidden_layers = _private_depth(heads) + config.shared_layers
        shell = encoder_from_config(full)
        shell.load_state_dict(encoder.state_dict(), strict=False)
        encoder = shell
    model = MultiTaskModel(encoder, task_file.tasks, config)
    model.memory.update(memory_from_state(heads, model.tasks))
    missing, unexpected = model.load_state_dict(heads, strict=False)
    missing = [k for k in missing if not k.startswith("encoder.")]
    if missing or unexpected:
        raise CheckpointError(f"checkpoint {root}: heads do not match tasks (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model


def _applicability(root: Path) -> Applicability | None:
    if not (root / APPLICABILITY).exists():
        return None
    try:
        return Applicability.from_dict(_read_json(root / APPLICABILITY))
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {root}: {APPLICABILITY}: {exc}") from None


def _thresholds(root: Path, task_file: TaskFile) -> dict[str, dict[str, float]]:
    """task -> label -> threshold in [0, 1], for the file's multi-label tasks and labels only."""
    if not (root / THRESHOLDS).exists():
        return {}
    saved = _read_json(root / THRESHOLDS).get("tasks")
    labels = {t.name: set(t.labels) for t in task_file.tasks}
    if not isinstance(saved, dict):
        raise CheckpointError(f"checkpoint {root}: {THRESHOLDS} has no 'tasks' table")
    out = {}
    for task, table in saved.items():
        ok = isinstance(table, dict) and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
                                             for v in table.values())
        if not ok or task not in labels or not set(table) <= labels[task]:
            raise CheckpointError(f"checkpoint {root}: {THRESHOLDS}: bad thresholds for task {task!r}")
        out[task] = {str(k): float(v) for k, v in table.items()}
    return out


def _private_depth(heads: dict) -> int:
    idx = {int(k.split(".")[2]) for k in heads if k.startswith("private.")}
    return max(idx) + 1 if idx else 0


def _encoder_name(root: Path) -> str:
    cfg = _read_json(root / "encoder" / "config.json")
    return cfg.get("_name_or_path") or cfg.get("model_type", "encoder")
