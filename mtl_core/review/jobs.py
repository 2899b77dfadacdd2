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

import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mtl_core.progress import JobRun, PrintReporter, Reporter
from mtl_core.review.pools import (
    DEFAULT_LIMIT,
    SCORABLE_SPLITS,
    Pool,
    load_pool,
    parse_pool,
)
from mtl_core.review.queue import annotator_conflict, score_pool
from mtl_core.serve.predictor import load_version_predictor
from mtl_core.store import annotator_conflicts, load_predictions, record_predictions, upsert_queue_items
from mtl_core.tasks import DEFAULT_TASK_FILE, TaskFile
from mtl_core.types import Prediction

if TYPE_CHECKING:  # annotations only: no import cost or cycle at run time
    from mtl_core.serve.predictor import Predictor

__all__ = ["SCORABLE_SPLITS", "previous_predictions", "queue_annotator_conflicts", "score_and_store",
           "score_pool_job"]

DEFAULT_MIN_SCORE = 0.25  # below this an item is not worth a human look (e.g. a 95 % sure binary answer)
BATCH_SIZE = 64
CHUNK = 1024  # texts scored, stored and queued per round: the queue fills while the job runs
CONFLICT_POOL = "annotations"  # annotator conflicts come from the label log, not from a text pool
CONFLICT_TOLERANCE = 0.1  # regression labels within 10 % of the scale agree


# ---------------------------------------------------------------- scoring


def _batched_predict(predictor: Predictor, texts: list[str], batch_size: int) -> list[Prediction]:
    return predictor.predict(texts, batch_size=batch_size)


def previous_predictions(
    session: Session,
    pool: Pool,
    previous_version: str,
    load: Callable[[], Any],
    batch_size: int = BATCH_SIZE,
    reporter: Reporter | None = None,
) -> list[Prediction]:
    """The older version's answers for the pool: stored ones reused, missing ones predicted and stored."""
    found = load_predictions(session, pool.text_ids, previous_version)
    missing = sorted((i for i, p in enumerate(found) if p is None), key=lambda i: len(pool.texts[i]))
    reporter = reporter or PrintReporter()
    if missing:
        predictor = load()
        for start in range(0, len(missing), batch_size):
            reporter.check_cancelled()
            idx = missing[start : start + batch_size]
            preds = _batched_predict(predictor, [pool.texts[i] for i in idx], batch_size)
            record_predictions(session, [pool.text_ids[i] for i in idx], preds, previous_version)
            for i, pred in zip(idx, preds, strict=True):
                found[i] = pred
            done = min(start + batch_size, len(missing))
            reporter.progress(done, len(missing), f"{previous_version}: predicting {done}/{len(missing)} texts")
    return found  # type: ignore[return-value]


def score_and_store(
    session: Session,
    predictor: Predictor,
    pool: Pool,
    *,
    model_version: str,
    task_file: TaskFile | None = None,
    previous: Sequence[Prediction | None] | None = None,
    previous_version: str | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
    tasks: Collection[str] | None = None,
    batch_size: int = BATCH_SIZE,
    reporter: Reporter | None = None,
) -> Counter:
    """Predict the pool once, store every prediction, upsert the queue; returns queued items per reason.

    `tasks` limits the queue to those tasks' items (contradictions, which span two tasks, always
    count); predictions are stored for every task regardless.

    Texts are sorted by length first (batches pad to similar lengths), then scored in rounds of
    CHUNK texts: each round's predictions and queue items are committed before the next starts,
    so a cancelled job keeps what it did.
    """
    task_file = task_file or predictor.task_file
    reporter = reporter or PrintReporter()
    n = len(pool.texts)
    order = sorted(range(n), key=lambda i: len(pool.texts[i]))
    queued: Counter = Counter()

    def predict_fn(texts: list[str]) -> list[Prediction]:
        return _batched_predict(predictor, texts, batch_size)

    for chunk_start in range(0, n, CHUNK):
        idx = order[chunk_start : chunk_start + CHUNK]
        ids = [pool.text_ids[i] for i in idx]

        def on_batch(start: int, preds: list[Prediction], ids: list[int] = ids, offset: int = chunk_start) -> None:
            record_predictions(session, ids[start : start + len(preds)], preds, model_version)
            done = offset + start + len(preds)
            reporter.progress(done, n, f"scored {done}/{n} texts")
            reporter.check_cancelled()

        candidates = score_pool(
            predict_fn,
            [pool.texts[i] for i in idx],
            task_file,
            batch_size=batch_size,
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


def queue_annotator_conflicts(session: Session, task_file: TaskFile) -> int:
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


def score_pool_job(ctx: JobRun) -> dict:
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

            previous = previous_predictions(
                session, pool, previous_version, lambda: load_version_predictor(ctx.home, previous_version),
                reporter=ctx,
            )
        ctx.progress(0, n, f"scoring {n} texts with {version}")
        queued = score_and_store(
            session, predictor, pool, model_version=version, previous=previous,
            previous_version=previous_version, min_score=min_score, tasks=tasks,
            reporter=ctx,
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
