"""Append-only annotation log, current labels, conflicts, kappa, export/import."""

from __future__ import annotations

import json
import random

import pytest
from sqlalchemy import func, select

from mtl_core.store import (
    add_annotation,
    add_texts,
    annotator_conflicts,
    cohen_kappa,
    current_labels,
    export_annotations_jsonl,
    export_conll,
    history,
    import_annotations_jsonl,
    init_db,
    session_factory,
    undo_last,
)
from mtl_core.store.annotations import kappa
from mtl_core.store.models import AnnotationEvent, TextRow
from tests.helpers.store import fresh_session


@pytest.fixture
def session(tmp_path):
    yield from fresh_session(tmp_path)


def _count(session, model=AnnotationEvent):
    return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("returning", [True, False], ids=["upsert-returning", "old-sqlite-fallback"])
def test_add_texts_dedupes_within_source(session, monkeypatch, returning):
    monkeypatch.setattr(session.get_bind().dialect, "insert_executemany_returning", returning)
    ids = add_texts(session, ["a", "b", "a"], source="upload:x")
    assert ids[0] == ids[2] != ids[1]
    assert add_texts(session, ["b"], source="upload:x") == [ids[1]]
    assert add_texts(session, ["b"], source="predict") != [ids[1]]  # another source keeps its own copy
    assert _count(session, TextRow) == 3


def test_undo_appends_and_history_keeps_everything(session):
    t = add_texts(session, ["I loved it"])[0]
    first = add_annotation(session, t, "sentiment", "negative", "ann", reason="uncertain")
    second = add_annotation(session, t, "sentiment", "positive", "ann")
    undo = undo_last(session, "ann")
    assert undo.kind == "undo" and undo.undoes_event_id == second.id
    events = history(session, t)
    assert [e.kind for e in events] == ["label", "label", "undo"]
    assert [e.value for e in events[:2]] == ["negative", "positive"]  # nothing overwritten
    assert events[0].id == first.id and _count(session) == 3


def test_current_labels_follow_undo(session):
    t1, t2 = add_texts(session, ["one", "two"])
    add_annotation(session, t1, "sentiment", "negative", "ann")
    add_annotation(session, t1, "sentiment", "positive", "ann")
    add_annotation(session, t2, "sentiment", "positive", "ann")
    add_annotation(session, t1, "sentiment", "negative", "bob")
    assert {(c.text_id, c.annotator): c.value for c in current_labels(session)} == {
        (t1, "ann"): "positive",
        (t2, "ann"): "positive",
        (t1, "bob"): "negative",
    }
    undo_last(session, "ann")  # cancels t2
    undo_last(session, "ann")  # cancels t1=positive: t1 falls back to negative
    labels = {(c.text_id, c.annotator): c.value for c in current_labels(session, "sentiment")}
    assert labels == {(t1, "ann"): "negative", (t1, "bob"): "negative"}
    undo_last(session, "ann")
    assert undo_last(session, "ann") is None  # nothing effective left
    assert {c.annotator for c in current_labels(session)} == {"bob"}


def test_skip_is_not_a_label(session):
    t = add_texts(session, ["meh"])[0]
    add_annotation(session, t, "sentiment", None, "ann", kind="skip")
    assert current_labels(session) == []
    with pytest.raises(ValueError, match="undo_last"):
        add_annotation(session, t, "sentiment", None, "ann", kind="undo")


def test_annotator_conflicts(session):
    t1, t2, t3 = add_texts(session, ["one", "two", "three"])
    add_annotation(session, t1, "sentiment", "positive", "ann")
    add_annotation(session, t1, "sentiment", "negative", "bob")
    add_annotation(session, t2, "sentiment", "positive", "ann")
    add_annotation(session, t2, "sentiment", "positive", "bob")
    add_annotation(session, t3, "ner", [{"start": 0, "end": 3, "label": "person"}], "ann")
    add_annotation(session, t3, "ner", [{"label": "person", "end": 3, "start": 0}], "bob")
    conflicts = annotator_conflicts(session, "sentiment")
    assert [(c.text_id, c.values) for c in conflicts] == [(t1, {"ann": "positive", "bob": "negative"})]
    assert annotator_conflicts(session, "ner") == []  # same spans, keys in another order


