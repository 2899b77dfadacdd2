"""A user's new task: its texts and labels in the store, its status, and which text to label next.

Texts of a new task live under the source ``task:<name>`` (its pool, labelled or not); labels are ordinary
annotation events with ``task=<name>``, so the Review page, exports and rounds see them like any other.
Which text next: with no few-shot head yet, *diverse* texts first (k-means on the shared encoder's features,
the text nearest each centre); once a head exists, the *least certain* (smallest top-1 minus top-2 margin).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from mtl_core.review.fewshot_fit import cached_features, task_labels
from mtl_core.serve.fewshot import FewShotConfig, load_heads
from mtl_core.serve.predictor import Predictor
from mtl_core.store import add_texts
from mtl_core.store.annotations import add_annotation, current_labels
from mtl_core.store.models import TextRow
from mtl_core.tasks import MULTILABEL, TaskSpec

SCAN_LIMIT = 500  # pool texts considered per pick (features cached, so later picks are cheap)


@dataclass
class NextText:
    text_id: int
    text: str
    why: str  # shown to the annotator: "diverse: ..." or "uncertain: ..."


def pool_source(task: str) -> str:
    return f"task:{task}"


def store_rows(session: Session, task: str, rows: list[tuple[str, Any]], annotator: str) -> tuple[int, int]:
    """Store a file's rows as the task's texts; rows with a label also get a label event. -> (texts, labels)."""
    ids = add_texts(session, [t for t, _ in rows], source=pool_source(task))
    n = 0
    for text_id, (_, value) in zip(ids, rows):
        if value is not None:
            add_annotation(session, text_id, task, value, annotator)
            n += 1
    session.commit()
    return len(set(ids)), n


def label_counts(session: Session, spec: TaskSpec) -> dict[str, int]:
    """Labelled texts per class (classification), or {"labelled": n} for other kinds."""
    values = [v for _, v in task_labels(session, spec.name)]
    if spec.kind == MULTILABEL:  # texts carrying each label
        counts = Counter(label for v in values if isinstance(v, list) for label in v)
        return {label: counts.get(label, 0) for label in spec.labels}
    if spec.kind != "classification":
        return {"labelled": len(values)}
    counts = Counter(values)
    return {label: counts.get(label, 0) for label in spec.labels}


def pool_size(session: Session, task: str) -> int:
    return len(session.scalars(select(TextRow.id).where(TextRow.source == pool_source(task))).all())


def next_texts(session: Session, home: str | Path | None, predictor: Predictor, spec: TaskSpec, n: int = 1,
               seed: int = 0) -> list[NextText]:
    """The next `n` unlabelled pool texts to label: diverse before a head exists, least certain after."""
    done = {row.text_id for row in current_labels(session, spec.name)}
    rows = session.execute(select(TextRow.id, TextRow.text).where(TextRow.source == pool_source(spec.name))
                           .order_by(TextRow.id)).all()
    todo = [(i, t) for i, t in rows if i not in done]
    if not todo:
        return []
    rng = np.random.default_rng(seed)
    if len(todo) > SCAN_LIMIT:
        todo = [todo[i] for i in sorted(rng.choice(len(todo), SCAN_LIMIT, replace=False))]
    head = load_heads(home, predictor.version, {spec.name}).get(spec.name)
    rep = head.representation if head else FewShotConfig().representation
    x = cached_features(home, predictor, [t for _, t in todo], rep)
    if head is not None and head.kind == MULTILABEL:  # the label probability nearest its threshold (0.5)
        gap = np.abs(head.proba(x) - 0.5).min(axis=1)
        return [NextText(todo[i][0], todo[i][1], f"uncertain: a label's probability is {gap[i]:.2f} from 0.5")
                for i in np.argsort(gap)[:n]]
    if head is not None:
        probs = np.sort(head.proba(x), axis=1)
        margin = probs[:, -1] - probs[:, -2]
        order = np.argsort(margin)[:n]
        return [NextText(todo[i][0], todo[i][1], f"uncertain: the few-shot head's margin is {margin[i]:.2f}")
                for i in order]
    return _diverse(todo, x, n, seed)


def _diverse(todo: list[tuple[int, str]], x: np.ndarray, n: int, seed: int) -> list[NextText]:
    """The text nearest each of k-means' centres, largest clusters first (k = max(n, 8), capped by the pool)."""
    from sklearn.cluster import KMeans

    k = min(len(todo), max(n, 8))
    km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(x)
    sizes = np.bincount(km.labels_, minlength=k)
    picks = []
    for c in np.argsort(-sizes):
        members = np.flatnonzero(km.labels_ == c)
        if len(members):
            best = members[np.argmin(((x[members] - km.cluster_centers_[c]) ** 2).sum(1))]
            picks.append(NextText(todo[best][0], todo[best][1],
                                  f"diverse: represents a group of {sizes[c]} similar texts (no head yet)"))
    return picks[:n]
