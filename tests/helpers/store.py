"""Shared helpers for the store tests (not collected: no test_ prefix)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mtl_core.store import add_annotation, add_texts, init_db, session_factory
from mtl_core.store.models import AnnotationEvent, TextRow

SHARED_TEXTS = [f"shared text number {i}" for i in range(20)]


def fresh_session(tmp_path: Path) -> Iterator[Session]:
    """A session on a brand-new, fully migrated SQLite file."""
    engine = init_db(f"sqlite:///{tmp_path / 'store.db'}")
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


def annotate_worker(url: str, worker: int, n: int) -> int:
    """One process of the concurrency test: migrate (racing the others), add the shared texts, annotate `n` times."""
    engine = init_db(url)
    with session_factory(engine)() as session:
        ids = add_texts(session, SHARED_TEXTS, source="concurrency")
        for i in range(n):
            add_annotation(
                session, ids[i % len(ids)], "sentiment", ["negative", "positive"][i % 2], f"w{worker}"
            )
    engine.dispose()
    return n


def run_concurrent_annotations(url: str, workers: int = 8, per_worker: int = 500) -> tuple[int, int]:
    """Hammer one database from `workers` spawned processes; returns (events, texts) stored afterwards."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(annotate_worker, url, w, per_worker) for w in range(workers)]
        assert sum(f.result() for f in futures) == workers * per_worker  # re-raises any worker's exception
    engine = init_db(url)
    with session_factory(engine)() as session:
        events = session.scalar(select(func.count()).select_from(AnnotationEvent))
        texts = session.scalar(
            select(func.count()).select_from(TextRow).where(TextRow.source == "concurrency")
        )
    engine.dispose()
    return events, texts
