"""BIO tag normalisation for token tasks: every token task is stored as BIO2 with the task's own
spelling of the entity types, whatever scheme (IOB1, BIOES, IO) or casing the source used.

Also the one place where BIO2 tags and character spans are converted into each other (`tags_to_spans`,
`spans_to_tags`): the model's decoder, gold labels for review, round data, comparisons and CoNLL export
all go through these two functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

_BEGIN = {"B", "S", "U"}  # BIOES/BILOU single-token and begin tags open an entity
_INSIDE = {"I", "E", "L"}


def _split_tag(tag: str, types: dict[str, str]) -> tuple[str, str | None]:
    """'B-geo-loc' -> ('B', 'geo-loc'); 'O' -> ('O', None); a bare type (IO scheme) -> ('I', type)."""
    if tag.upper() == "O":
        return "O", None
    prefix, sep, rest = tag.partition("-")
    if sep and prefix.upper() in _BEGIN | _INSIDE and rest.casefold() in types:
        return ("B" if prefix.upper() in _BEGIN else "I"), types[rest.casefold()]
    if tag.casefold() in types:
        return "I", types[tag.casefold()]
    raise ValueError(
        f"tag {tag!r} is not 'O' or B-/I-<type> with a type in the task labels {sorted(types.values())}"
    )


def normalise_tags(tags: Sequence[str], entity_types: Iterable[str]) -> tuple[str, ...]:
    """Map tags to BIO2 over `entity_types`; raises ValueError naming the first unknown tag."""
    types = {t.casefold(): t for t in entity_types}
    out: list[str] = []
    prev_type: str | None = None
    for tag in tags:
        prefix, etype = _split_tag(tag.strip(), types)
        if prefix == "I" and etype != prev_type:
            prefix = "B"  # IOB1/IO: an I- that does not continue an entity starts one
        out.append("O" if etype is None else f"{prefix}-{etype}")
        prev_type = etype
    return tuple(out)


def entity_types_of(tags: Iterable[str]) -> list[str]:
    """Entity type of each entity (one per B- tag) in a BIO2 sequence."""
    return [t[2:] for t in tags if t.startswith("B-")]


# ------------------------------------------------------------------------ tags <-> character spans

TRAILING_PUNCT = ".,!?;:)]}\"'"  # trimmed off a span's end by `tags_to_spans(..., trim_punct=True)`

_NON_SPACE_RUN = re.compile(r"\S+")  # str patterns: \s is exactly str.isspace(), like str.split()


@dataclass(frozen=True, slots=True)
class CharSpan:
    """An entity as a character range `text[start:end]` with its type (no B-/I- prefix).

    `words` is the range of word indices the span was built from (`tags_to_spans` fills it); it is not
    part of equality, so a decoded span equals the same span read back from a stored annotation."""

    start: int
    end: int
    label: str
    words: range = field(default=range(0), compare=False, repr=False)

    @classmethod
    def from_dict(cls, span: dict[str, Any]) -> CharSpan:
        """A stored annotation span {start, end, label} (numbers may come as floats or strings)."""
        return cls(int(span["start"]), int(span["end"]), str(span["label"]))

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "label": self.label}


def whitespace_offsets(text: str) -> list[tuple[int, int]]:
    """(start, end) of each whitespace-separated word of `text` (the words of `text.split()`)."""
    return [m.span() for m in _NON_SPACE_RUN.finditer(text)]


def tags_to_spans(
    offsets: Sequence[tuple[int, int]], tags: Sequence[str], text: str | None = None, trim_punct: bool = False
) -> list[CharSpan]:
    """Word-level BIO2 tags -> entity spans, from the first word's start to the last word's end.

    `offsets[i]` is word i's character (start, end); it must be as long as `tags` (ValueError otherwise).
    An I-x continues an open x entity, else it starts one (lenient, like seqeval's default); B-x always
    starts one; every other tag ("O", or an unnormalised S-/E-/bare type: see `normalise_tags`) is outside.

    trim_punct: drop trailing TRAILING_PUNCT characters from each span's end (never its first character),
    as the model's decoder does for its whitespace words, so that a span read from gold tags compares
    equal to a correct model answer ("Lakers!" -> "Lakers"). Needs `text`, the string `offsets` index.
    """
    if trim_punct and text is None:
        raise ValueError("trim_punct needs the text the offsets index")
    spans: list[CharSpan] = []
    open_at: int | None = None  # word index where the open entity began
    open_label = ""
    for i, (_, tag) in enumerate(zip(offsets, tags, strict=True)):  # strict: offsets must fit tags
        prefix, _, label = tag.partition("-")
        if open_at is not None and prefix == "I" and label == open_label:
            continue
        if open_at is not None:
            spans.append(_char_span(offsets, open_at, i, open_label, text if trim_punct else None))
            open_at = None
        if prefix in ("B", "I"):
            open_at, open_label = i, label
    if open_at is not None:
        spans.append(_char_span(offsets, open_at, len(tags), open_label, text if trim_punct else None))
    return spans


def _char_span(
    offsets: Sequence[tuple[int, int]], first: int, stop: int, label: str, trim_in: str | None
) -> CharSpan:
    """Words first..stop-1 as one span; `trim_in`: the text to trim trailing punctuation against (or None)."""
    start, end = offsets[first][0], offsets[stop - 1][1]
    if trim_in is not None:
        while end - 1 > start and trim_in[end - 1] in TRAILING_PUNCT:
            end -= 1
    return CharSpan(start, end, label, range(first, stop))


def spans_to_tags(offsets: Sequence[tuple[int, int]], spans: Sequence[CharSpan]) -> list[str]:
    """One BIO2 tag per word: a word takes the type of the first span in `spans` that overlaps it
    (shares at least one character), B- when the previous word is not in that same span, I- otherwise.

    Sort overlapping spans by start first to have the earliest one win (then every span's words are
    contiguous); for non-overlapping spans the order does not matter."""
    tags: list[str] = []
    prev: int | None = None
    for start, end in offsets:
        k = next((k for k, s in enumerate(spans) if start < s.end and end > s.start), None)
        tags.append("O" if k is None else ("I-" if k == prev else "B-") + spans[k].label)
        prev = k
    return tags
