"""The `score_pool` background job: predict a pool of texts, store every answer, fill the review queue.

Pools (the job's `pool` parameter):

* ``"predict"`` – texts sent from the Predict page (already in the store, source ``"predict"``).
* ``"upload:<name>"`` – an uploaded file's texts; the app stores them under that source before launching.
* ``"dataset:<task>:<split>"`` – a bundled data set's ``train`` or ``dev`` split, with its gold labels, so
  the queue can show where the model and the label disagree (``model_vs_label``).

The ``test`` split is never scored, stored or queued: it stays frozen for evaluation. Correcting test
labels with the help of the model under test would leak the model's view into the yardstick that
judges it (and every fine-tune round after it).

One forward pass per text: `score_pool`'s ``on_batch`` hook stores the predictions of each batch,
so nothing is predicted twice. With ``previous_version`` the older model's answers are taken from the
store where they exist and predicted (and stored) where not, and every changed answer is queued as
``version_vs_version``. Disagreements between annotators in the annotation log are queued too.

Nothing here imports streamlit.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from .data.examples import Example
from .decoding import TRAILING_PUNCT
from .review_queue import annotator_conflict, score_pool
from .store import (
    add_texts,
    annotator_conflicts,
    load_predictions,
    record_predictions,
    set_dataset_labels,
    upsert_queue_items,
)
from .store.models import TextRow
from .tasks import DEFAULT_TASK_FILE, TaskFile, TaskSpec, load_task_file
from .types import Prediction
from .worker import JobContext, handler

SCORABLE_SPLITS = ("train", "dev")
FROZEN_SPLIT = "test"  # never scored: evaluation data (see the module docstring)
DEFAULT_LIMIT = 10_000
DEFAULT_MIN_SCORE = 0.25  # below this an item is not worth a human look (e.g. a 95 % sure binary answer)
BATCH_SIZE = 64
CHUNK = 1024  # texts scored, stored and queued per round: the queue fills while the job runs
CONFLICT_POOL = "annotations"  # annotator conflicts come from the label log, not from a text pool
CONFLICT_TOLERANCE = 0.1  # regression labels within 10 % of the scale agree


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


# ---------------------------------------------------------------- gold labels of bundled data


def bio_spans(example: Example) -> list[dict[str, Any]]:
    """Word-level BIO tags -> [{start, end, label}] character spans (trailing punctuation trimmed, as
    the model's decoder does, so a correct model answer compares equal)."""
    spans: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for (start, end), tag in zip(example.word_offsets(), example.tags or (), strict=True):
        kind, label = (tag[0], tag[2:]) if tag != "O" else ("O", "")
        if current is not None and kind == "I" and label == current["label"]:
            current["end"] = end
            continue
        if current is not None:
            spans.append(current)
            current = None
        if kind in ("B", "I"):
            current = {"start": start, "end": end, "label": label}
    if current is not None:
        spans.append(current)
    for span in spans:
        while span["end"] - 1 > span["start"] and example.text[span["end"] - 1] in TRAILING_PUNCT:
            span["end"] -= 1
    return spans


def gold_value(spec: TaskSpec, example: Example) -> Any:
    """An Example's label in the annotation-value format: class name, float, or span list."""
    if spec.kind == "token_classification":
        return bio_spans(example)
    if spec.kind == "regression":
        return float(example.label)  # type: ignore[arg-type]
    return example.label


def dataset_examples(
    task: str, split: str, home: str | Path | None = None, task_file_path: str | Path = DEFAULT_TASK_FILE
) -> tuple[TaskSpec, list[Example]]:
    """One task's prepared train/dev examples (the same cache `pipeline.prepare` fills). Never test."""
    from .data.prepare import prepare_task
    from .pipeline import data_cache_dir

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


# ---------------------------------------------------------------- reading a pool


def _stored_texts(session, source: str, limit: int) -> tuple[list[int], list[str]]:
    """The newest `limit` texts of a source, oldest first."""
    query = select(TextRow.id, TextRow.text).where(TextRow.source == source)
    rows = session.execute(query.order_by(TextRow.id.desc()).limit(limit)).all()
    rows.reverse()
    return [r[0] for r in rows], [r[1] for r in rows]


def load_pool(
    session,
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


# ---------------------------------------------------------------- scoring


def _batched_predict(predictor, texts: list[str], batch_size: int) -> list[Prediction]:
    return predictor.predict(texts, batch_size=batch_size)


def previous_predictions(
    session,
    pool: Pool,
    previous_version: str,
    load: Callable[[], Any],
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
) -> list[Prediction]:
    """The older version's answers for the pool: stored ones reused, missing ones predicted and stored."""
    found = load_predictions(session, pool.text_ids, previous_version)
    missing = sorted((i for i, p in enumerate(found) if p is None), key=lambda i: len(pool.texts[i]))
    if missing:
        predictor = load()
        for start in range(0, len(missing), batch_size):
            if check_cancelled is not None:
                check_cancelled()
            idx = missing[start : start + batch_size]
            preds = _batched_predict(predictor, [pool.texts[i] for i in idx], batch_size)
            record_predictions(session, [pool.text_ids[i] for i in idx], preds, previous_version)
            for i, pred in zip(idx, preds, strict=True):
                found[i] = pred
            if progress is not None:
                progress(min(start + batch_size, len(missing)), len(missing))
    return found  # type: ignore[return-value]


def score_and_store(
    session,
    predictor,
    pool: Pool,
    *,
    model_version: str,
    task_file: TaskFile | None = None,
    previous: Sequence[Prediction | None] | None = None,
    previous_version: str | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
    tasks: Collection[str] | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
) -> Counter:
    """Predict the pool once, store every prediction, upsert the queue; returns queued items per reason.

    `tasks` limits the queue to those tasks' items (contradictions, which span two tasks, always
    count); predictions are stored for every task regardless.

    Texts are sorted by length first (batches pad to similar lengths), then scored in rounds of
    CHUNK texts: each round's predictions and queue items are committed before the next starts,
    so a cancelled job keeps what it did.
    """
    task_file = task_file or predictor.task_file
    n = len(pool.texts)
    order = sorted(range(n), key=lambda i: len(pool.texts[i]))
    queued: Counter = Counter()

    def predict_fn(texts: list[str]) -> list[Prediction]:
        return _batched_predict(predictor, texts, batch_size)

    for chunk_start in range(0, n, CHUNK):
        idx = order[chunk_start : chunk_start + CHUNK]
        ids = [pool.text_ids[i] for i in idx]

        def on_batch(start: int, preds: list[Prediction], ids: list[int] = ids) -> None:
            record_predictions(session, ids[start : start + len(preds)], preds, model_version)
            if check_cancelled is not None:
                check_cancelled()

        def on_progress(done: int, _total: int, offset: int = chunk_start) -> None:
            if progress is not None:
                progress(offset + done, n)

        candidates = score_pool(
            predict_fn,
            [pool.texts[i] for i in idx],
            task_file,
            batch_size=batch_size,
            progress=on_progress,
            labels=[pool.labels[i] for i in idx] if pool.labels is not None else None,
            previous=[previous[i] for i in idx] if previous is not None else None,
            model_version=model_version,
            previous_version=previous_version,
            min_score=min_score,
            on_batch=on_batch,
        )
        if tasks is not None:
            candidates = [c for c in candidates if c.reason == "contradiction" or c.task in tasks]
        upsert_queue_items(session, candidates, text_ids=ids, pool=pool.spec.name, model_version=model_version)
        queued.update(c.reason for c in candidates)
    return queued


def queue_annotator_conflicts(session, task_file: TaskFile) -> int:
    """Queue every text whose annotators currently disagree (any pool); returns how many items."""
    items = []
    for spec in task_file.tasks:
        lo, hi = spec.value_range
        tolerance = CONFLICT_TOLERANCE * (hi - lo) if spec.kind == "regression" else 0.0
        for conflict in annotator_conflicts(session, spec.name, tolerance=tolerance):
            cand = annotator_conflict(0, "", spec.name, conflict.values)
            if cand is not None:
                items.append(
                    {"text_id": conflict.text_id, "task": spec.name, "reason": cand.reason,
                     "score": cand.score, "detail": cand.detail}
                )
    return upsert_queue_items(session, items, pool=CONFLICT_POOL) if items else 0


# ---------------------------------------------------------------- the job


def load_version_predictor(home: str | Path | None, version: str | None):
    """The active version's Predictor (with its fallback), or a named version's."""
    from .inference import Predictor, load_active_predictor
    from .registry import Registry

    reg = Registry(home)
    if version is None or version == reg.active:
        return load_active_predictor(reg.home)
    reg.get(version)  # KeyError naming the version when it does not exist
    return Predictor.from_dir(reg.path_of(version), version=version)


@handler("score_pool")
def score_pool_job(ctx: JobContext) -> dict:
    """params: pool, model_version (default: active), previous_version, limit, min_score, tasks, task_file.

    A dataset pool queues only its own task's items by default (plus contradictions): the other heads
    read out-of-domain text there (a topic head on SMS messages) and are unsure by construction.
    """
    started = time.perf_counter()
    params = ctx.params
    pool_name = str(params["pool"])
    limit = int(params.get("limit") or DEFAULT_LIMIT)
    min_score = float(params.get("min_score", DEFAULT_MIN_SCORE))
    task_file_path = params.get("task_file") or DEFAULT_TASK_FILE
    previous_version = params.get("previous_version") or None
    spec = parse_pool(pool_name)
    tasks = params.get("tasks") or ([spec.task] if spec.kind == "dataset" else None)

    ctx.progress(0, None, "loading the model")
    predictor = load_version_predictor(ctx.home, params.get("model_version") or None)
    version = predictor.version or "unversioned"
    if predictor.meta.get("fallback_from"):
        ctx.log(f"active version {predictor.meta['fallback_from']} could not be loaded; scoring with {version}")
    with ctx.sessions() as session:
        ctx.progress(0, None, f"reading pool {pool_name}")
        pool = load_pool(session, pool_name, ctx.home, limit, task_file_path=task_file_path)
        n = len(pool.texts)
        ctx.log(f"pool {pool_name}: {n} texts, model {version}")
        previous = None
        if previous_version and previous_version != version:

            def prev_progress(done: int, total: int) -> None:
                ctx.progress(done, total, f"{previous_version}: predicting {done}/{total} texts")

            previous = previous_predictions(
                session, pool, previous_version, lambda: load_version_predictor(ctx.home, previous_version),
                progress=prev_progress, check_cancelled=ctx.check_cancelled,
            )
        ctx.progress(0, n, f"scoring {n} texts with {version}")
        queued = score_and_store(
            session, predictor, pool, model_version=version, previous=previous,
            previous_version=previous_version, min_score=min_score, tasks=tasks,
            progress=lambda done, total: ctx.progress(done, total, f"scored {done}/{total} texts"),
            check_cancelled=ctx.check_cancelled,
        )
        conflicts = queue_annotator_conflicts(session, predictor.task_file)
    seconds = time.perf_counter() - started
    result = {
        "pool": pool_name,
        "model_version": version,
        "previous_version": previous_version,
        "texts": n,
        "queued": sum(queued.values()),
        "by_reason": dict(queued),
        "annotator_conflicts": conflicts,
        "seconds": round(seconds, 2),
        "texts_per_s": round(n / seconds, 1) if seconds > 0 else None,
    }
    ctx.progress(n, n, f"done: {n} texts scored, {result['queued']} queue items, {conflicts} conflicts")
    ctx.log(str(result))
    return result
