"""Engine, sessions, migrations and the retry that hides SQLite's "database is locked"."""

from __future__ import annotations

import functools
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mtl_core.workspace import workspace_dir

try:
    import fcntl
except ImportError:  # Windows: no file locks, migrations just aren't serialised there
    fcntl = None  # type: ignore[assignment]

ENV_URL = "MTL_STUDIO_DATABASE_URL"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_MS = 30_000
RETRY_ATTEMPTS = 8
BULK_ROWS = 1000

T = TypeVar("T")


def database_url(workspace: Path) -> str:
    """The env var wins; otherwise a SQLite file inside the workspace."""
    url = os.environ.get(ENV_URL, "").strip()
    if url:
        return url
    return f"sqlite:///{Path(workspace).resolve() / 'mtl_studio.db'}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the app read while a worker writes; NORMAL sync is safe under WAL and far faster.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine; SQLite gets WAL, a 30 s busy timeout and foreign keys on every connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # psycopg prepares a statement after 5 runs; PostgreSQL then may switch to a generic plan
        # that ignores LIMIT 100 and scans the whole queue (x30 slower): plan every query afresh.
        args = {"prepare_threshold": None} if parsed.get_driver_name() == "psycopg" else {}
        return create_engine(url, pool_pre_ping=True, connect_args=args)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


Sessions = sessionmaker[Session]  # the type every store caller passes around: `with sessions() as s: ...`


def session_factory(engine: Engine) -> Sessions:
    """Sessions keep loaded objects usable after commit (the app renders them afterwards)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def alembic_config(url: str | None = None) -> Any:
    """An Alembic Config built in code: users never need an alembic.ini."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations when the app and a worker start on a fresh SQLite file at the same moment.

    Held until after the commit: a second migrator must see the first one's version row.
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or fcntl is None:
        yield
        return
    with open(f"{database}.migrate.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def init_db(url: str) -> Engine:
    """Create or upgrade the schema to the latest revision (a no-op when current); returns the engine."""
    from alembic import command

    engine = make_engine(url)
    cfg = alembic_config(url)
    with _migration_lock(engine), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text("SELECT pg_advisory_xact_lock(724310155)")
            )  # PostgreSQL's twin of the file lock
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return engine


def dialect_insert(session: Session | Connection, model: Any) -> Any:
    """INSERT with `on_conflict_do_*` for the two supported back ends (SQLite, PostgreSQL)."""
    name = (session.dialect if isinstance(session, Connection) else session.get_bind().dialect).name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        raise NotImplementedError(f"MTL Studio's store supports SQLite and PostgreSQL, not {name}")
    return insert(model)


def execute_many(session: Session, stmt: Any, rows: list[dict[str, Any]]) -> None:
    """One executemany (much faster than multi-row VALUES, which recompiles per batch); skips empty input."""
    if rows:
        session.execute(stmt, rows)


# Literal statements only (tests/test_security_static.py): no SQL is ever built from a string at run time.
_ANALYZE = {
    "texts": text("ANALYZE texts"),
    "predictions": text("ANALYZE predictions"),
    "queue_items": text("ANALYZE queue_items"),
    "annotation_events": text("ANALYZE annotation_events"),
}


def refresh_planner_stats(session: Session, rows: int, *tables: str) -> None:
    """ANALYZE after a bulk write on PostgreSQL.

    Autovacuum refreshes statistics only about once a minute; until then a freshly filled table
    looks empty and the queue query degrades into a nested scan (x50 slower at 10k rows).
    """
    if rows >= BULK_ROWS and session.get_bind().dialect.name == "postgresql":
        for table in tables:
            session.execute(_ANALYZE[table])


def chunks(items: list[T], size: int = 500) -> list[list[T]]:
    """Batches small enough for any back end's bound-parameter limit."""
    return [items[i : i + size] for i in range(0, len(items), size)]


# Transient contention: SQLite's lock, PostgreSQL's deadlock/serialization aborts.
_RETRYABLE = (
    "database is locked",
    "database is busy",
    "database table is locked",
    "deadlock detected",
    "could not serialize access",
)


def is_locked_error(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return any(marker in text for marker in _RETRYABLE)


def retry_locked(fn: Callable[..., T]) -> Callable[..., T]:
    """Run `fn(session, ...)` then commit; on "database is locked" roll back and run it again.

    The whole unit of work is repeated because a failed flush leaves nothing to re-commit.
    """

    @functools.wraps(fn)
    def wrapper(session: Session, *args: Any, **kwargs: Any) -> T:
        for attempt in range(RETRY_ATTEMPTS):
            try:
                result = fn(session, *args, **kwargs)
                session.commit()
                return result
            except OperationalError as exc:
                session.rollback()
                if not is_locked_error(exc) or attempt == RETRY_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * 2**attempt * random.uniform(0.5, 1.5))
        raise AssertionError("unreachable")

    return wrapper


def open_store(home: str | Path | None = None) -> tuple[Engine, Sessions]:
    """(engine, sessionmaker) for the workspace's database, migrated to the latest schema."""
    engine = init_db(database_url(workspace_dir(home)))
    return engine, session_factory(engine)
