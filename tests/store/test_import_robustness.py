"""Review-page annotation import: bad files give a message naming the lines, and an import is all or nothing
(counted in the database after every refused file)."""

from __future__ import annotations

import gzip
import json
import threading
import time

import pytest
from sqlalchemy import func, select

from app.review import exchange_service
from mtl_core.ops import auth
from mtl_core.store import add_annotation, add_texts, current_labels, importer, undo_last
from mtl_core.store.db import open_store
from mtl_core.store.import_file import ImportFileError, read_records
from mtl_core.store.models import AnnotationEvent, TextRow
from mtl_core.tasks import load_task_file

TASKS = load_task_file()


@pytest.fixture
def export(tmp_path) -> bytes:
    """A real export: 4 events (an undo included) from a source store."""
    engine, sessions = open_store(tmp_path / "source")
    with sessions() as s:
        ids = add_texts(s, ["café au lait", "Tom Hanks visited Paris"], source="predict")
        add_annotation(s, ids[0], "sentiment", "positive", "alice")
        add_annotation(s, ids[1], "ner", [{"start": 0, "end": 9, "label": "person"}], "alice")
        undo_last(s, "alice")
        add_annotation(s, ids[0], "sentiment", "negative", "bob")
    data = exchange_service.export_jsonl_bytes(sessions)
    engine.dispose()
    return data


@pytest.fixture
def target(tmp_path):
    engine, sessions = open_store(tmp_path / "target")
    yield sessions
    engine.dispose()


def counts(sessions) -> tuple[int, int]:
    with sessions() as s:
        return (s.scalar(select(func.count()).select_from(TextRow)),
                s.scalar(select(func.count()).select_from(AnnotationEvent)))


def refused(sessions, data: bytes, *messages: str) -> None:
    """Importing `data` raises a ValueError naming every `messages`, and adds no text and no event."""
    before = counts(sessions)
    with pytest.raises(ValueError) as info:
        exchange_service.import_jsonl_bytes(sessions, data, TASKS)
    for message in messages:
        assert message in str(info.value), str(info.value)
    assert counts(sessions) == before


def test_valid_export_imports_in_every_unicode_form(export, target):
    assert exchange_service.import_jsonl_bytes(target, export, TASKS) == (4, 4)
    assert counts(target) == (2, 4)
    assert exchange_service.import_jsonl_bytes(target, "\ufeff".encode() + export, TASKS) == (0, 4)  # UTF-8 BOM
    utf16 = export.decode().encode("utf-16")
    assert exchange_service.import_jsonl_bytes(target, utf16, TASKS) == (0, 4)  # UTF-16 + BOM
    assert exchange_service.export_jsonl_bytes(target) == export


def test_bad_lines_stop_the_whole_import_and_are_named(export, target):
    lines = export.decode().splitlines()
    no_task = json.loads(lines[0])
    del no_task["task"]
    bad = [lines[0], json.dumps(no_task), "{not json", lines[1], '["a", "list"]',
           json.dumps({**json.loads(lines[1]), "kind": "delete", "event_key": None}),
           json.dumps({**json.loads(lines[1]), "created_at": "yesterday", "event_key": None})]
    refused(target, "\n".join(bad).encode(), "5 of 7 line(s) are invalid, so none were imported",
            "all or nothing", "line 2: missing field(s) 'task'", "line 3: not valid JSON",
            "line 5: not a JSON object", "line 6: kind 'delete' is not one of", "line 7: created_at 'yesterday'")


def test_missing_fields_and_wrong_types_are_named(target):
    line = json.dumps({"text": "a", "task": "sentiment", "kind": "label", "annotator": 7,
                       "created_at": "2024-01-01T00:00:00"})
    refused(target, line.encode(), "line 1: field(s) 'annotator' must be text")
    refused(target, b'{"text": "a"}\n', "missing field(s) 'task', 'kind', 'annotator', 'created_at'")
    nul = json.dumps({"text": "a\u0000b", "task": "t", "kind": "label", "annotator": "x",
                      "created_at": "2024-01-01T00:00:00"})
    refused(target, nul.encode(), "NUL character")  # PostgreSQL would fail half-way on it


def test_undo_of_an_unknown_event_stores_nothing(export, target):
    lines = export.decode().splitlines()  # label, label, undo (of line 2), label
    refused(target, "\n".join([lines[0], lines[2], lines[3]]).encode(),
            "line 2: undoes an event found neither here nor earlier in the file")


def line(**fields) -> str:
    record = {"text": "Tom Hanks visited Paris", "task": "sentiment", "kind": "label", "value": "positive",
              "annotator": "alice", "created_at": "2024-01-01T00:00:00"}
    return json.dumps({**record, **fields})


SPAN = {"start": 0, "end": 9, "label": "person"}


