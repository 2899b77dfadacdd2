"""The store against PostgreSQL: migration, concurrent writers, export/import round trip.

Skipped unless MTL_STUDIO_TEST_PG holds a SQLAlchemy URL (see .ci/start_postgres.sh).
"""

from __future__ import annotations

import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError

from mtl_core.store import (
    add_annotation,
    add_texts,
    current_labels,
    export_annotations_jsonl,
    import_annotations_jsonl,
    importer,
    init_db,
    session_factory,
    top_queue,
    undo_last,
    upsert_queue_items,
)
from mtl_core.store.db import alembic_config
from mtl_core.store.models import AnnotationEvent, Base
from mtl_core.tasks import load_task_file
from tests.helpers.store import SHARED_TEXTS, run_concurrent_annotations
from tests.helpers.store_limits import assert_free_text_cleaned, assert_refused, refusals

PG_URL = os.environ.get("MTL_STUDIO_TEST_PG", "")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="set MTL_STUDIO_TEST_PG to a PostgreSQL URL"),
]


@pytest.fixture
def pg_url():
    """A brand-new database on the test server, dropped afterwards."""
    name = f"mtl_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migration_matches_orm(pg_url):
    engine = init_db(pg_url)
    init_db(pg_url).dispose()  # second run: no-op
    with engine.connect() as conn:
        assert "annotation_events" in inspect(conn).get_table_names()
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head]
        assert (
            compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
            == []
        )
    with session_factory(engine)() as session:
        text_id = add_texts(session, ["pg"])[0]
        add_annotation(session, text_id, "sentiment", "positive", "ann")
        with pytest.raises(DatabaseError, match="append-only"):
            session.execute(text("DELETE FROM annotation_events"))
    engine.dispose()


def test_concurrent_writers(pg_url):
    events, texts = run_concurrent_annotations(pg_url, workers=8, per_worker=500)
    assert (events, texts) == (4000, len(SHARED_TEXTS))


def test_round_trip_and_queue(pg_url, tmp_path):
    engine = init_db(pg_url)
    with session_factory(engine)() as session:
        t1, t2 = add_texts(session, ["Paris in spring", "Awful"])
        add_annotation(session, t1, "ner", [{"start": 0, "end": 5, "label": "geo-loc"}], "ann")
        add_annotation(session, t2, "sentiment", "positive", "ann")
        undo_last(session, "ann")
        add_annotation(session, t2, "sentiment", "negative", "ann")
        upsert_queue_items(
            session,
            [
                {"text_id": t1, "task": "ner", "reason": "uncertain", "score": 0.4},
                {"text_id": t2, "task": "topic", "reason": "contradiction", "score": 0.9},
            ],
        )
        assert [q.text_id for q in top_queue(session)] == [t2]  # t1's ner item is done
        path = tmp_path / "events.jsonl"
        assert export_annotations_jsonl(session, path) == 4
        assert import_annotations_jsonl(session, path) == 0
        before = {(c.text_id, c.task, str(c.value)) for c in current_labels(session)}
    with session_factory(init_db(f"sqlite:///{tmp_path / 'copy.db'}"))() as copy:
        assert import_annotations_jsonl(copy, path) == 4
        again = tmp_path / "again.jsonl"
        export_annotations_jsonl(copy, again)
        assert again.read_text() == path.read_text()
    assert len(before) == 2
    engine.dispose()


@pytest.fixture
def pg_session(pg_url):
    engine = init_db(pg_url)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


@pytest.mark.parametrize("call, words", refusals())
def test_refused_with_the_same_message_as_on_sqlite(pg_session, call, words):
    """Before: an uncaught DataError (NUL, value too long) half-way through the write; SQLite stored them."""
    assert_refused(pg_session, call, words)


def test_nul_in_free_text_becomes_a_replacement_character(pg_session):
    assert_free_text_cleaned(pg_session)


def test_chunked_team_import_with_an_undo_wave(pg_session, tmp_path, monkeypatch):
    """The import stages in TEMPORARY tables and publishes with INSERT ... SELECT on PostgreSQL too."""
    monkeypatch.setattr(importer, "STAGE_ROWS", 2)
    path = tmp_path / "events.jsonl"
    with session_factory(init_db(f"sqlite:///{tmp_path / 'source.db'}"))() as source:
        t1, t2 = add_texts(source, ["Paris in spring", "Awful"], source="upload:demo")
        add_annotation(source, t1, "ner", [{"start": 0, "end": 5, "label": "geo-loc"}], "ann")
        add_annotation(source, t2, "sentiment", "positive", "ann")
        undo_last(source, "ann")
        add_annotation(source, t2, "sentiment", "negative", "bob", reason="adjudication")
        assert export_annotations_jsonl(source, path) == 4
    assert import_annotations_jsonl(pg_session, path, load_task_file(), importer="rita") == 4
    assert import_annotations_jsonl(pg_session, path) == 0  # same event keys: nothing twice
    labels = {(c.task, c.annotator, str(c.value)) for c in current_labels(pg_session)}
    assert labels == {("ner", "rita", "[{'start': 0, 'end': 5, 'label': 'geo-loc'}]"),
                      ("sentiment", "rita", "negative")}
    query = select(AnnotationEvent.source_annotator).order_by(AnnotationEvent.created_at, AnnotationEvent.id)
    assert pg_session.scalars(query).all() == ["ann", "ann", "ann", "bob"]
