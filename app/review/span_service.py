"""Review page services: NER span editing (words with offsets, spans built from them).

Pure functions (no store, no widgets): the span editor builds a label from these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Word:
    index: int
    start: int
    end: int
    text: str


def words_of(text: str) -> list[Word]:
    """Whitespace-separated words with their character offsets (what a span is built from)."""
    return [Word(i, m.start(), m.end(), m.group()) for i, m in enumerate(re.finditer(r"\S+", text))]


def span_from_words(words: list[Word], indices: list[int], label: str) -> dict[str, Any]:
    """A span covering a contiguous run of words; raises ValueError for an empty or gappy selection."""
    if not indices:
        raise ValueError("pick at least one word")
    picked = sorted(set(indices))
    if picked != list(range(picked[0], picked[-1] + 1)):
        raise ValueError("pick neighbouring words only: a span is one contiguous run")
    return {"start": words[picked[0]].start, "end": words[picked[-1]].end, "label": label}


def add_span(spans: list[dict[str, Any]], span: dict[str, Any]) -> list[dict[str, Any]]:
    """`spans` plus `span`, sorted; raises ValueError when it overlaps one already there."""
    for other in spans:
        if span["start"] < other["end"] and other["start"] < span["end"]:
            raise ValueError("that span overlaps an existing one: remove it first")
    return sorted([*spans, span], key=lambda s: s["start"])
