"""NER span editing by selecting text: a small custom component (span_picker_frontend/: one HTML page and
one script, no network, no library, every text inserted with textContent).

Drag over words (or click one) and press a number key (or click a type) to make a span; a new span replaces
the ones it overlaps, so merging two words is one drag and one key. Click a span to change its type or remove
it (Delete). The component returns {"spans": [{start, end, label}], "rev": "..."}: the value is user input,
checked here (`clean_spans`) before the page keeps it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import streamlit.components.v1 as components

FRONTEND = Path(__file__).resolve().parent / "span_picker_frontend"
# Words and punctuation marks: "Paris," is two pieces, so a span never swallows the comma.
WORD = re.compile(r"\w+(?:['’\-.&]\w+)*|[^\w\s]")
_component = None


def word_offsets(text: str) -> list[tuple[int, int]]:
    """(start, end) of each word and punctuation mark: what the component lets you select."""
    return [(m.start(), m.end()) for m in WORD.finditer(text)]


def _declared():
    global _component
    if _component is None:  # declared on first use: importing this module registers nothing
        _component = components.declare_component("mtl_span_picker", path=str(FRONTEND))
    return _component


def span_picker(text: str, spans: list[dict[str, Any]], labels: list[str], colors: dict[str, str],
                key: str) -> Any:
    """Draw the picker over `text` with `spans` marked; returns the component's latest value (None before
    any edit). Pass it to `clean_spans`."""
    return _declared()(text=text, words=word_offsets(text), spans=spans, labels=list(labels),
                       colors=[colors.get(label, "#dddddd") for label in labels], key=key, default=None)


def clean_spans(value: Any, text: str, labels: list[str]) -> tuple[list[dict[str, Any]], str] | None:
    """(spans sorted by start, revision) of a component value; None when it carries no edit.

    Raises ValueError for anything a genuine edit cannot produce: an unknown type, offsets outside the text,
    an empty or overlapping span, or more spans than characters."""
    if not isinstance(value, dict) or "spans" not in value:
        return None
    raw, rev = value["spans"], str(value.get("rev", ""))[:64]
    if not isinstance(raw, list) or len(raw) > len(text):
        raise ValueError("the span editor sent a malformed list of spans")
    spans = []
    for item in raw:
        if not isinstance(item, dict):
            raise ValueError("the span editor sent a malformed span")
        start, end, label = item.get("start"), item.get("end"), item.get("label")
        if not (isinstance(start, int) and isinstance(end, int) and not isinstance(start, bool)
                and not isinstance(end, bool)):
            raise ValueError("span offsets must be whole numbers")
        if label not in labels:
            raise ValueError(f"unknown entity type {str(label)[:40]!r}")
        if not 0 <= start < end <= len(text):
            raise ValueError(f"span {start}-{end} lies outside the text")
        spans.append({"start": start, "end": end, "label": label})
    spans.sort(key=lambda s: s["start"])
    for a, b in zip(spans, spans[1:]):
        if b["start"] < a["end"]:
            raise ValueError(f"spans overlap at character {b['start']}")
    return spans, rev
