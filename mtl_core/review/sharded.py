"""Pool scoring on several processes, and resumable: answers already stored for the version are reused.

Rank 0 runs the `score_pool` job much as `review.jobs.score_pool_job` does, and is the store's only
writer: it reads the pool, stores every answer once and fills the queue. Its predictor is a
`ShardedPredictor`: each `predict` call is split over the ranks (each takes a stride of the texts, on its
own GPU or CPU cores) and the answers come back to rank 0 in order. The other ranks `serve` until rank 0
says stop. Rank 0 needs nothing but `torch.distributed` from the launcher (mtl_core.ops.distributed_jobs).

Resuming: texts whose answers of this version are already in the store are not predicted again, so a
job that crashed is resumed by starting it again. Their queue items are rebuilt from the stored answers
(a crash may fall between storing a batch and queueing its chunk; upserting twice changes nothing).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence

import torch.distributed as dist
from sqlalchemy.orm import Session

from mtl_core.progress import JobRun
from mtl_core.review.jobs import (
    BATCH_SIZE,
    DEFAULT_MIN_SCORE,
    previous_predictions,
    queue_annotator_conflicts,
    score_and_store,
)
from mtl_core.review.pools import DEFAULT_LIMIT, Pool, load_pool, parse_pool
from mtl_core.review.queue import score_pool
from mtl_core.serve.predictor import load_version_predictor
from mtl_core.store import load_predictions, upsert_queue_items
from mtl_core.tasks import DEFAULT_TASK_FILE, TaskFile
from mtl_core.types import Prediction


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _order(order: tuple | None) -> tuple | None:
    """Rank 0 sends the next order (None = stop) to every rank; the others receive it."""
    box = [order]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class ShardedPredictor:
    """Rank 0's stand-in for a Predictor: `predict` runs on every rank, a stride of the texts each."""

    def __init__(self, local, load_key: str | None):
        self.local, self.load_key = local, load_key  # load_key: what the other ranks load (None = active)
        self.task_file, self.meta, self.version = local.task_file, local.meta, local.version
        self.world = _world()[1]

    def predict(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> list[Prediction]:
        texts = list(texts)
        if self.world == 1:
            return self.local.predict(texts, batch_size=batch_size)
        shards = [texts[r :: self.world] for r in range(self.world)]
        per_rank = max(1, batch_size // self.world)
        _order((self.load_key, shards, per_rank))
        mine = self.local.predict(shards[0], batch_size=per_rank) if shards[0] else []
        parts: list = [None] * self.world
        dist.gather_object(mine, parts, dst=0)
        return [parts[i % self.world][i // self.world] for i in range(len(texts))]


def stop_serving() -> None:
    """Rank 0, however it ended: release the other ranks from `serve`."""
    if _world()[1] > 1:
        _order(None)


def serve(load: Callable[[str | None], object]) -> None:
    """A rank other than 0: answer rank 0's predict calls (loading each version once) until it says stop."""
    rank, _ = _world()
    loaded: dict = {}
    while (order := _order(None)) is not None:
        key, shards, per_rank = order
        if key not in loaded:
            loaded[key] = load(key)
        mine = shards[rank]
        dist.gather_object(loaded[key].predict(mine, batch_size=per_rank) if mine else [], None, dst=0)


def requeue_stored(session: Session, pool: Pool, stored: Sequence[Prediction], task_file: TaskFile, *,
                   model_version: str, previous: Sequence[Prediction | None] | None, previous_version: str | None,
                   min_score: float, tasks) -> Counter:
    """Queue items from answers already in the store (no model call); -> queued items per reason."""
    answers = iter(stored)
    candidates = score_pool(lambda batch: [next(answers) for _ in batch], pool.texts, task_file, labels=pool.labels,
                            previous=previous, model_version=model_version, previous_version=previous_version,
                            min_score=min_score)
    if tasks is not None:
        candidates = [c for c in candidates if c.reason == "contradiction" or c.task in tasks]
    upsert_queue_items(session, candidates, text_ids=pool.text_ids, pool=pool.spec.name, model_version=model_version)
    return Counter(c.reason for c in candidates)


def _subset(pool: Pool, idx: list[int]) -> Pool:
    labels = [pool.labels[i] for i in idx] if pool.labels is not None else None
    return Pool(pool.spec, [pool.text_ids[i] for i in idx], [pool.texts[i] for i in idx], labels)


def score_pool_ranked(ctx: JobRun) -> dict | None:
    """The `score_pool` job on one rank of several: rank 0 scores (its result), the others serve (None)."""
    if _world()[0] != 0:
        serve(lambda key: load_version_predictor(ctx.home, key))
        return None
    try:
        return score_pool_resumable(ctx)
    finally:
        stop_serving()


def score_pool_resumable(ctx: JobRun) -> dict:
    """Like `score_pool_job` (same params, same result, plus `resumed` and `processes`), skipping stored answers."""
    started = time.perf_counter()
    params = ctx.params
    pool_name = str(params["pool"])
    spec = parse_pool(pool_name)
    tasks = params.get("tasks") or ([spec.task] if spec.kind == "dataset" else None)
    previous_version = params.get("previous_version") or None
    min_score = float(params.get("min_score", DEFAULT_MIN_SCORE))
    world = _world()[1]
    ctx.progress(0, None, "loading the model")
    local = load_version_predictor(ctx.home, params.get("model_version") or None)
    predictor, version = ShardedPredictor(local, local.version), local.version or "unversioned"
    with ctx.sessions() as session:
        pool = load_pool(session, pool_name, ctx.home, int(params.get("limit") or DEFAULT_LIMIT),
                         task_file_path=params.get("task_file") or DEFAULT_TASK_FILE)
        previous = None
        if previous_version and previous_version != version:
            previous = previous_predictions(
                session, pool, previous_version,
                lambda: ShardedPredictor(load_version_predictor(ctx.home, previous_version), previous_version),
                batch_size=BATCH_SIZE * world, reporter=ctx)
        stored = load_predictions(session, pool.text_ids, version)
        todo = [i for i, p in enumerate(stored) if p is None]
        done = [i for i, p in enumerate(stored) if p is not None]
        ctx.log(f"pool {pool_name}: {len(stored)} texts, model {version}, {world} process(es); "
                f"{len(done)} already scored by {version} (not predicted again)")
        queued = Counter()
        if done:
            queued += requeue_stored(session, _subset(pool, done), [stored[i] for i in done], local.task_file,
                                     model_version=version, previous=_pick(previous, done),
                                     previous_version=previous_version, min_score=min_score, tasks=tasks)
        ctx.progress(0, len(todo), f"scoring {len(todo)} texts with {version} on {world} process(es)")
        queued += score_and_store(session, predictor, _subset(pool, todo), model_version=version,
                                  previous=_pick(previous, todo), previous_version=previous_version,
                                  min_score=min_score, tasks=tasks, batch_size=BATCH_SIZE * world, reporter=ctx)
        conflicts = queue_annotator_conflicts(session, local.task_file)
    seconds = time.perf_counter() - started
    n = len(stored)
    result = {"pool": pool_name, "model_version": version, "previous_version": previous_version, "texts": n,
              "queued": sum(queued.values()), "by_reason": dict(queued), "annotator_conflicts": conflicts,
              "seconds": round(seconds, 2), "texts_per_s": round(len(todo) / seconds, 1) if seconds > 0 else None,
              "resumed": len(done), "processes": world}
    ctx.progress(n, n, f"done: {len(todo)} texts scored ({len(done)} already were), {result['queued']} queue items")
    ctx.log(str(result))
    return result


def _pick(seq: Sequence | None, idx: list[int]) -> list | None:
    return [seq[i] for i in idx] if seq is not None else None
