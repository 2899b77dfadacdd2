"""How long does a large annotation import block another annotator's save?

Imports an N-line JSONL export (default 200,000 label events over 50,000 texts, 1 % undos) while a
second process saves an annotation every 20 ms, and prints the import's phases and the other writer's
waits. Target: the longest wait <= ~1 s on SQLite (it was 88 s when the import held the write lock from
its first row to its commit).

Usage: python bench/system/import_lock.py [--lines N] [--url sqlite:///path.db | postgresql+psycopg://...]
Without --url a throwaway SQLite file in a temp dir is used.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `mtl_core` importable

from mtl_core.store import add_annotation, add_texts, importer, init_db, session_factory
from mtl_core.store.import_file import read_records
from mtl_core.tasks import load_task_file

PHASES: dict[str, list[float]] = {}  # name -> [wall s, CPU s of this process]


def export_lines(n: int, texts: int) -> bytes:
    """`n` events as an export would hold them: labels, and an undo after every 100th label."""
    lines, labels = [], ["negative", "positive"]
    for i in range(n):
        key = f"{i:064x}"
        lines.append({"event_key": key, "text": f"bench text {i % texts}: a review of a film", "source": "bench",
                      "task": "sentiment", "kind": "label", "value": labels[i % 2], "annotator": f"ann{i % 5}",
                      "reason": "uncertain", "undoes_key": None, "created_at": f"2024-01-01T00:00:{i % 60:02d}"})
        if i % 100 == 99 and len(lines) < n:
            lines.append({**lines[-1], "event_key": f"{i:063x}u", "kind": "undo", "value": None,
                          "undoes_key": key})
    return "\n".join(json.dumps(line) for line in lines[:n]).encode()


def other_writer(url: str, text_id: int, started: Any, stop: Any, out: Any) -> None:
    """Another annotator: one save every 20 ms until told to stop; sends back each save's duration."""
    engine = init_db(url)
    waits = []
    with session_factory(engine)() as s:
        started.set()
        while not stop.is_set():
            begin = time.perf_counter()
            add_annotation(s, text_id, "sentiment", "positive", "other annotator")
            waits.append(time.perf_counter() - begin)
            time.sleep(0.02)
    engine.dispose()
    out.put(waits)


def timed_phase(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent = PHASES.setdefault(name, [0.0, 0.0])
            spent[0] += time.perf_counter() - wall
            spent[1] += time.process_time() - cpu
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--texts", type=int, default=50_000)
    ap.add_argument("--url", default=None)
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    url = args.url or f"sqlite:///{Path(tmp.name) / 'import_lock.db'}"
    engine = init_db(url)
    sessions = session_factory(engine)
    with sessions() as s:
        (text_id,) = add_texts(s, ["the other annotator's text"], source="predict")
    records = read_records(export_lines(args.lines, args.texts))
    importer.prepare = timed_phase("prepare: check lines, keys, known events", importer.prepare)
    importer.stage_chunk = timed_phase("stage: temporary tables, in chunks", importer.stage_chunk)
    importer.publish = timed_phase("publish: the one write transaction", importer.publish)

    ctx = multiprocessing.get_context("spawn")
    started, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    writer = ctx.Process(target=other_writer, args=(url, text_id, started, stop, out))
    writer.start()
    started.wait(60)
    time.sleep(0.2)
    begin = time.perf_counter()
    with sessions() as s:
        added = importer.import_annotation_records(s, records, load_task_file())
    total = time.perf_counter() - begin
    time.sleep(0.2)
    stop.set()
    waits = out.get(timeout=60)
    writer.join()
    engine.dispose()

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{args.lines:,} lines ({added:,} new events) into {engine.url.get_backend_name()}, "
          f"stage chunk {importer.STAGE_ROWS:,} rows; {os.cpu_count()} CPUs, load average {load}\n")
    # CPU seconds: what a step costs on an idle machine, whatever the neighbours of a shared one do.
    print("| step | wall s | CPU s |\n|---|---:|---:|")
    for name, (wall, cpu) in PHASES.items():
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")
    print(f"| whole import | {total:.2f} | |\n")
    print("| other writer during the import | value |\n|---|---:|")
    print(f"| saves | {len(waits):,} |")
    print(f"| median wait (s) | {statistics.median(waits):.3f} |")
    print(f"| longest wait (s) | {max(waits):.3f} |")
    print(f"\nTarget longest wait <= ~1 s: {'OK' if max(waits) <= 1.2 else 'MISSED'}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