def test_cohen_kappa_constructed(session):
    ids = add_texts(session, [f"text {i}" for i in range(10)])
    a = ["pos"] * 5 + ["neg"] * 5
    b = ["pos"] * 4 + ["neg"] * 5 + ["pos"]  # agree on 8 of 10; both 50/50 -> p_e = 0.5, kappa = 0.6
    c = list(a)
    for i, t in enumerate(ids):
        add_annotation(session, t, "sentiment", a[i], "a")
        add_annotation(session, t, "sentiment", b[i], "b")
        add_annotation(session, t, "sentiment", c[i], "c")
    kappa = cohen_kappa(session, "sentiment")
    assert kappa[("a", "b")] == pytest.approx(0.6)
    assert kappa[("a", "c")] == pytest.approx(1.0)
    assert kappa[("b", "c")] == pytest.approx(0.6)


def test_export_import_round_trip_without_duplicates(session, tmp_path):
    t1, t2 = add_texts(session, ["Paris is nice", "Bad movie"], source="upload:demo")
    add_annotation(session, t1, "ner", [{"start": 0, "end": 5, "label": "geo-loc"}], "ann")
    add_annotation(session, t2, "sentiment", "positive", "ann")
    add_annotation(session, t2, "sentiment", "negative", "bob")
    undo_last(session, "ann")
    add_annotation(session, t2, "sentiment_score", -2.5, "ann")
    path = tmp_path / "ann.jsonl"
    assert export_annotations_jsonl(session, path) == 5

    engine = init_db(f"sqlite:///{tmp_path / 'other.db'}")
    with session_factory(engine)() as target:
        assert import_annotations_jsonl(target, path) == 5
        assert import_annotations_jsonl(target, path) == 0  # idempotent
        assert import_annotations_jsonl(session, path) == 0  # the source already has them all
        assert _count(target) == 5
        again = tmp_path / "again.jsonl"
        export_annotations_jsonl(target, again)
        assert again.read_text() == path.read_text()  # same keys, times, undo links

        def labels(s):
            return {(c.task, c.annotator, json.dumps(c.value)) for c in current_labels(s)}

        assert labels(target) == labels(session)
    engine.dispose()


def test_import_without_keys_is_idempotent(session, tmp_path):
    path = tmp_path / "foreign.jsonl"
    record = {
        "text": "Great",
        "task": "sentiment",
        "kind": "label",
        "value": "positive",
        "annotator": "x",
        "created_at": "2024-05-01T10:00:00+02:00",
    }
    path.write_text(json.dumps(record) + "\n" + json.dumps(record) + "\n")
    assert import_annotations_jsonl(session, path) == 1
    assert import_annotations_jsonl(session, path) == 0
    assert history(session, add_texts(session, ["Great"], source="import")[0])[0].created_at.hour == 8


def test_export_conll(session, tmp_path):
    text = "Tim  Cook visited New York City today"
    t = add_texts(session, [text])[0]
    spans = [{"start": 0, "end": 9, "label": "person"}, {"start": 18, "end": 31, "label": "geo-loc"}]
    add_annotation(session, t, "ner", spans, "ann")
    path = tmp_path / "ner.conll"
    assert export_conll(session, path, "ner") == 1
    lines = path.read_text().splitlines()
    assert lines == [
        "Tim\tB-person",
        "Cook\tI-person",
        "visited\tO",
        "New\tB-geo-loc",
        "York\tI-geo-loc",
        "City\tI-geo-loc",
        "today\tO",
        "",
    ]


def test_kappa_matches_sklearn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(1)
    for _ in range(20):
        a = [rng.choice("xyz") for _ in range(30)]
        b = [v if rng.random() < 0.6 else rng.choice("xyz") for v in a]
        assert kappa(a, b) == pytest.approx(sklearn_metrics.cohen_kappa_score(a, b))
    assert kappa(["x", "x"], ["x", "x"]) == 1.0
