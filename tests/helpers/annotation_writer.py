"""A writer process for tests/ops/test_crash_safety.py (not collected): `python annotation_writer.py URL TAG`.

Loops forever, each pass committing one annotation event (prints `event ID`) and every fifth pass one batch
of BATCH texts in a single transaction (prints `batch NAME`); every line is printed after its commit and
flushed, so whatever the parent read before its SIGKILL is known to be committed.
"""

from __future__ import annotations

import sys

from mtl_core.store import add_annotation, add_texts, init_db, session_factory

BATCH = 100


def main(url: str, tag: str) -> None:
    engine = init_db(url)
    with session_factory(engine)() as session:
        ids = add_texts(session, [f"kill test text {i}" for i in range(40)], source="kill")
        n = 0
        while True:
            event = add_annotation(session, ids[n % len(ids)], "sentiment", ["negative", "positive"][n % 2],
                                   f"writer-{tag}")
            print(f"event {event.id}", flush=True)
            if n % 5 == 0:
                name = f"batch-{tag}-{n}"
                add_texts(session, [f"{name} text {i}" for i in range(BATCH)], source=name)
                print(f"batch {name}", flush=True)
            n += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
