"""Fit a new task's few-shot head from its labels in the store, on the active model's frozen encoder.

Features are cached per (model version, representation, text hash) under `<workspace>/fewshot/cache/`, so a
refit after a new label runs one forward for that text, then a logistic regression on ~100 rows (< 1 s on
two CPU cores: bench/quality/fewshot.py reports the label-to-answer latency).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from mtl_core.serve.fewshot import FewShotConfig, FewShotError, FewShotHead, fit_head, heads_dir, save_head
from mtl_core.serve.predictor import Predictor
from mtl_core.store.annotations import current_labels
from mtl_core.store.texts import content_hash, get_texts
from mtl_core.tasks import MULTILABEL, TaskSpec

FEWSHOT_KINDS = ("classification", MULTILABEL)  # regression and token tasks wait for a round to join the model


@dataclass
class FitReport:
    """What a refit did: a head, or why there is none yet."""

    task: str
    fitted: bool
    message: str  # "fitted on 24 labels" or what is missing
    n_labels: int
    per_class: dict[str, int]
    cv_accuracy: float | None = None
    seconds: float = 0.0


def task_labels(session: Session, task: str) -> list[tuple[str, Any]]:
    """(text, value) per labelled text of `task`: the latest label event wins across annotators."""
    latest: dict[int, tuple] = {}
    for row in current_labels(session, task):
        if row.text_id not in latest or row.created_at >= latest[row.text_id][0]:
            latest[row.text_id] = (row.created_at, row.value)
    texts = get_texts(session, list(latest))
    return [(texts[i], v) for i, (_, v) in sorted(latest.items()) if i in texts and v is not None]


def cached_features(home: str | Path | None, predictor: Predictor, texts: list[str], representation: str) -> np.ndarray:
    """(N, D) features of `texts` on the predictor's version; only texts not cached yet run the model."""
    path = heads_dir(home) / "cache" / f"{predictor.version}-{representation}.npz"
    keys, vecs = _read_cache(path)
    index = {k: i for i, k in enumerate(keys)}
    wanted = [content_hash(t) for t in texts]
    missing = sorted({h for h in wanted if h not in index})
    if missing:
        by_hash = {content_hash(t): t for t in texts}
        new = predictor.features([by_hash[h] for h in missing], representation)
        keys = keys + missing
        vecs = new if vecs is None else np.concatenate([vecs, new])
        index = {k: i for i, k in enumerate(keys)}
        _write_cache(path, keys, vecs)
    assert vecs is not None or not texts
    return vecs[[index[h] for h in wanted]] if texts else np.zeros((0, 0), dtype=np.float32)


def _read_cache(path: Path) -> tuple[list[str], np.ndarray | None]:
    try:
        with np.load(path) as data:
            return [str(k) for k in data["keys"]], data["vecs"].astype(np.float32)
    except (OSError, KeyError, ValueError):  # none yet, or a torn/old file: recompute
        return [], None


def _write_cache(path: Path, keys: list[str], vecs: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, keys=np.asarray(keys), vecs=vecs.astype(np.float32))
    os.replace(tmp, path)


def refit(home: str | Path | None, predictor: Predictor, spec: TaskSpec, session: Session,
          config: FewShotConfig | None = None) -> FitReport:
    """Fit and save `spec`'s head on the predictor's encoder from the store's labels (or report what is missing)."""
    config = config or FewShotConfig()
    started = time.perf_counter()
    if spec.kind not in FEWSHOT_KINDS:
        return FitReport(spec.name, False, f"{spec.kind} tasks get their head in a training round", 0, {})
    pairs = [(t, v) for t, v in task_labels(session, spec.name) if _usable(v, spec)]
    counts = {label: sum(1 for _, v in pairs if (label in v if isinstance(v, list) else v == label))
              for label in spec.labels}
    try:
        x = cached_features(home, predictor, [t for t, _ in pairs], config.representation) if pairs else None
        if x is None:
            raise FewShotError(f"task {spec.name!r} has no labels yet")
        head = fit_head(spec.name, spec.labels, x, [v for _, v in pairs], str(predictor.version), config, spec.kind)
    except FewShotError as exc:
        return FitReport(spec.name, False, str(exc), len(pairs), counts, seconds=time.perf_counter() - started)
    save_head(head, home)
    return _report(head, time.perf_counter() - started)


def _usable(value: Any, spec: TaskSpec) -> bool:
    """A class name of the task (multi-label: a list of them, possibly empty)."""
    if spec.kind == MULTILABEL:
        return isinstance(value, list) and all(v in spec.labels for v in value)
    return isinstance(value, str) and value in spec.labels


def _report(head: FewShotHead, seconds: float) -> FitReport:
    metric = "micro-F1" if head.kind == MULTILABEL else "accuracy"
    est = "" if head.cv_accuracy is None else f", estimated {metric} {head.cv_accuracy:.0%}"
    return FitReport(head.task, True, f"fitted on {head.n_labels} labels{est}", head.n_labels, head.per_class,
                     head.cv_accuracy, round(seconds, 3))
