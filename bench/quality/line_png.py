"""A small line chart as a PNG with Pillow alone (matplotlib is not a dependency): lines with a shaded ±sd band.

Used by `annotation_sim.py` for the simulated-annotation curves: one big panel and a grid of small ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207)]


@dataclass
class Series:
    label: str
    x: list[float]
    mean: list[float]
    sd: list[float]


@dataclass
class Panel:
    title: str
    series: list[Series]
    x_label: str = ""
    y_label: str = ""
    legend: bool = True


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable font
    except TypeError:
        return ImageFont.load_default()


def _ticks(lo: float, hi: float, n: int = 5) -> tuple[list[float], int]:
    """n evenly spaced values from lo to hi, and the decimals that tell them apart."""
    step = (hi - lo) / max(1, n - 1)
    decimals = min(3, max(0, 1 - math.floor(math.log10(step)))) if step > 0 else 1
    return [lo + i * step for i in range(n)], decimals


def _draw_panel(img: Image.Image, box: tuple[int, int, int, int], panel: Panel, scale: float) -> None:
    left, top, right, bottom = box
    draw = ImageDraw.Draw(img, "RGBA")
    small, big = _font(int(11 * scale)), _font(int(14 * scale))
    draw.text((left + (right - left) // 2, top), panel.title, fill="black", font=big, anchor="mt")
    pl, pt, pr, pb = left + int(58 * scale), top + int(24 * scale), right - int(10 * scale), bottom - int(34 * scale)
    xs = [x for s in panel.series for x in s.x]
    ys = [m + d for s in panel.series for m, d in zip(s.mean, s.sd)] + \
         [m - d for s in panel.series for m, d in zip(s.mean, s.sd)]
    if not xs or not ys:
        return
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys)
    pad = (y1 - y0) * 0.1 or 0.5
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float, y: float) -> tuple[float, float]:
        return pl + (x - x0) / (x1 - x0) * (pr - pl), pb - (y - y0) / (y1 - y0) * (pb - pt)

    draw.rectangle((pl, pt, pr, pb), outline=(120, 120, 120))
    ticks, decimals = _ticks(y0, y1)
    for y in ticks:
        _, yy = px(x0, y)
        draw.line((pl, yy, pr, yy), fill=(225, 225, 225))
        draw.text((pl - 4, yy), f"{y:.{decimals}f}", fill="black", font=small, anchor="rm")
    for x in sorted(set(xs)):
        xx, _ = px(x, y0)
        draw.line((xx, pb, xx, pb + 4), fill=(120, 120, 120))
        draw.text((xx, pb + 6), f"{x:g}", fill="black", font=small, anchor="mt")
    if panel.x_label:
        draw.text(((pl + pr) / 2, bottom), panel.x_label, fill="black", font=small, anchor="md")
    if panel.y_label:
        draw.text((left, pt - 4), panel.y_label, fill="black", font=small, anchor="ld")
    for i, s in enumerate(panel.series):
        colour = COLOURS[i % len(COLOURS)]
        upper = [px(x, m + d) for x, m, d in zip(s.x, s.mean, s.sd)]
        lower = [px(x, m - d) for x, m, d in zip(s.x, s.mean, s.sd)]
        if len(upper) > 1 and any(d > 0 for d in s.sd):
            draw.polygon(upper + lower[::-1], fill=(*colour, 50))
        points = [px(x, m) for x, m in zip(s.x, s.mean)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=max(1, int(2 * scale)))
        for x, y in points:
            r = 3 * scale
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        if not panel.legend:
            continue
        lx, ly = pr - int(110 * scale), top + int((6 + 16 * i) * scale)  # top right, beside the title
        draw.line((lx, ly, lx + 20 * scale, ly), fill=colour, width=max(1, int(3 * scale)))
        draw.text((lx + 24 * scale, ly), s.label, fill="black", font=small, anchor="lm")


def save_chart(path: str | Path, main: Panel, small: list[Panel] | None = None, columns: int = 3) -> Path:
    """The main panel on top, the small ones below in a grid of `columns`; written to `path` (a PNG). The small
    panels share the main one's colours: only the main one has a legend."""
    width, main_h, small_h = 960, 400, 260
    small = small or []
    rows = -(-len(small) // columns)
    img = Image.new("RGB", (width, main_h + rows * small_h + 10), "white")
    _draw_panel(img, (10, 10, width - 10, main_h - 10), main, 1.0)
    cell = width // columns
    for i, panel in enumerate(small):
        r, c = divmod(i, columns)
        top = main_h + r * small_h
        panel = Panel(panel.title, panel.series, panel.x_label, panel.y_label, legend=False)
        _draw_panel(img, (c * cell + 5, top, (c + 1) * cell - 5, top + small_h - 10), panel, 0.85)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path
