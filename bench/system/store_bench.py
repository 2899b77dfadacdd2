"""Store benchmark: 10,000 annotations, then top-100 queue reads at 10,000 and 100,000 queue items.

Usage: python bench/system/store_bench.py [--url sqlite:///path.db | postgresql+psycopg://...]
Without --url a throwaway SQLite file in a temp dir is used. Target: top-100 < 100 ms at 100k items.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `mtl_core` importable

from mtl_core.review.queue import Candidate
from mtl_core.store import (
    add_annotation,
    add_texts,
    current_labels,
    export_annotations_jsonl,
    init_db,
    queue_progress,
    session_factory,
    top_queue,
    upsert_queue_items,
)

REASONS = ["uncertain", "contradiction", "model_vs_label", "version_vs_version"]
TASKS = ["sentiment", "topic", "spam"]
ROWS: list[tuple[str, int, float, float]] = []  # (operation, n, total ms, ms per op)


def timed(name: str, fn: Callable[[], object], n: int = 1) -> object:
    start = time.perf_counter()
    result = fn()
    total = (time.perf_counter() - start) * 1000
    ROWS.append((name, n, total, total / n))
    return result


def repeat(name: str, fn: Callable[[], object], runs: int = 20) -> None:
    """Median of `runs` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    ROWS.append((name + f" (median of {runs})", runs, sum(times), statistics.median(times)))


def candidates(n: int, offset: int) -> list[Candidate]:
    rng = random.Random(offset)
    return [
        Candidate(i, "", rng.choice(REASONS), rng.choice(TASKS), rng.random(), f"bench item {i + offset}")
        for i in range(n)
    ]


def annotations_phase(session, n: int) -> list[int]:
    ids = timed(
        f"add_texts ({n} texts, one call)", lambda: add_texts(session, [f"bench text {i}" for i in range(n)])
    )
    rng = random.Random(0)

    def write() -> None:
        for i, text_id in enumerate(ids):
            add_annotation(session, text_id, rng.choice(TASKS), rng.choice(["a", "b"]), f"ann{i % 3}")

    timed("add_annotation (one commit each)", write, n)
    timed(f"upsert_queue_items ({n})", lambda: upsert_queue_items(session, candidates(n, 0), text_ids=ids), n)
    repeat(f"top_queue(100) at {n} items", lambda: top_queue(session, 100))
    timed("current_labels over all events", lambda: current_labels(session))
    with tempfile.TemporaryDirectory() as tmp:
        timed("export_annotations_jsonl", lambda: export_annotations_jsonl(session, Path(tmp) / "a.jsonl"), n)
    return ids


def queue_phase(session, n: int, existing: int) -> None:
    ids = timed(
        f"add_texts ({n} texts, one call)",
        lambda: add_texts(session, [f"pool text {i}" for i in range(n)], source="upload:bench"),
    )
    timed(f"upsert_queue_items ({n})", lambda: upsert_queue_items(session, candidates(n, 1), text_ids=ids), n)
    repeat(f"top_queue(100) at {n + existing} items", lambda: top_queue(session, 100))
    repeat("  ... exclude_done=False", lambda: top_queue(session, 100, exclude_done=False))
    repeat("  ... task='topic'", lambda: top_queue(session, 100, task="topic"))
    repeat("  ... reason='contradiction'", lambda: top_queue(session, 100, reason="contradiction"))
    repeat("queue_progress()", lambda: queue_progress(session), runs=5)


def print_table() -> None:
    width = max(len(r[0]) for r in ROWS)
    print(f"{'operation':<{width}}  {'n':>7}  {'total ms':>10}  {'ms/op':>9}")
    print("-" * (width + 32))
    for name, n, total, per in ROWS:
        print(f"{name:<{width}}  {n:>7}  {total:>10.1f}  {per:>9.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="SQLAlchemy URL (default: a temp SQLite file)")
    parser.add_argument("--annotations", type=int, default=10_000)
    parser.add_argument("--queue", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = timed("init_db (migrate)", lambda: init_db(url))
        with session_factory(engine)() as session:
            annotations_phase(session, args.annotations)
            queue_phase(session, args.queue, args.annotations)
        engine.dispose()
    print(f"database: {url.split('://')[0]}")
    print_table()
    top = next(r for r in ROWS if r[0].startswith(f"top_queue(100) at {args.queue + args.annotations}"))
    print(
        f"\ntop-100 at {args.queue + args.annotations} items: {top[3]:.2f} ms (target < 100 ms): "
        + ("OK" if top[3] < 100 else "TOO SLOW")
    )


if __name__ == "__main__":
    main()
