"""BIO2 tags <-> character spans (mtl_core.data.bio): edge cases, and the round trip as a property."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl_core.data.bio import CharSpan, spans_to_tags, tags_to_spans, whitespace_offsets


def _words(text: str) -> list[tuple[int, int]]:
    return whitespace_offsets(text)


def test_empty():
    assert tags_to_spans([], []) == []
    assert tags_to_spans([], [], "", trim_punct=True) == []
    assert spans_to_tags([], []) == []
    assert spans_to_tags(_words("a b"), []) == ["O", "O"]
    assert tags_to_spans(_words("a b"), ["O", "O"]) == []


def test_whitespace_offsets_are_the_split_words():
    text = " Tom  Hanks\tvisited\u00a0New\u3000York. "
    assert [text[s:e] for s, e in whitespace_offsets(text)] == text.split()
    assert whitespace_offsets("") == whitespace_offsets("  \n") == []


def test_spans_run_from_first_word_start_to_last_word_end():
    text = "Tom  Hanks visited New York"
    spans = tags_to_spans(_words(text), ["B-person", "I-person", "O", "B-geo-loc", "I-geo-loc"])
    assert spans == [CharSpan(0, 10, "person"), CharSpan(19, 27, "geo-loc")]
    assert [text[s.start:s.end] for s in spans] == ["Tom  Hanks", "New York"]
    assert [s.words for s in spans] == [range(0, 2), range(3, 5)]


def test_i_without_b_starts_an_entity():
    offsets = _words("a b c d")
    assert tags_to_spans(offsets, ["I-x", "I-x", "O", "I-y"]) == [CharSpan(0, 3, "x"), CharSpan(6, 7, "y")]
    # an I- of another type does not continue the open entity: it starts its own
    assert tags_to_spans(offsets, ["B-x", "I-y", "I-y", "O"]) == [CharSpan(0, 1, "x"), CharSpan(2, 5, "y")]


def test_adjacent_entities_of_the_same_type_stay_apart():
    offsets = _words("a b c d")
    tags = ["B-x", "I-x", "B-x", "B-x"]
    spans = tags_to_spans(offsets, tags)
    assert spans == [CharSpan(0, 3, "x"), CharSpan(4, 5, "x"), CharSpan(6, 7, "x")]
    assert spans_to_tags(offsets, spans) == tags


def test_entity_at_the_end_and_at_the_start():
    offsets = _words("x y z")
    assert tags_to_spans(offsets, ["O", "B-geo-loc", "I-geo-loc"]) == [CharSpan(2, 5, "geo-loc")]
    assert tags_to_spans(offsets, ["B-a", "O", "B-b"]) == [CharSpan(0, 1, "a"), CharSpan(4, 5, "b")]


def test_non_bio_tags_are_outside():
    offsets = _words("a b c")
    assert tags_to_spans(offsets, ["S-x", "E-x", "x"]) == []
    assert tags_to_spans(offsets, ["B-x", "E-x", "I-x"]) == [CharSpan(0, 1, "x"), CharSpan(4, 5, "x")]


def test_punctuation_trim_like_the_decoder():
    text = "Go Lakers! (see Paris.) x"
    offsets = _words(text)
    tags = ["O", "B-team", "O", "B-city", "O"]
    assert tags_to_spans(offsets, tags) == [CharSpan(3, 10, "team"), CharSpan(16, 23, "city")]
    trimmed = tags_to_spans(offsets, tags, text, trim_punct=True)
    assert [text[s.start:s.end] for s in trimmed] == ["Lakers", "Paris"]
    # leading punctuation stays, and a span never loses its first character
    assert tags_to_spans(_words('"!?" ok'), ["B-x", "O"], '"!?" ok', trim_punct=True) == [CharSpan(0, 1, "x")]
    assert tags_to_spans(_words(". a"), ["B-x", "O"], ". a", trim_punct=True) == [CharSpan(0, 1, "x")]
    with pytest.raises(ValueError, match="text"):
        tags_to_spans(offsets, tags, trim_punct=True)


def test_offsets_must_fit_the_tags():
    with pytest.raises(ValueError):
        tags_to_spans(_words("a b"), ["O"])


def test_spans_to_tags_overlap_rules():
    offsets = _words("aa bb cc dd")  # words at 0-2, 3-5, 6-8, 9-11
    # a word overlapping a span by one character belongs to it
    assert spans_to_tags(offsets, [CharSpan(1, 4, "x")]) == ["B-x", "I-x", "O", "O"]
    # a span touching a word without sharing a character does not take it
    assert spans_to_tags(offsets, [CharSpan(2, 3, "x"), CharSpan(5, 6, "y")]) == ["O"] * 4
    # overlapping spans: the first listed wins each word (sort by start to let the earliest win)
    wide, inner = CharSpan(0, 11, "w"), CharSpan(3, 5, "i")
    assert spans_to_tags(offsets, [inner, wide]) == ["B-w", "B-i", "B-w", "I-w"]
    by_start = sorted([inner, wide], key=lambda s: s.start)
    assert spans_to_tags(offsets, by_start) == ["B-w", "I-w", "I-w", "I-w"]


def test_char_span_dicts_and_equality():
    span = CharSpan.from_dict({"start": "3", "end": 9.0, "label": "team"})
    assert span == CharSpan(3, 9, "team", range(1, 2))  # the word range is not part of equality
    assert span.to_dict() == {"start": 3, "end": 9, "label": "team"}
    assert hash(span) == hash(CharSpan(3, 9, "team"))


# ----------------------------------------------------------------------------- round trip, as a property

WORD = st.text(st.characters(blacklist_categories=("Zs", "Zl", "Zp", "Cc", "Cs")), min_size=1, max_size=6)
GAP = st.text(" \t\n\u00a0\u3000", min_size=1, max_size=3)
LABEL = st.sampled_from(["person", "geo-loc", "x"])


@st.composite
def sentences(draw) -> tuple[str, list[tuple[int, int]]]:
    """A text of whitespace-separated words, and the words' offsets."""
    words = draw(st.lists(WORD.filter(lambda w: w.split() == [w]), max_size=10))
    text = draw(st.sampled_from(["", " "]))
    offsets = []
    for word in words:
        offsets.append((len(text), len(text) + len(word)))
        text += word + draw(GAP)
    return text, offsets


