"""Annotation import: all or nothing, without holding the store's write lock for the whole file.

1. prepare (no write lock): check every line, compute the event keys, read which events are already here;
2. stage (no write lock on the store): the new texts and events go into TEMPORARY tables private to this
   connection, `STAGE_ROWS` at a time;
3. publish: one short transaction copies them into `texts` and `annotation_events` with INSERT ... SELECT,
   inside the database.

Why not commit chunks straight into the log? It is append-only (triggers refuse DELETE), so chunks
committed before a failure could never be taken back, and readers would see half an import meanwhile. So
the import stays one transaction, but only the final copy holds SQLite's write lock (200k events: about
a second, against 97 s when rows went in one by one; `bench/system/import_lock.py` measures it).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Connection, Integer, MetaData, Table, and_, insert, select, true
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from mtl_core.store.annotations import event_key
from mtl_core.store.db import RETRY_ATTEMPTS, chunks, dialect_insert, is_locked_error, refresh_planner_stats
from mtl_core.store.import_checks import check_records
from mtl_core.store.import_file import ImportFileError, all_or_nothing, parse_time
from mtl_core.store.limits import check_string
from mtl_core.store.models import AnnotationEvent, TextRow, utcnow
from mtl_core.store.texts import content_hash
from mtl_core.tasks import TaskFile

STAGE_ROWS = 2_000  # rows per staging transaction
DEFAULT_SOURCE = "import"  # the text source of records that name none
EVENT_COLUMNS = ("event_key", "task", "kind", "value", "annotator", "source_annotator", "reason", "bulk_id",
                 "created_at")

_EVENTS, _TEXTS = AnnotationEvent.__table__, TextRow.__table__
_STAGE = MetaData()  # not the store's metadata: these tables live only as long as one import's connection
STAGED_TEXTS = Table(
    "mtl_import_texts", _STAGE,
    *(Column(name, _TEXTS.c[name].type) for name in ("source", "content_hash", "text", "created_at")),
    prefixes=["TEMPORARY"],
)
STAGED_EVENTS = Table(
    "mtl_import_events", _STAGE,
    Column("seq", Integer, primary_key=True),  # the line's place in the file: ids follow the file's order
    Column("wave", Integer),  # 0, or 1 for an undo of an event of this same file (its target goes first)
    Column("source", _TEXTS.c.source.type),
    Column("content_hash", _TEXTS.c.content_hash.type),
    Column("undoes_key", _EVENTS.c.event_key.type),
    *(Column(name, _EVENTS.c[name].type) for name in EVENT_COLUMNS),
    prefixes=["TEMPORARY"],
)


@dataclass
class Staged:
    """What an import will add: distinct new texts and new events (duplicates and known events dropped)."""

    texts: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


def import_annotation_records(
    session: Session, records: list[dict[str, Any]], task_file: TaskFile | None = None,
    *, importer: str | None = None,
) -> int:
    """Store the events of `read_records` records that this database lacks; returns how many were new.

    With `task_file`, tasks and values are checked against it. `importer` (team mode: the signed-in user)
    becomes the annotator of every imported event; the file's annotator is kept as `source_annotator`.
    A bad line raises ImportFileError naming it and stores nothing; nor does any later failure store a part.
    """
    if importer is not None:
        check_string("importer", importer, AnnotationEvent.annotator, nonempty=True)
    session.commit()  # end the caller's transaction: the import runs on a connection of its own
    bind = session.get_bind()
    with bind.engine.connect() as conn:
        with conn.begin():
            staged = prepare(conn, records, task_file, importer)
        added = _stage_and_publish(conn, staged) if staged.events else 0
    refresh_planner_stats(session, added, "annotation_events", "texts")
    session.commit()
    return added


def prepare(conn: Connection, records: list[dict[str, Any]], task_file: TaskFile | None,
            importer: str | None) -> Staged:
    """Check every record and build the rows to stage; raises ImportFileError naming the bad lines."""
    check_records(records, task_file)
    hashes = [content_hash(rec["text"]) for rec in records]
    keys = [_record_key(rec, h) for rec, h in zip(records, hashes, strict=True)]
    known = _existing_keys(conn, keys)
    waves = _waves(records, keys, known)
    staged, now = Staged(), utcnow()
    for seq, (rec, key, text_hash) in enumerate(zip(records, keys, hashes, strict=True)):
        if waves.get(key) is None:
            continue  # known here, or a repeated line
        source = rec.get("source") or DEFAULT_SOURCE
        staged.texts.setdefault((source, text_hash), {
            "source": source, "content_hash": text_hash, "text": rec["text"], "created_at": now})
        staged.events.append({
            "seq": seq, "wave": waves.pop(key), "source": source, "content_hash": text_hash,
            "undoes_key": rec.get("undoes_key"), "event_key": key, "task": rec["task"], "kind": rec["kind"],
            "value": rec.get("value"), "reason": rec.get("reason"), "created_at": parse_time(rec["created_at"]),
            "bulk_id": rec.get("bulk_id") or None,
            "annotator": importer or rec["annotator"],
            "source_annotator": (rec.get("source_annotator") or rec["annotator"]) if importer
            else rec.get("source_annotator") or None,
        })
    return staged


def _record_key(rec: dict[str, Any], text_hash: str) -> str:
    if rec.get("event_key"):
        return rec["event_key"]
    return event_key(text_hash, rec["task"], rec["kind"], rec.get("value"), rec["annotator"],
                     parse_time(rec["created_at"]), rec.get("undoes_key"))


def _existing_keys(conn: Connection, keys: list[str]) -> set[str]:
    known: set[str] = set()
    for batch in chunks(sorted(set(keys))):
        known.update(conn.scalars(select(_EVENTS.c.event_key).where(_EVENTS.c.event_key.in_(batch))))
    return known


def _waves(records: list[dict[str, Any]], keys: list[str], known: set[str]) -> dict[str, int]:
    """key -> publishing wave of each new event; an undo must find its target here or earlier in the file."""
    kinds: dict[str, str] = {}
    waves: dict[str, int] = {}
    errors = []
    for rec, key in zip(records, keys, strict=True):
        target = rec.get("undoes_key")
        in_file = bool(target) and target not in known
        if in_file and target not in kinds:
            errors.append(f"line {rec['_line']}: undoes an event found neither here nor earlier in the file")
        elif in_file and kinds[target] == "undo":
            errors.append(f"line {rec['_line']}: undoes an undo event; label the item again instead")
        if key not in known and key not in waves:
            waves[key] = 1 if in_file else 0
        kinds.setdefault(key, rec["kind"])
    if errors:
        raise ImportFileError(all_or_nothing(errors, len(records)))
    return waves


def stage_chunk(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """One staging transaction's worth of rows (a seam for tests that fail a late chunk)."""
    conn.execute(insert(table), rows)


