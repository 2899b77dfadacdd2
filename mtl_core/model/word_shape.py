"""Word-shape features for the token head: what the uncased encoder cannot see.

MiniLM lowercases its input, so "Paris" and "paris" reach it as the same pieces; for names in tweets the
case is much of the evidence. Each word piece gets the shape of the whitespace word it belongs to, read
from the ORIGINAL text through the tokenizer's character offsets: one id = 1 + a bitmask of the flags
below (0 = special token or padding).
"""

from __future__ import annotations

import re

FLAGS = ("init_cap", "all_caps", "has_digit", "mention", "hashtag", "url", "first_word", "no_letter")
N_SHAPES = 1 + (1 << len(FLAGS))  # embedding rows: 0 (no word) + every flag combination

_URL = re.compile(r"(https?://|www\.)", re.IGNORECASE)
_WORD = re.compile(r"\S+")


def word_shape(word: str, first: bool) -> int:
    """Shape id (>= 1) of one whitespace-separated word."""
    letters = [c for c in word if c.isalpha()]
    bits = (
        bool(letters) and letters[0].isupper(),
        len(letters) > 1 and all(c.isupper() for c in letters),
        any(c.isdigit() for c in word),
        word.startswith("@"),
        word.startswith("#"),
        bool(_URL.match(word)),
        first,
        not letters,
    )
    return 1 + sum(1 << i for i, on in enumerate(bits) if on)


def shape_ids(text: str, offsets: list[tuple[int, int]]) -> list[int]:
    """(T,) one shape id per piece, from (start, end) character offsets into `text` ((0, 0) = special)."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    shapes = [word_shape(text[s:e], i == 0) for i, (s, e) in enumerate(words)]
    out, w = [], 0
    for s, e in offsets:
        if e <= s:
            out.append(0)
            continue
        if w >= len(words) or s < words[w][0]:
            w = 0  # offsets are increasing within a text; restart only if they are not
        while w < len(words) and words[w][1] <= s:
            w += 1
        out.append(shapes[w] if w < len(words) and words[w][0] <= s else 0)
    return out
