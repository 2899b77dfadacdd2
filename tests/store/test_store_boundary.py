"""The store's write functions refuse a NUL character or an over-long name with a ValueError naming the field
and the limit (read from the models), and write nothing; free text gets U+FFFD for NUL. PostgreSQL raised
DataError half-way on these while SQLite stored them: tests/store/test_postgres.py runs the same cases there."""

from __future__ import annotations

import pytest

from mtl_core.store.limits import StoreValueError, check_string, free_text, max_length
from mtl_core.store.models import AnnotationEvent, TextRow
from tests.helpers.store import fresh_session
from tests.helpers.store_limits import assert_free_text_cleaned, assert_refused, refusals


@pytest.fixture
def session(tmp_path):
    yield from fresh_session(tmp_path)


@pytest.mark.parametrize("call, words", refusals())
def test_refused_on_sqlite_too(session, call, words):
    assert_refused(session, call, words)


def test_nul_in_free_text_becomes_a_replacement_character(session):
    assert_free_text_cleaned(session)


def test_limits_come_from_the_models():
    assert max_length(AnnotationEvent.annotator) == AnnotationEvent.__table__.c.annotator.type.length
    assert max_length(TextRow.text) is None  # unbounded: only NUL matters there
    with pytest.raises(StoreValueError, match="task is 65 characters long; at most 64") as info:
        check_string("task", "t" * 65, AnnotationEvent.task)
    assert info.value.field == "task"
    assert check_string("reason", None, AnnotationEvent.reason, optional=True) is None
    with pytest.raises(StoreValueError, match="text must be text, not bytes"):
        free_text("text", b"raw")
