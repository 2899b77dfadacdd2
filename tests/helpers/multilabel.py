"""A tiny separable multi-label task: each label has its own keyword, present or not independently."""

from __future__ import annotations

import random
from pathlib import Path

LABELS = ["sport", "money", "weather"]
KEYWORDS = {"sport": "football", "money": "dollars", "weather": "rain"}


def toy_rows(n: int = 160, seed: int = 0, start: int = 0) -> list[tuple[str, list[str]]]:
    """(text, labels): a label applies exactly when its keyword is in the text (some texts have none); texts
    are numbered from `start`."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        labels = [lab for lab in LABELS if rng.random() < 0.45]
        words = [KEYWORDS[lab] for lab in labels] or ["nothing"]
        rng.shuffle(words)
        rows.append((f"note {start + i} about {' and '.join(words)} today", labels))
    return rows


def write_multilabel_task(root: Path, n: int = 160, seed: int = 0, json_cells: bool = False) -> Path:
    """A task file with one multi-label csv task (`topics`); labels as "a|b" cells (or JSON lists)."""
    lines = ["text,labels"]
    for text, labels in toy_rows(n, seed):
        cell = ('"[' + ",".join(f'""{x}""' for x in labels) + ']"') if json_cells else "|".join(labels)
        lines.append(f"{text},{cell}")
    (root / "topics.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    task_file = root / "tasks.yaml"
    task_file.write_text(
        "tasks:\n"
        f"  - {{name: topics, kind: multilabel_classification, labels: [{', '.join(LABELS)}],\n"
        "     source: {loader: csv, path: topics.csv, label_column: labels}}\n",
        encoding="utf-8",
    )
    return task_file
