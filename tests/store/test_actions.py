"""Actions tied to the drawn item (store.actions): a stale or repeated click is refused, never applied to
another item and never stored twice; one undo takes a bulk action back whole; and the annotator's figures
and the final labels built from the log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mtl_core.store import actions as store_actions
from mtl_core.store import add_annotation, add_texts, history
from mtl_core.store.actions import Action, Drawn, StaleAction, record_drawn, text_version, undo_latest
from mtl_core.store.final_labels import final_labels
from mtl_core.store.models import AnnotationEvent, utcnow
from mtl_core.store.stats import annotator_stats, skipped_items


def _drawn(s, text_id: int, annotator: str = "alice", task: str = "sentiment") -> Drawn:
    return Drawn(7, text_id, task, text_version(s, text_id, annotator))


def _count(s) -> int:
    return s.scalar(select(func.count()).select_from(AnnotationEvent))


def test_a_click_delivered_twice_is_stored_once(sessions):
    with sessions() as s:
        a, b = add_texts(s, ["first text", "second text"])
        drawn = _drawn(s, a)
        record_drawn(s, drawn, "alice", [Action(a, "sentiment", "accept", "positive", "uncertain")])
        with pytest.raises(StaleAction):  # the second delivery of the same click
            record_drawn(s, drawn, "alice", [Action(a, "sentiment", "accept", "positive", "uncertain")])
        with pytest.raises(StaleAction):  # another button of the same drawn item
            record_drawn(s, drawn, "alice", [Action(a, "sentiment", "skip", None, "uncertain")])
        assert [(e.kind, e.value) for e in history(s, a)] == [("accept", "positive")]
        assert history(s, b) == []  # never applied to the next item


def test_the_idempotency_key_holds_when_two_processes_pass_the_version_check(sessions, monkeypatch):
    """A race the version check cannot see (two processes read the version before either writes): the
    event's key, made of the drawn item and the target, collides in the log's unique column."""
    with sessions() as s:
        [a] = add_texts(s, ["raced text"])
        drawn = _drawn(s, a)
        record_drawn(s, drawn, "alice", [Action(a, "sentiment", "label", "negative")])
        monkeypatch.setattr(store_actions, "text_version", lambda *_: drawn.version)
        with pytest.raises(StaleAction, match="already recorded"):
            record_drawn(s, drawn, "alice", [Action(a, "sentiment", "label", "negative")])
        assert _count(s) == 1


def test_undo_makes_the_item_drawable_again_and_an_old_button_stale(sessions):
    with sessions() as s:
        [a] = add_texts(s, ["undo me"])
        before = _drawn(s, a)
        [event] = record_drawn(s, before, "alice", [Action(a, "sentiment", "label", "negative")])
        with pytest.raises(StaleAction):
            undo_latest(s, "alice", expect_event_id=event.id + 1)  # drawn for another event
        assert [e.kind for e in undo_latest(s, "alice", expect_event_id=event.id)] == ["undo"]
        with pytest.raises(StaleAction):  # Undo pressed twice undoes once
            undo_latest(s, "alice", expect_event_id=event.id)
        with pytest.raises(StaleAction):  # the button drawn before the label: the text moved on since
            record_drawn(s, before, "alice", [Action(a, "sentiment", "label", "positive")])
        record_drawn(s, _drawn(s, a), "alice", [Action(a, "sentiment", "label", "positive")])  # drawn afresh
        assert [e.kind for e in history(s, a)] == ["label", "undo", "label"]


def test_one_undo_takes_a_bulk_action_back_whole(sessions):
    with sessions() as s:
        a, b, c, d = add_texts(s, ["shown", "twin one", "twin two", "unrelated"])
        add_annotation(s, d, "sentiment", "positive", "alice")
        events = record_drawn(s, _drawn(s, a), "alice", [Action(t, "sentiment", "label", "negative", "uncertain")
                                                         for t in (a, b, c)], bulk=True)
        assert len({e.bulk_id for e in events}) == 1 and events[0].bulk_id
        undone = undo_latest(s, "alice")
        assert sorted(e.text_id for e in undone) == sorted([a, b, c]) and {e.bulk_id for e in undone} == {events[0].bulk_id}
        assert [e.kind for e in history(s, d)] == ["label"]  # the action before the bulk one is kept
        assert [e.text_id for e in undo_latest(s, "alice")] == [d]


def test_skipped_items_and_figures(sessions):
    with sessions() as s:
        a, b, c, d = add_texts(s, ["skipped", "skipped then labelled", "labelled by bob too", "skip undone"])
        add_annotation(s, a, "topic", None, "alice", kind="skip")
        add_annotation(s, b, "topic", None, "alice", kind="skip")
        add_annotation(s, b, "topic", "sport", "alice")
        add_annotation(s, c, "topic", "tech", "alice")
        add_annotation(s, c, "topic", "tech", "bob")
        add_annotation(s, b, "topic", "business", "bob")
        add_annotation(s, d, "topic", None, "alice", kind="skip")
        undo_latest(s, "alice")
        assert [(i.text_id, i.task) for i in skipped_items(s, "alice")] == [(a, "topic")]
        figures = annotator_stats(s, "alice", utcnow() - timedelta(hours=1))
        assert (figures.labelled_today, figures.skipped, figures.compared) == (2, 1, 2)
        assert figures.agreement == pytest.approx(0.5)  # c agrees with bob, b does not
        assert annotator_stats(s, "alice", utcnow() + timedelta(hours=1)).labelled_today == 0


def test_final_labels_after_undo_and_adjudication(sessions):
    with sessions() as s:
        a, b, c, d = add_texts(s, ["agreed", "adjudicated", "tied", "undone"])
        for who in ("alice", "bob"):
            add_annotation(s, a, "sentiment", "positive", who)
        add_annotation(s, b, "sentiment", "positive", "alice")
        add_annotation(s, b, "sentiment", "negative", "bob")
        add_annotation(s, b, "sentiment", "negative", "carol", reason="adjudication")
        add_annotation(s, c, "sentiment", "positive", "alice")
        add_annotation(s, c, "sentiment", "negative", "bob")
        add_annotation(s, d, "sentiment", "positive", "dave")
        undo_latest(s, "dave")
        rows = {r.text: (r.value, r.status, r.annotators) for r in final_labels(s, "sentiment")}
    assert rows == {"agreed": ("positive", "agreed", 2), "adjudicated": ("negative", "adjudicated", 3),
                    "tied": (None, "conflict", 2)}


def test_bulk_id_migration_keeps_events_and_the_append_only_triggers(tmp_path):
    """0004 adds the bulk_id column to a 0003 database without a rewrite: events kept, still append-only."""
    from alembic import command
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import DatabaseError

    from mtl_core.store.db import alembic_config, make_engine

    url = f"sqlite:///{tmp_path / 'a.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0003")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO texts (text, source, content_hash, created_at) VALUES ('t', 'p', 'h', "
                          "'2026-01-01 00:00:00')"))
        conn.execute(text("INSERT INTO annotation_events (event_key, text_id, task, kind, value, annotator, "
                          "created_at) VALUES ('k', 1, 'sentiment', 'label', '\"positive\"', 'ann', "
                          "'2026-01-01 00:00:00')"))
    command.upgrade(cfg, "0004")
    with engine.connect() as conn:
        assert "bulk_id" in {c["name"] for c in inspect(conn).get_columns("annotation_events")}
        assert conn.execute(text("SELECT annotator, bulk_id FROM annotation_events")).all() == [("ann", None)]
        with pytest.raises(DatabaseError, match="append-only"):
            conn.execute(text("UPDATE annotation_events SET bulk_id = 'x'"))
    command.downgrade(cfg, "0003")
    with engine.connect() as conn:
        assert "bulk_id" not in {c["name"] for c in inspect(conn).get_columns("annotation_events")}
    engine.dispose()


def test_a_bulk_action_survives_export_and_import_whole(sessions, tmp_path):
    from mtl_core.store import export_annotations_jsonl, import_annotations_jsonl
    from mtl_core.store.db import open_store

    with sessions() as s:
        ids = add_texts(s, ["one", "two", "three"])
        record_drawn(s, _drawn(s, ids[0]), "alice", [Action(t, "sentiment", "label", "negative") for t in ids],
                     bulk=True)
        export_annotations_jsonl(s, tmp_path / "a.jsonl")
    engine, other = open_store(tmp_path / "other")
    with other() as s:
        assert import_annotations_jsonl(s, tmp_path / "a.jsonl") == 3
        assert len(undo_latest(s, "alice")) == 3  # the imported bulk action is still undone whole
    engine.dispose()
