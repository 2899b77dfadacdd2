"""Schema, migrations and connection settings."""

from __future__ import annotations

import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import DatabaseError, OperationalError

from mtl_core.store import (
    add_annotation,
    add_texts,
    database_url,
    init_db,
    make_engine,
    retry_locked,
    session_factory,
)
from mtl_core.store.db import alembic_config
from mtl_core.store.models import Base

TABLES = {
    "texts",
    "predictions",
    "annotation_events",
    "queue_items",
    "dataset_labels",
    "jobs",
    "job_metrics",
    "users",
    "signin_throttle",
    "alembic_version",
}


def test_migration_matches_orm_metadata(tmp_path):
    engine = init_db(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == TABLES
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diffs == []


def test_init_db_twice_is_a_noop(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with session_factory(init_db(url))() as session:
        text_id = add_texts(session, ["kept"])[0]
        add_annotation(session, text_id, "sentiment", "positive", "ann")
    engine = init_db(url)
    with engine.connect() as conn:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head]
        assert conn.execute(text("SELECT count(*) FROM annotation_events")).scalar() == 1


def test_signin_throttle_migration_goes_down_and_up(tmp_path):
    """0002 upgrades a 0001 database (users kept) and its downgrade removes only its own table."""
    from alembic import command

    url = f"sqlite:///{tmp_path / 'a.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0001")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (username, password_hash, role, created_at) "
                          "VALUES ('kept', 'x', 'admin', '2026-01-01 00:00:00')"))
    command.upgrade(cfg, "0002")
    with engine.connect() as conn:
        assert "signin_throttle" in inspect(conn).get_table_names()
        assert conn.execute(text("SELECT username FROM users")).scalars().all() == ["kept"]
    command.downgrade(cfg, "0001")
    with engine.connect() as conn:
        assert "signin_throttle" not in inspect(conn).get_table_names() and "users" in inspect(conn).get_table_names()


def test_sqlite_pragmas(tmp_path):
    engine = init_db(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_database_url_env_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("MTL_STUDIO_DATABASE_URL", raising=False)
    assert database_url(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mtl_studio.db'}"
    monkeypatch.setenv("MTL_STUDIO_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert database_url(tmp_path) == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize(
    "statement", ["UPDATE annotation_events SET value = '\"x\"'", "DELETE FROM annotation_events"]
)
def test_annotation_events_refuse_update_and_delete(tmp_path, statement):
    factory = session_factory(init_db(f"sqlite:///{tmp_path / 'a.db'}"))
    with factory() as session:
        text_id = add_texts(session, ["t"])[0]
        add_annotation(session, text_id, "sentiment", "positive", "ann")
        with pytest.raises(DatabaseError, match="append-only"):
            session.execute(text(statement))
        session.rollback()


def test_foreign_keys_enforced(tmp_path):
    factory = session_factory(init_db(f"sqlite:///{tmp_path / 'a.db'}"))
    with factory() as session, pytest.raises(ValueError, match="unknown text id"):
        add_annotation(session, 999, "sentiment", "positive", "ann")
    with factory() as session, pytest.raises(DatabaseError):
        session.execute(text("INSERT INTO dataset_labels (text_id, task, value) VALUES (999, 't', '1')"))
        session.commit()


def _locked() -> OperationalError:
    return OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))


def test_retry_locked_reruns_the_unit_of_work(tmp_path, monkeypatch):
    monkeypatch.setattr("mtl_core.store.db.time.sleep", lambda s: None)
    calls = []

    @retry_locked
    def flaky(session, value):
        calls.append(value)
        if len(calls) < 3:
            raise _locked()
        return value * 2

    factory = session_factory(init_db(f"sqlite:///{tmp_path / 'a.db'}"))
    with factory() as session:
        assert flaky(session, 21) == 42 and calls == [21, 21, 21]

        @retry_locked
        def broken(session):
            calls.append("broken")
            raise OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: nope"))

        with pytest.raises(OperationalError, match="no such table"):
            broken(session)
        assert calls.count("broken") == 1  # only lock contention is retried
