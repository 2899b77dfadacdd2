"""md_literal: hostile strings rendered by a CommonMark parser (+ GFM tables/strikethrough) come out as
the very characters they hold, with no element of markup and nothing an autolinker could turn into a link."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as hs

from app.components.text import WORD_JOINER, md_literal
from tests.helpers.markdown_render import live_markup, rendered

pytest.importorskip("markdown_it")  # the parser the checks render with

HOSTILE = [
    "![x](http://h/x.png)", "[a](javascript:alert(1))", "<img src=x onerror=alert(1)>", "**b**", "# h",
    "`code` and ```fence```", "$math$ and $$x$$", ":red[red] :material/home: :blue-badge[b]", "1. item",
    "a\n===", "- li\n+ li", "> quote", "&amp; &#60;", "a | b\n--|--\nc | d", "~~s~~", "<http://auto.link>",
    "a\\*b\\", "http://example.com/p www.example.com a@b.com", "    indented code", "x\n\n# heading after a blank",
    "[ref]: http://h/ref.png\n![ref]",
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_strings_render_as_their_text(hostile):
    out, text = rendered(md_literal(hostile))
    assert re.fullmatch(r"<p>[^<]*</p>\n", out), out  # one paragraph, no element inside it
    assert text.replace(WORD_JOINER, "") == " ".join(hostile.split())
    assert live_markup(md_literal(hostile)) == []


@pytest.mark.parametrize(("raw", "element"), [
    ("![x](http://h/x.png)", "img"), ("[a](http://h)", "a"), ("**b**", "strong"), ("# h", "h1"),
    ("see http://h/p", "autolink"), ("a | b\n--|--\nc | d", "table"),
])
def test_the_detector_sees_raw_markup(raw, element):
    assert element in live_markup(raw)  # so an empty live_markup above means escaped, not unseen


def test_markup_characters_are_escaped_and_latex_cannot_start():
    assert md_literal("$x$ **b** ![i](u)") == r"\$x\$ \*\*b\*\* \!\[i\]\(u\)"
    assert md_literal("plain words 42") == "plain words 42"  # nothing to escape: readable as it is


def test_inside_a_template_the_user_part_stays_inert():
    out, _ = rendered(f"**Import failed**: {md_literal('[x](http://h) **y**')}")
    assert "<a" not in out and out.count("<strong>") == 1


@given(hs.text(hs.characters(exclude_characters="\x00"), max_size=60))  # CommonMark replaces NUL
def test_any_text_round_trips(value):
    out, text = rendered(md_literal(value))
    assert live_markup(md_literal(value)) == []
    assert text.replace(WORD_JOINER, "") == " ".join(value.split()).replace(WORD_JOINER, "")