def _stage_and_publish(conn: Connection, staged: Staged) -> int:
    try:
        with conn.begin():
            _drop_staging(conn)  # left by a crashed import on this pooled connection
            _STAGE.create_all(conn)
        for table, rows in ((STAGED_TEXTS, list(staged.texts.values())), (STAGED_EVENTS, staged.events)):
            for batch in chunks(rows, STAGE_ROWS):
                with conn.begin():
                    stage_chunk(conn, table, batch)
        return _publish_with_retry(conn, max(e["wave"] for e in staged.events))
    finally:
        _cleanup(conn)


def _drop_staging(conn: Connection) -> None:
    _STAGE.drop_all(conn, checkfirst=True)


def _cleanup(conn: Connection) -> None:
    if conn.in_transaction():
        conn.rollback()
    try:
        with conn.begin():
            _drop_staging(conn)
    except Exception:  # a broken connection: discard it, its temporary tables go with it
        conn.invalidate()


def _publish_with_retry(conn: Connection, last_wave: int) -> int:
    """Publish in one transaction; on "database is locked" (past the busy timeout) roll back and retry."""
    for attempt in range(RETRY_ATTEMPTS):
        try:
            with conn.begin(), _sqlite_big_cache(conn):
                return publish(conn, last_wave)
        except OperationalError as exc:
            if not is_locked_error(exc) or attempt == RETRY_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * 2**attempt * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


@contextmanager
def _sqlite_big_cache(conn: Connection) -> Iterator[None]:
    """A 256 MB page cache while publishing: the log's indexes then stay in memory during the copy."""
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql("PRAGMA cache_size = -262144")
    try:
        yield
    finally:
        conn.exec_driver_sql("PRAGMA cache_size = -2000")


def publish(conn: Connection, last_wave: int) -> int:
    """Copy the staged texts and events into the store (inside the caller's transaction); returns new events."""
    staged = STAGED_TEXTS.c
    texts = dialect_insert(conn, TextRow).from_select(
        ["source", "content_hash", "text", "created_at"],
        select(staged.source, staged.content_hash, staged.text, staged.created_at).where(true()),
    )  # WHERE: SQLite needs one before ON CONFLICT in an INSERT ... SELECT
    conn.execute(texts.on_conflict_do_nothing(index_elements=["source", "content_hash"]))
    return sum(publish_wave(conn, wave) for wave in range(last_wave + 1))


def publish_wave(conn: Connection, wave: int) -> int:
    ev, undone = STAGED_EVENTS.c, _EVENTS.alias("undone")
    rows = (
        select(*(ev[name] for name in EVENT_COLUMNS), _TEXTS.c.id, undone.c.id)
        .select_from(
            STAGED_EVENTS.join(_TEXTS, and_(_TEXTS.c.source == ev.source, _TEXTS.c.content_hash == ev.content_hash))
            .outerjoin(undone, undone.c.event_key == ev.undoes_key)
        )
        .where(ev.wave == wave)
        .order_by(ev.seq)
    )
    stmt = dialect_insert(conn, AnnotationEvent).from_select([*EVENT_COLUMNS, "text_id", "undoes_event_id"], rows)
    # DO NOTHING: a concurrent import of the same file may have published some of these keys meanwhile.
    stmt = stmt.on_conflict_do_nothing(index_elements=["event_key"])
    # preserve_rowcount: psycopg's cursor is closed by the time SQLAlchemy reads an INSERT's rowcount.
    return conn.execute(stmt.execution_options(preserve_rowcount=True)).rowcount
