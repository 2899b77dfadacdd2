"""The one record type every loader returns and every cache stores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Example:
    """A labelled text. Token tasks carry `words`/`tags` and `text == " ".join(words)`."""

    text: str
    label: str | float | tuple[str, ...] | None = None  # class name, regression value, or a multi-label set
    words: tuple[str, ...] | None = None  # token tasks only
    tags: tuple[str, ...] | None = None  # token tasks only: BIO tag per word ("O", "B-person", ...)

    def __post_init__(self) -> None:
        # Lists would make the frozen dataclass unhashable; accept them and store tuples (a list label is a
        # multi-label set: JSON caches give lists back).
        if isinstance(self.label, list):
            object.__setattr__(self, "label", tuple(self.label))
        if self.words is not None and not isinstance(self.words, tuple):
            object.__setattr__(self, "words", tuple(self.words))
        if self.tags is not None and not isinstance(self.tags, tuple):
            object.__setattr__(self, "tags", tuple(self.tags))

    def word_offsets(self) -> list[tuple[int, int]]:
        """Character (start, end) of each word inside `text`, so `text[s:e] == word`."""
        if self.words is None:
            return []
        offsets, pos = [], 0
        for word in self.words:
            # find() rather than arithmetic: tolerates texts joined with other whitespace.
            start = self.text.find(word, pos)
            if start < 0:
                raise ValueError(f"word {word!r} not found in text after offset {pos}")
            offsets.append((start, start + len(word)))
            pos = start + len(word)
        return offsets

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict; omits the fields that are None."""
        d: dict[str, Any] = {"text": self.text}
        if self.label is not None:
            d["label"] = list(self.label) if isinstance(self.label, tuple) else self.label
        if self.words is not None:
            d["words"] = list(self.words)
        if self.tags is not None:
            d["tags"] = list(self.tags)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Example:
        words, tags = d.get("words"), d.get("tags")
        return cls(
            text=d["text"],
            label=d.get("label"),
            words=tuple(words) if words is not None else None,
            tags=tuple(tags) if tags is not None else None,
        )
