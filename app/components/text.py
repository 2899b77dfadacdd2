"""Markdown-literal text: the one way user strings reach a Streamlit element that renders Markdown.

Captions, alerts, `st.markdown`, radio options, tab/expander/button/widget labels and `help=` all parse
Markdown (plus Streamlit's directives, LaTeX and autolinks), so a task label or file name like
`![x](http://host/x.png)` would become an image the browser fetches. `md_literal` makes such a string
display as the characters it holds; strings shown with `st.text`, `st.code` or in dataframe cells need no
escaping (they would show the backslashes).
"""

from __future__ import annotations

import re

# Every character that starts Markdown: emphasis, links/images, headings, lists, tables, code, HTML and
# entities, `$` (LaTeX) and `:` (emoji, icons and Streamlit's `:color[...]` directives). A backslash
# makes each one literal (CommonMark allows it before any ASCII punctuation); `/`, `,`, `?`... stay as they
# are, being inert. Newlines become spaces, so no line can start a heading, list or table.
_ACTIVE = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")
_SPACE = re.compile(r"\s+")
# GFM autolinks bare URLs and e-mail addresses after the escapes are resolved, so the escapes alone
# do not stop them: a word joiner (invisible, zero width) after "http", "https", "www" and before "@" does.
_AUTOLINK = re.compile(r"(?i)(https?|www)(?=\\[:.])|(?=@)")
WORD_JOINER = "\u2060"


def md_literal(value: object) -> str:
    """`value` as Markdown that renders as its literal characters (whitespace runs become one space)."""
    text = _ACTIVE.sub(r"\\\1", _SPACE.sub(" ", str(value)))
    return _AUTOLINK.sub(lambda m: (m.group(1) or "") + WORD_JOINER, text)
