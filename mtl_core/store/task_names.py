"""A task renamed: its current labels are carried over to the new name.

The annotation log is append-only (database triggers refuse UPDATE/DELETE), so a rename never edits events:
each text's current label per annotator under the old name becomes a new event under the new name (same
value and annotator, reason None). The old events stay as history; queue items and stored answers of the old
name are left to be re-scored.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from mtl_core.store.annotations import current_labels, new_event


def copy_task_labels(session: Session, old: str, new: str) -> int:
    """Copy every current label of task `old` to task `new` (ValueError if `new` has labels); -> labels copied."""
    if current_labels(session, new):
        raise ValueError(f"the store already has labels for a task named {new!r}")
    rows = current_labels(session, old)
    for row in rows:
        new_event(session, row.text_id, new, row.kind, row.value, row.annotator, None)
    session.commit()
    return len(rows)
