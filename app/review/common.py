"""Review page: the session-state keys and titles its sections share, and its one-shot flash message."""

from __future__ import annotations

from app.shared.flash import one_shot

ANNOTATOR = "review_annotator"  # the name, kept for the whole session (not a widget key)
PIN = "review_pin"  # (text id, task) to show next, set by undo
FLASH = "review_flash"  # (level, message) shown once after a callback
ITEM = "review_item"  # id of the queue item the editors were filled for
REASON_TITLES = {
    "uncertain": "Model unsure",
    "contradiction": "Answers contradict each other",
    "model_vs_label": "Model disagrees with the data-set label",
    "version_vs_version": "Model versions disagree",
    "annotator_conflict": "Annotators disagree",
}
REASON_COLORS = {"uncertain": "orange", "contradiction": "red", "model_vs_label": "violet",
                 "version_vs_version": "blue", "annotator_conflict": "gray"}

flash, show_flash = one_shot(FLASH)