@pytest.mark.parametrize("fields, message", [
    ({"task": "sentimnet"}, "unknown task 'sentimnet' (the task file has sentiment, sentiment_score,"),
    ({"value": "great"}, "value for task 'sentiment' is 'great', not one of its labels (negative, positive)"),
    ({"value": ["positive"]}, "is ['positive'], not one of its labels"),
    ({"kind": "skip", "value": "great"}, "is 'great', not one of its labels"),
    ({"task": "sentiment_score", "value": 4.5}, "is 4.5, not a number from -4 to 4"),
    ({"task": "sentiment_score", "value": "2"}, "is '2', not a number"),
    ({"task": "sentiment_score", "value": True}, "is True, not a number"),
    ({"task": "sentiment_score", "value": float("nan")}, "is nan, not a number"),
    ({"task": "sentiment_score", "value": float("inf")}, "is inf, not a number"),
    ({"task": "ner", "value": "Tom"}, "is 'Tom', not a list of entity spans"),
    ({"task": "ner", "value": [SPAN, {**SPAN, "end": 99}]}, "outside the text (0 <= start < end <= 23)"),
    ({"task": "ner", "value": [{**SPAN, "start": 5, "end": 5}]}, "outside the text"),
    ({"task": "ner", "value": [{**SPAN, "start": -1}]}, "outside the text"),
    ({"task": "ner", "value": [{**SPAN, "start": 0.5}]}, "start and end must be whole numbers"),
    ({"task": "ner", "value": [{**SPAN, "label": "villain"}]}, "the entity type must be one of company,"),
    ({"task": "ner", "value": [{**SPAN, "note": "x" * 500}]}, "each span is {start, end, label}"),
    ({"reason": "because"}, "reason 'because' is not one of uncertain,"),
    ({"annotator": "   "}, "annotator must not be empty"),
    ({"annotator": "a" * 129}, "annotator is 129 characters long; at most 128 are allowed"),
    ({"annotator": "al\u0000ice"}, "annotator contains a NUL character"),
    ({"task": "t" * 65}, "task is 65 characters long; at most 64 are allowed"),
    ({"source": "s" * 201}, "source is 201 characters long; at most 200 are allowed"),
    ({"event_key": "k" * 65}, "event_key is 65 characters long"),
    ({"source_annotator": 7}, "source_annotator must be text"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_values_are_checked_against_the_task_file(target, fields, message):
    """Before, any task, value, reason and annotator went in (PostgreSQL then failed half-way on long ones)."""
    refused(target, f"{line()}\n{line(**fields)}\n".encode(), "line 2: ", message,
            "1 of 2 line(s) are invalid, so none were imported")


def test_every_kind_of_valid_value_imports(target):
    lines = [line(), line(task="sentiment_score", value=-4), line(task="sentiment_score", value=2.5),
             line(task="ner", value=[SPAN, {"start": 18, "end": 23, "label": "geo-loc"}]), line(task="ner", value=[]),
             line(kind="skip", value=None, reason="uncertain"), line(value="negative", reason="adjudication"),
             line(kind="accept", task="topic", value="politics", annotator="x" * 128, source="s" * 200)]
    assert exchange_service.import_jsonl_bytes(target, "\n".join(lines).encode(), TASKS) == (8, 8)


def test_an_undo_of_an_undo_is_refused(target):
    label = json.loads(line(event_key="a" * 64))
    undo = {**label, "event_key": "b" * 64, "kind": "undo", "value": None, "undoes_key": "a" * 64}
    undo_of_undo = {**undo, "event_key": "c" * 64, "undoes_key": "b" * 64}
    refused(target, "\n".join(json.dumps(r) for r in (label, undo, undo_of_undo)).encode(),
            "line 3: undoes an undo event")


def test_team_import_records_the_importer_and_keeps_the_file_annotator(export, target, tmp_path, monkeypatch):
    """Team mode: a reviewer's import cannot put words in alice's mouth; the file's names stay as provenance."""
    assert exchange_service.import_jsonl_bytes(target, export, TASKS, importer="rita") == (4, 4)
    with target() as s:
        rows = s.execute(select(AnnotationEvent.kind, AnnotationEvent.annotator, AnnotationEvent.source_annotator)
                         .order_by(AnnotationEvent.created_at, AnnotationEvent.id)).all()
        assert [tuple(r) for r in rows] == [("label", "rita", "alice"), ("label", "rita", "alice"),
                                            ("undo", "rita", "alice"), ("label", "rita", "bob")]
        assert [(c.task, c.value) for c in current_labels(s)] == [("sentiment", "negative")]  # undo still works
    team_export = exchange_service.export_jsonl_bytes(target)
    assert [json.loads(r)["source_annotator"] for r in team_export.decode().splitlines()] == \
        ["alice", "alice", "alice", "bob"]
    assert exchange_service.import_jsonl_bytes(target, export, TASKS, importer="root") == (0, 4)  # same events
    engine, copy = open_store(tmp_path / "copy")  # single-user mode keeps the names as they are in the file
    assert exchange_service.import_jsonl_bytes(copy, team_export, TASKS) == (4, 4)
    assert exchange_service.export_jsonl_bytes(copy) == team_export
    engine.dispose()
    monkeypatch.setenv(auth.ENV_TEAM_MODE, "1")
    refused(target, export, "Sign in to import")


def big_export(n: int, texts: int = 1_000) -> bytes:
    """`n` label events over `texts` texts, every 100th followed by an undo of it (a second publishing wave)."""
    lines, labels = [], ["negative", "positive"]
    for i in range(n):
        key = f"{i:064x}"
        lines.append({"event_key": key, "text": f"text {i % texts}", "task": "sentiment", "kind": "label",
                      "value": labels[i % 2], "annotator": f"ann{i % 3}", "created_at": "2024-01-01T00:00:00"})
        if i % 100 == 99 and len(lines) < n:
            lines.append({**lines[-1], "event_key": f"{i:063x}u", "kind": "undo", "value": None,
                          "undoes_key": key})
    return "\n".join(json.dumps(line) for line in lines[:n]).encode()


def test_a_failure_in_the_last_staged_chunk_stores_nothing(target, monkeypatch):
    monkeypatch.setattr(importer, "STAGE_ROWS", 100)
    data, real = big_export(2_000), importer.stage_chunk
    chunks_done = []

    def fail_on_the_last_chunk(conn, table, rows):
        if table is importer.STAGED_EVENTS and rows[-1]["seq"] == 1_999:  # the file's last line
            raise RuntimeError("disk on fire")
        chunks_done.append(len(rows))
        real(conn, table, rows)

    monkeypatch.setattr(importer, "stage_chunk", fail_on_the_last_chunk)
    with pytest.raises(RuntimeError, match="disk on fire"):
        exchange_service.import_jsonl_bytes(target, data, TASKS)
    assert len(chunks_done) == 10 + 19  # 1,000 texts and 1,900 of 2,000 events were staged, then it failed
    assert counts(target) == (0, 0)
    monkeypatch.setattr(importer, "stage_chunk", real)
    assert exchange_service.import_jsonl_bytes(target, data, TASKS) == (2_000, 2_000)  # usable again
    assert counts(target) == (1_000, 2_000)


def test_a_failure_while_publishing_rolls_everything_back(export, target, monkeypatch):
    """The undo of the export goes in a second wave: fail there, after the texts and the labels went in."""
    real = importer.publish_wave

    def fail_in_the_last_wave(conn, wave):
        added = real(conn, wave)
        if wave == 1:
            raise RuntimeError("disk on fire")
        return added

    monkeypatch.setattr(importer, "publish_wave", fail_in_the_last_wave)
    with pytest.raises(RuntimeError, match="disk on fire"):
        exchange_service.import_jsonl_bytes(target, export, TASKS)
    assert counts(target) == (0, 0)
    monkeypatch.setattr(importer, "publish_wave", real)
    assert exchange_service.import_jsonl_bytes(target, export, TASKS) == (4, 4)


def test_a_large_import_does_not_block_another_annotator(target, monkeypatch):
    """Another annotator keeps saving while 20k lines import: only the final copy holds the write lock.

    Before, the import held SQLite's write lock from its first row to its commit (97 s for 200k lines).
    """
    monkeypatch.setattr(importer, "STAGE_ROWS", 500)
    data = big_export(20_000, texts=5_000)
    with target() as s:
        (other,) = add_texts(s, ["another annotator's text"], source="predict")
    importing, waits, saved_meanwhile = threading.Event(), [], []

    def annotate() -> None:
        with target() as s:
            while importing.is_set():
                started = time.perf_counter()
                add_annotation(s, other, "sentiment", "positive", "carol")
                waits.append(time.perf_counter() - started)
                saved_meanwhile.append(importing.is_set())
                time.sleep(0.01)

    importing.set()
    writer = threading.Thread(target=annotate)
    writer.start()
    started = time.perf_counter()
    try:
        assert exchange_service.import_jsonl_bytes(target, data, TASKS) == (20_000, 20_000)
    finally:
        import_s = time.perf_counter() - started
        importing.clear()
        writer.join()
    assert sum(saved_meanwhile) >= 5  # saves completed before the import did
    assert max(waits) < import_s / 2, (max(waits), import_s)  # never blocked for (most of) the whole import


@pytest.mark.parametrize("data, message", [
    (b"", "The file is empty."),
    (b"\n \n", "The file is empty."),
    (b"\x89PNG\r\n\x1a\n" + bytes(40), "PNG image"),
    (gzip.compress(b'{"text": "a"}\n' * 1_000_000), "gzip-compressed"),
    (b'{"text": "a"}\x00\x00\n', "NUL bytes"),
], ids=["empty", "blank", "png", "gzip-bomb", "nul"])
def test_empty_binary_and_compressed_files(target, data, message):
    refused(target, data, message)


def test_wrong_encoding_names_the_line(export, target):
    latin = export + '{"text": "crème", "task": "t"}\n'.encode("latin-1")
    refused(target, latin, "line 5 is not valid UTF-8", "nothing was imported")


def test_size_cap(export):
    with pytest.raises(ImportFileError, match="limited to"):
        read_records(export, max_bytes=len(export) - 1)
    assert len(read_records(export, max_bytes=len(export))) == 4
