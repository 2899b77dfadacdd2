"""Review page services: the cluster of near-identical queue items a bulk label applies to.

Near-identical = cosine similarity of the shared encoder's pooled vectors (`Predictor.embed`, cached per
text) at or above a threshold, among this annotator's open queue items for the same task.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.shared import services
from mtl_core.review.similar import near_duplicates
from mtl_core.serve.predictor import Predictor
from mtl_core.store import QueueEntry, top_queue
from mtl_core.store.db import Sessions

BULK_POOL = 200  # open queue items of the same task compared with the shown one
BULK_KINDS = ("classification", "regression", "multilabel_classification")  # one value fits every text (spans are
# offsets in one text)


@dataclass(frozen=True)
class Member:
    entry: QueueEntry
    similarity: float


def cluster(sessions: Sessions, predictor: Predictor, version: str, entry: QueueEntry, annotator: str,
            threshold: float, pool: int = BULK_POOL) -> list[Member]:
    """The annotator's open items for `entry.task` (other texts) whose text is within `threshold` of it."""
    with sessions() as s:
        items = top_queue(s, limit=pool, task=entry.task, annotator=annotator)
    others, seen = [], {entry.text_id}
    for item in items:
        if item.text_id not in seen:
            seen.add(item.text_id)
            others.append(item)
    if not others:
        return []
    vectors = services.embed_texts(predictor, version, [entry.text] + [q.text for q in others])
    return [Member(others[i], sim) for i, sim in near_duplicates(vectors[0], vectors[1:], threshold)]
