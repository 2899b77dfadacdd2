"""Review-page annotation import: bad files give a message naming the lines, and an import is all or nothing
(counted in the database after every refused file)."""

from __future__ import annotations

import gzip
import json

import pytest
from sqlalchemy import func, select

from app.review import exchange_service
from mtl_core.store import add_annotation, add_texts, exchange, undo_last
from mtl_core.store.db import open_store
from mtl_core.store.import_file import ImportFileError, read_records
from mtl_core.store.models import AnnotationEvent, TextRow


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
        exchange_service.import_jsonl_bytes(sessions, data)
    for message in messages:
        assert message in str(info.value), str(info.value)
    assert counts(sessions) == before


def test_valid_export_imports_in_every_unicode_form(export, target):
    assert exchange_service.import_jsonl_bytes(target, export) == (4, 4)
    assert counts(target) == (2, 4)
    assert exchange_service.import_jsonl_bytes(target, "\ufeff".encode() + export) == (0, 4)  # UTF-8 BOM
    assert exchange_service.import_jsonl_bytes(target, export.decode().encode("utf-16")) == (0, 4)  # UTF-16 + BOM
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


def test_a_failure_while_writing_rolls_everything_back(export, target, monkeypatch):
    calls = []
    original = exchange.parse_time

    def fail_on_third(raw):
        calls.append(raw)
        if len(calls) == 3:  # two events are already flushed in this transaction by now
            raise RuntimeError("disk on fire")
        return original(raw)

    monkeypatch.setattr(exchange, "parse_time", fail_on_third)
    with pytest.raises(RuntimeError, match="disk on fire"):
        exchange_service.import_jsonl_bytes(target, export)
    assert counts(target) == (0, 0)
    monkeypatch.setattr(exchange, "parse_time", original)
    assert exchange_service.import_jsonl_bytes(target, export) == (4, 4)  # the session is usable again


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
