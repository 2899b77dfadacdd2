"""The only place that builds HTML from user text: every piece goes through `esc` first.

Used with `st.markdown(..., unsafe_allow_html=True)` for entity highlighting and saliency chips.
"""

from __future__ import annotations

import html
import re

import numpy as np

from mtl_core.types import Span

# Colour-blind-friendly-ish pastel palette; cycles if a task has more entity types.
PALETTE = ["#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5",
           "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f"]
SPECIAL_TOKENS = {"[CLS]", "[SEP]", "[PAD]", "<s>", "</s>", "<pad>"}


def esc(value) -> str:
    """HTML-escape anything (quotes too, since some values land in attributes)."""
    return html.escape(str(value), quote=True)


def esc_text(value) -> str:
    """`esc` plus newlines as <br>: the HTML stays one line, so markdown never ends the HTML block
    at a blank line and starts interpreting user text as markdown."""
    return esc(value).replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def review_text_html(text: str, large: bool = False) -> str:
    """A text under review as an escaped block (class `mtl-review-text`: browser tests find it by it)."""
    size = ";font-size:1.1em" if large else ""
    return f'<div class="mtl-review-text" style="white-space:pre-wrap{size}">{esc_text(text)}</div>'


GREYED_STYLE = "opacity:.5;filter:grayscale(1)"  # the card of a task that does not apply to the text


def greyed_css(keys: list[str]) -> str:
    """A <style> that greys out the containers with these Streamlit keys (class `st-key-<key>`); a key keeps
    only letters, digits, `_` and `-`, so nothing else can reach the stylesheet."""
    selectors = ",".join(f".st-key-{re.sub(r'[^A-Za-z0-9_-]', '', k)}" for k in keys)
    return f"<style>{esc(selectors)}{{{GREYED_STYLE}}}</style>" if selectors else ""


def entity_colors(labels: list[str]) -> dict[str, str]:
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


UNSURE_STYLE = "outline:2px dashed #b45309;outline-offset:-1px;opacity:.75"  # a span below the confidence threshold


def ner_html(text: str, spans: list[Span], colors: dict[str, str], limit: int | None = None,
             unsure_below: float | None = None) -> str:
    """Text with each span highlighted in its type's colour; text after `limit` is left out. With
    `unsure_below`, spans the model is less confident about get a dashed outline and a "?"."""
    end_of_view = len(text) if limit is None else min(limit, len(text))
    parts, pos = [], 0
    for span in sorted(spans, key=lambda s: s.start):
        if span.start < pos or span.end > end_of_view:
            continue  # overlapping or outside the part the model read
        parts.append(esc_text(text[pos:span.start]))
        color = colors.get(span.label, "#dddddd")
        unsure = unsure_below is not None and span.score < unsure_below
        parts.append(
            f'<mark class="{"mtl-unsure" if unsure else "mtl-sure"}" style="background:{esc(color)};padding:0 .2em;'
            f'border-radius:.25em;{UNSURE_STYLE if unsure else ""}" title="{esc(span.label)} ({span.score:.0%}'
            f'{", unsure" if unsure else ""})">{esc_text(text[span.start:span.end])}'
            f'<sub style="font-size:.65em;opacity:.75;margin-left:.2em">{esc(span.label)}{"?" if unsure else ""}'
            f'</sub></mark>'
        )
        pos = span.end
    parts.append(esc_text(text[pos:end_of_view]))
    if end_of_view < len(text):
        parts.append(f'<span style="opacity:.5"> … [{len(text) - end_of_view:,} more characters not read]</span>')
    return f'<div class="mtl-ner" style="white-space:pre-wrap;line-height:1.9">{"".join(parts)}</div>'


def legend_html(colors: dict[str, str]) -> str:
    chips = "".join(
        f'<span style="background:{esc(c)};padding:0 .4em;margin-right:.3em;border-radius:.25em;'
        f'font-size:.8em">{esc(label)}</span>'
        for label, c in colors.items()
    )
    return f'<div class="mtl-legend">{chips}</div>'


def label_chips_html(labels: list[str], colors: dict[str, str]) -> str:
    """A multi-label answer's chosen labels as chips (class `mtl-labels`), "no label" when there is none."""
    chips = "".join(
        f'<span class="mtl-label-chip" style="background:{esc(colors.get(label, "#dddddd"))};padding:.15em .6em;'
        f'margin:0 .35em .35em 0;border-radius:1em;display:inline-block;font-weight:600">{esc(label)}</span>'
        for label in labels
    ) or '<span style="opacity:.6">no label reaches its threshold</span>'
    return f'<div class="mtl-labels">{chips}</div>'


def saliency_html(tokens: list[str], scores: np.ndarray, hide_specials: bool = True) -> str:
    """Word pieces as chips: green pushes the target up, red pushes it down; opacity = |score|."""
    scores = np.asarray(scores, dtype=np.float64)
    keep = [i for i, t in enumerate(tokens) if not (hide_specials and t in SPECIAL_TOKENS)]
    peak = max((abs(scores[i]) for i in keep), default=0.0) or 1.0
    chips = []
    for i in keep:
        tok, s = tokens[i], float(scores[i])
        alpha = min(abs(s) / peak, 1.0)
        rgb = "22,163,74" if s >= 0 else "220,38,38"
        glue = tok.startswith("##")  # continuation piece: attach to the previous chip
        shown = tok[2:] if glue else tok
        chips.append(
            f'<span title="{esc(tok)}: {s:+.4f}" style="background:rgba({rgb},{alpha:.2f});'
            f'padding:.1em .15em;border-radius:.2em;margin-left:{"0" if glue else ".25em"}">{esc(shown)}</span>'
        )
    return f'<div class="mtl-saliency" style="line-height:2.1">{"".join(chips)}</div>'