@st.composite
def bio2_tags(draw, n: int) -> list[str]:
    """Valid BIO2: an I-x only right after a B-x or I-x."""
    tags: list[str] = []
    for _ in range(n):
        label = draw(LABEL)
        choices = ["O", f"B-{label}"]
        if tags and tags[-1] != "O":
            choices.append("I-" + tags[-1][2:])
        tags.append(draw(st.sampled_from(choices)))
    return tags


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_tags_to_spans_to_tags_round_trip(data):
    text, offsets = data.draw(sentences())
    assert whitespace_offsets(text) == offsets
    tags = data.draw(bio2_tags(len(offsets)))
    spans = tags_to_spans(offsets, tags)
    assert spans_to_tags(offsets, spans) == tags
    assert len(spans) == sum(t.startswith("B-") for t in tags)
    for span in spans:
        words = [text[s:e] for s, e in offsets[span.words.start:span.words.stop]]
        assert text[span.start:span.end].split() == words


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_spans_to_tags_to_spans_round_trip(data):
    text, offsets = data.draw(sentences())
    n = len(offsets)
    cuts = sorted(data.draw(st.sets(st.integers(0, n), max_size=2 * n)))  # boundaries of disjoint word runs
    runs = [(a, b) for a, b in zip(cuts, cuts[1:]) if data.draw(st.booleans())]
    spans = [CharSpan(offsets[a][0], offsets[b - 1][1], data.draw(LABEL)) for a, b in runs]
    tags = spans_to_tags(offsets, spans)
    assert tags_to_spans(offsets, tags) == spans
    assert [s.words for s in tags_to_spans(offsets, tags)] == [range(a, b) for a, b in runs]
