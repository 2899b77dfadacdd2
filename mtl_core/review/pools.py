"""Pools of texts to score for the review queue, and the gold labels of bundled data sets.

Pool names: ``"predict"`` (texts sent from the Predict page), ``"upload:<name>"`` (an uploaded
file's texts, stored under that source first), ``"dataset:<task>:<split>"`` (a bundled data set's
``train`` or ``dev`` split, stored with its gold labels). The ``test`` split is never a pool: it stays
frozen for evaluation (see `mtl_core.review.jobs`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mtl_core.data.bio import tags_to_spans
from mtl_core.data.examples import Example
from mtl_core.data.prepare import prepare_task
from mtl_core.store import add_texts, set_dataset_labels
from mtl_core.store.models import TextRow
from mtl_core.tasks import DEFAULT_TASK_FILE, TaskSpec, load_task_file
from mtl_core.workspace import data_cache_dir

SCORABLE_SPLITS = ("train", "dev")
FROZEN_SPLIT = "test"  # never scored: evaluation data (see the module docstring)
DEFAULT_LIMIT = 10_000


class PoolError(ValueError):
    """A pool name the job cannot score (unknown kind, the frozen test split, an unknown task)."""


@dataclass(frozen=True)
class PoolSpec:
    kind: str  # "predict" | "upload" | "dataset"
    name: str  # the full pool string, also the texts' `source` for predict/upload
    task: str | None = None  # dataset pools
    split: str | None = None


@dataclass
class Pool:
    """Texts to score, aligned: `labels[i]` is task -> gold value for text i (dataset pools only)."""

    spec: PoolSpec
    text_ids: list[int]
    texts: list[str]
    labels: list[dict[str, Any]] | None = None


def parse_pool(pool: str) -> PoolSpec:
    """'predict' | 'upload:<name>' | 'dataset:<task>:<split>' -> PoolSpec; refuses the test split."""
    if pool == "predict":
        return PoolSpec("predict", pool)
    kind, _, rest = pool.partition(":")
    if kind == "upload" and rest:
        return PoolSpec("upload", pool)
    if kind == "dataset":
        task, _, split = rest.partition(":")
        if split == FROZEN_SPLIT:
            raise PoolError(
                f"pool {pool!r}: the test split is frozen for evaluation and is never queued; "
                f"use one of {SCORABLE_SPLITS}"
            )
        if not task or split not in SCORABLE_SPLITS:
            raise PoolError(f"pool {pool!r}: expected dataset:<task>:<split> with split in {SCORABLE_SPLITS}")
        return PoolSpec("dataset", pool, task, split)
    raise PoolError(f"unknown pool {pool!r}: expected 'predict', 'upload:<name>' or 'dataset:<task>:<split>'")


def bio_spans(example: Example) -> list[dict[str, Any]]:
    """Word-level BIO tags -> [{start, end, label}] character spans (trailing punctuation trimmed, as
    the model's decoder does, so a correct model answer compares equal): `data.bio.tags_to_spans`."""
    spans = tags_to_spans(example.word_offsets(), example.tags or (), example.text, trim_punct=True)
    return [span.to_dict() for span in spans]


def gold_value(spec: TaskSpec, example: Example) -> Any:
    """An Example's label in the annotation-value format: class name, float, span list, or label list."""
    if spec.kind == "token_classification":
        return bio_spans(example)
    if isinstance(example.label, tuple):  # multi-label
        return list(example.label)
    if spec.kind == "regression":
        return float(example.label)  # type: ignore[arg-type]
    return example.label


def dataset_examples(
    task: str, split: str, home: str | Path | None = None, task_file_path: str | Path = DEFAULT_TASK_FILE
) -> tuple[TaskSpec, list[Example]]:
    """One task's prepared train/dev examples (the same cache `pipeline.prepare` fills). Never test."""
    if split not in SCORABLE_SPLITS:
        raise PoolError(f"split {split!r} cannot be scored: only {SCORABLE_SPLITS} (test is frozen)")
    task_file = load_task_file(task_file_path)
    try:
        spec = task_file.by_name(task)
    except KeyError as exc:
        raise PoolError(str(exc)) from None
    if spec.source is None:
        raise PoolError(f"task {task!r} has no data source in {task_file_path}")
    base = Path(task_file_path).resolve().parent
    return spec, prepare_task(spec, data_cache_dir(home), base_dir=base)[split]


def _stored_texts(session: Session, source: str, limit: int) -> tuple[list[int], list[str]]:
    """The newest `limit` texts of a source, oldest first."""
    query = select(TextRow.id, TextRow.text).where(TextRow.source == source)
    rows = session.execute(query.order_by(TextRow.id.desc()).limit(limit)).all()
    rows.reverse()
    return [r[0] for r in rows], [r[1] for r in rows]


def load_pool(
    session: Session,
    pool: str,
    home: str | Path | None = None,
    limit: int = DEFAULT_LIMIT,
    seed: int = 0,
    task_file_path: str | Path = DEFAULT_TASK_FILE,
) -> Pool:
    """Resolve a pool to stored texts (dataset pools are stored first, with their gold labels)."""
    spec = parse_pool(pool)
    if spec.kind in ("predict", "upload"):
        ids, texts = _stored_texts(session, spec.name, limit)
        return Pool(spec, ids, texts)
    task_spec, examples = dataset_examples(spec.task, spec.split, home, task_file_path)  # type: ignore[arg-type]
    examples = [ex for ex in examples if ex.text.strip()]
    if len(examples) > limit:
        examples = random.Random(seed).sample(examples, limit)
    texts = [ex.text for ex in examples]
    values = [gold_value(task_spec, ex) for ex in examples]
    ids = add_texts(session, texts, source=f"dataset:{spec.task}", dataset_split=spec.split)
    set_dataset_labels(session, ids, task_spec.name, values)
    first: dict[int, int] = {}  # the same text twice in a data set is scored once
    for i, tid in enumerate(ids):
        first.setdefault(tid, i)
    keep = sorted(first.values())
    return Pool(
        spec,
        [ids[i] for i in keep],
        [texts[i] for i in keep],
        [{task_spec.name: values[i]} for i in keep],
    )
