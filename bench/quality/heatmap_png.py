"""A labelled heatmap as a PNG with Pillow alone (matplotlib is not a dependency): the lab's task affinity.

Blue = positive (the row's task helps the column's), red = negative; each cell prints its value.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from bench.quality.line_png import _font


def _colour(v: float, scale: float) -> tuple[int, int, int]:
    t = max(-1.0, min(1.0, v / scale)) if scale > 0 else 0.0
    if t >= 0:
        return int(255 - 200 * t), int(255 - 130 * t), 255
    return 255, int(255 + 200 * t), int(255 + 200 * t)


def save_heatmap(path: str | Path, labels: list[str], matrix: list[list[float | None]], title: str,
                 row_label: str, col_label: str) -> Path:
    n, cell, left, top = len(labels), 90, 150, 90
    img = Image.new("RGB", (left + n * cell + 20, top + n * cell + 50), "white")
    draw = ImageDraw.Draw(img)
    font, small = _font(15), _font(12)
    values = [abs(v) for row in matrix for v in row if v is not None]
    scale = max(values) if values else 1.0
    draw.text((10, 10), title, fill="black", font=font)
    draw.text((left, 40), f"columns: {col_label}", fill="black", font=small)
    draw.text((10, 60), f"rows: {row_label}", fill="black", font=small)
    for j, name in enumerate(labels):
        draw.text((left + j * cell + cell // 2, top - 8), name[:12], fill="black", font=small, anchor="ms")
    for i, name in enumerate(labels):
        y = top + i * cell
        draw.text((left - 8, y + cell // 2), name[:18], fill="black", font=small, anchor="rm")
        for j in range(n):
            v = matrix[i][j]
            x = left + j * cell
            draw.rectangle((x, y, x + cell - 2, y + cell - 2), fill=(235, 235, 235) if v is None else _colour(v, scale))
            draw.text((x + cell // 2, y + cell // 2), "" if v is None else f"{v:+.3f}", fill="black", font=small,
                      anchor="mm")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path
