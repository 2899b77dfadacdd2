"""The store against PostgreSQL: migration, concurrent writers, export/import round trip.

Skipped unless MTL_STUDIO_TEST_PG holds a SQLAlchemy URL (see .ci/start_postgres.sh).
"""

from __future__ import annotations

import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError

from mtl_core.store import (
    add_annotation,
    add_texts,
    current_labels,
    export_annotations_jsonl,
    import_annotations_jsonl,
    init_db,
    session_factory,
    top_queue,
    undo_last,
    upsert_queue_items,
)
from mtl_core.store.models import Base
from tests.helpers.store import SHARED_TEXTS, run_concurrent_annotations

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
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == ["0001"]
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
