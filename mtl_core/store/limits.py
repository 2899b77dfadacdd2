"""Checks at the store's boundary, so SQLite and PostgreSQL accept and refuse exactly the same values.

SQLite stores a NUL character and ignores VARCHAR widths; PostgreSQL raises DataError on both, half-way
through a unit of work. Every write function therefore checks its strings first, against the widths
declared on the ORM models (read from the column, never copied):

- names and keys (task, annotator, reason, source, model version, ...): a NUL character or an over-long
  value is refused with a `StoreValueError` naming the field and the limit;
- free text (texts, queue details, job messages and logs): a NUL becomes U+FFFD. Same length, so
  character offsets (entity spans) stay valid, and the tokenizer drops both, so the model reads the same.
"""

from __future__ import annotations

from typing import Any

NUL = "\x00"
NUL_STANDIN = "\ufffd"  # the Unicode replacement character


class StoreValueError(ValueError):
    """A value the store refuses; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field} {message}")
        self.field = field


def max_length(column: Any) -> int | None:
    """The declared width of a model column (`TextRow.source` -> 200); None for unbounded text."""
    return getattr(column.type, "length", None)


def string_problem(value: Any, column: Any = None, *, nonempty: bool = False) -> str | None:
    """Why `value` cannot go into `column` (None when it can), without the field name."""
    if not isinstance(value, str):
        return f"must be text, not {type(value).__name__}"
    if NUL in value:
        return "contains a NUL character (\\x00), which the database cannot store"
    limit = max_length(column) if column is not None else None
    if limit is not None and len(value) > limit:
        return f"is {len(value):,} characters long; at most {limit} are allowed"
    if nonempty and not value.strip():
        return "must not be empty"
    return None


def check_string(field: str, value: Any, column: Any = None, *, optional: bool = False,
                 nonempty: bool = False) -> Any:
    """`value` unchanged when `column` can store it (None too, when `optional`); else StoreValueError."""
    if value is None and optional:
        return None
    why = string_problem(value, column, nonempty=nonempty)
    if why:
        raise StoreValueError(field, why)
    return value


def free_text(field: str, value: Any, *, optional: bool = False) -> Any:
    """Free text for an unbounded column: NUL replaced (see module docstring); a non-string is refused."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise StoreValueError(field, f"must be text, not {type(value).__name__}")
    return value.replace(NUL, NUL_STANDIN) if NUL in value else value
