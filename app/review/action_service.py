"""Review page services: the actions of one drawn item (refused when stale, never stored twice), the data-set
label beside the model's, and the annotator's figures and skipped items.

Plain functions over a sessionmaker (no widgets), so tests call them directly. The rules live in
`mtl_core.store.actions`: a button carries the `Drawn` item it was drawn for, and the store refuses a click
whose item changed since (StaleAction) instead of applying it to whatever item is current.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select

from mtl_core.store import QueueEntry
from mtl_core.store.actions import Action, Drawn, StaleAction, latest_effective, record_drawn, text_version
from mtl_core.store.db import Sessions
from mtl_core.store.models import DatasetLabel
from mtl_core.store.stats import AnnotatorStats, SkippedItem, annotator_stats, skipped_items

__all__ = ["Action", "Drawn", "StaleAction", "act", "annotator_figures", "dataset_label", "draw", "skipped",
           "undo_target"]


def draw(sessions: Sessions, entry: QueueEntry, annotator: str) -> Drawn:
    """The identity the item's buttons carry: queue item, text, task and the annotator's version of the text."""
    with sessions() as s:
        return Drawn(entry.id, entry.text_id, entry.task, text_version(s, entry.text_id, annotator))


def undo_target(sessions: Sessions, annotator: str) -> int | None:
    """The id of the event the Undo button would cancel now (None: nothing to undo)."""
    with sessions() as s:
        event = latest_effective(s, annotator)
        return event.id if event is not None else None


def act(sessions: Sessions, drawn: Drawn, annotator: str, actions: list[Action], bulk: bool = False) -> int:
    """Record the actions of one click on `drawn`; returns how many events were written. StaleAction when the
    item changed since it was drawn (the click is then refused, not applied to another item)."""
    with sessions() as s:
        return len(record_drawn(s, drawn, annotator, actions, bulk=bulk))


def dataset_label(sessions: Sessions, text_id: int, task: str | None) -> Any | None:
    """The data set's gold label of the text for `task`, if it has one."""
    if task is None:
        return None
    with sessions() as s:
        return s.scalar(select(DatasetLabel.value).where(DatasetLabel.text_id == text_id, DatasetLabel.task == task))


def _start_of_today() -> datetime:
    """Local midnight, as the naive UTC the store keeps."""
    local = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    return local.astimezone(timezone.utc).replace(tzinfo=None)


def annotator_figures(sessions: Sessions, annotator: str) -> AnnotatorStats:
    with sessions() as s:
        return annotator_stats(s, annotator, _start_of_today())


def skipped(sessions: Sessions, annotator: str, limit: int = 100) -> list[SkippedItem]:
    with sessions() as s:
        return skipped_items(s, annotator, limit)
