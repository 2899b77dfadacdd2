"""Render Markdown as Streamlit's renderer would parse it (CommonMark + GFM tables/strikethrough, with
markdown-it-py), to tell whether a string shown by an element holds live markup."""

from __future__ import annotations

import html
import re
from functools import cache

from app.components.text import WORD_JOINER

# What GFM turns into a link after the escapes are resolved (Streamlit's remark-gfm does that to text).
AUTOLINKABLE = re.compile(r"(?i)https?:|www\.|[\w.+-]@[\w-]")
LIVE = re.compile(r"<(img|a|strong|em|h\d|code|del|table|ol|ul|li|blockquote|pre|hr)\b")


@cache
def _parser():
    from markdown_it import MarkdownIt  # a test dependency: tests that render call importorskip first

    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def md_text(markdown: str) -> str:
    """What a reader sees of md_literal'd Markdown without a parser: escapes and word joiners removed."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace(WORD_JOINER, "")


def rendered(markdown: str) -> tuple[str, str]:
    """(HTML, its text) of `markdown`."""
    out = _parser().render(markdown)
    return out, html.unescape(re.sub(r"<[^>]+>", "", out)).strip()


def live_markup(markdown: str) -> list[str]:
    """The elements `markdown` would become, plus 'autolink' when a bare URL/e-mail would be linked."""
    out, text = rendered(markdown)
    return [m.group(1) for m in LIVE.finditer(out)] + (["autolink"] if AUTOLINKABLE.search(text) else [])
