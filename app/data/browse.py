"""Data page browsing as data frames: one row per example, the filters, label counts and the confusion matrix.

Pandas only (no streamlit), so tests call these directly; app/data/browse_view.py draws them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import pandas as pd

from mtl_core.data.bio import tags_to_spans
from mtl_core.eval.compare import format_answer, gold_answers, is_right
from mtl_core.tasks import TaskSpec

MAX_ROWS = 500  # rows the table shows; the caption gives the total
GOLD_LABELS, ANSWER_LABELS = "_gold_labels", "_answer_labels"  # what the label filters match; never shown
HIDDEN = [GOLD_LABELS, ANSWER_LABELS]


def _spans(tags: Sequence[str], n: int) -> tuple[tuple[int, int, str], ...]:
    """Entity spans as (first word, end word, type): word positions, so a repeated name is not a match."""
    n = min(n, len(tags))
    return tuple((s.start, s.end, s.label) for s in tags_to_spans([(i, i + 1) for i in range(n)], list(tags)[:n]))


def _labels(kind: str, answer: Any, n_words: int) -> tuple[str, ...]:
    """The labels a filter matches: the class, or each entity type present (none for regression)."""
    if kind == "token_classification":
        return tuple(sorted({label for _, _, label in _spans(answer, n_words)}))
    if isinstance(answer, (list, tuple)):  # a multi-label answer: each of its labels
        return tuple(str(a) for a in answer)
    return () if kind == "regression" else (str(answer),)


def right(kind: str, gold: Any, answer: Any, n_words: int = 0) -> bool:
    """Is the answer right: NER by its entity spans (same words, same types), else `compare.is_right`
    (the same label; a regression value within REGRESSION_TOLERANCE)."""
    if kind == "token_classification":
        return _spans(gold, n_words) == _spans(answer, n_words)
    return is_right(kind, gold, answer)


def _shown(kind: str, answer: Any, words: list[str] | None) -> Any:
    """A cell: regression values stay numbers (the column sorts), NER answers become entity lists."""
    return round(float(answer), 3) if kind == "regression" else format_answer(kind, answer, words)


def example_rows(spec: TaskSpec, examples: list, answers: list | None = None) -> pd.DataFrame:
    """One row per example: `#` (its position in the split), text, words, gold; with the model's answers
    also `answer` and `correct`. The hidden label columns (HIDDEN) feed the label filters."""
    gold = gold_answers(spec, examples)
    rows = []
    for i, (ex, g) in enumerate(zip(examples, gold)):
        words = list(ex.words) if ex.words is not None else None
        n = len(words) if words is not None else len(ex.text.split())
        row = {"#": i, "text": ex.text, "words": n, "gold": _shown(spec.kind, g, words),
               GOLD_LABELS: _labels(spec.kind, g, n)}
        if answers is not None:
            a = answers[i]
            row.update({"answer": _shown(spec.kind, a, words), "correct": right(spec.kind, g, a, n),
                        ANSWER_LABELS: _labels(spec.kind, a, n)})
        rows.append(row)
    columns = ["#", "text", "words", "gold", GOLD_LABELS]
    if answers is not None:
        columns += ["answer", "correct", ANSWER_LABELS]
    return pd.DataFrame(rows, columns=columns)


def has_answers(rows: pd.DataFrame) -> bool:
    return "answer" in rows.columns


def filter_rows(rows: pd.DataFrame, search: str = "", gold: str | None = None, answer: str | None = None,
                only_wrong: bool = False) -> pd.DataFrame:
    """The rows whose text holds `search` (plain, case-insensitive: never a pattern), whose gold / answer
    has the label (an NER row: an entity of that type), and, with `only_wrong`, that the model got wrong.
    Filters on the model's answers are ignored when the rows have none."""
    keep = pd.Series(True, index=rows.index)
    if search.strip():
        keep &= rows["text"].str.contains(search.strip(), case=False, regex=False)
    if gold is not None:
        keep &= rows[GOLD_LABELS].map(lambda labels: gold in labels)
    if has_answers(rows):
        if answer is not None:
            keep &= rows[ANSWER_LABELS].map(lambda labels: answer in labels)
        if only_wrong:
            keep &= ~rows["correct"].astype(bool)
    return rows[keep]


def visible(rows: pd.DataFrame, limit: int = MAX_ROWS) -> pd.DataFrame:
    """The first `limit` rows without the hidden columns, indexed 0..n-1 (as the table's selection is)."""
    return rows.drop(columns=[c for c in HIDDEN if c in rows.columns]).head(limit).reset_index(drop=True)


def label_counts(spec: TaskSpec, examples: list) -> pd.DataFrame:
    """label, count: examples per class (every label of the task, zeros too), or entities per type for NER."""
    if spec.kind == "token_classification":
        counts = Counter(label for ex in examples for _, _, label in _spans(ex.tags or (), len(ex.tags or ())))
    else:
        counts = Counter(label for ex in examples for label in _labels(spec.kind, ex.label, 0))
    return pd.DataFrame({"label": list(spec.labels), "count": [counts.get(lab, 0) for lab in spec.labels]})


def confusion(labels: Sequence[str], rows: pd.DataFrame) -> pd.DataFrame:
    """Counts of (gold, answer) over classification rows: index gold labels, columns answered labels."""
    table = pd.DataFrame(0, index=pd.Index(list(labels), name="gold"), columns=pd.Index(list(labels), name="answer"))
    if not has_answers(rows):
        return table
    for (g, a), n in Counter(zip(rows["gold"], rows["answer"])).items():
        if g in table.index and a in table.columns:
            table.loc[g, a] = n
    return table


def cell_from_points(points: Sequence[dict], labels: Sequence[str]) -> tuple[str, str] | None:
    """(gold, answer) of the first clicked confusion cell from a Plotly selection's points: each point carries
    customdata [gold index, answer index] (labels on the axes are escaped, so indices, not names)."""
    for point in points or ():
        data = point.get("customdata") if isinstance(point, dict) else None
        if isinstance(data, (list, tuple)) and len(data) >= 2:
            try:
                g, a = int(data[0]), int(data[1])
            except (TypeError, ValueError):
                continue
            if 0 <= g < len(labels) and 0 <= a < len(labels):
                return labels[g], labels[a]
    return None
