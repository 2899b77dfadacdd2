"""Review page: the session-state keys and titles its sections share, and its one-shot flash message."""

from __future__ import annotations

from app.shared.flash import one_shot

ANNOTATOR = "review_annotator"  # the name, kept for the whole session (not a widget key)
PIN = "review_pin"  # (text id, task) to show next, set by undo
FLASH = "review_flash"  # (level, message) shown once after a callback
ITEM = "review_item"  # id of the queue item the editors were filled for
NAME_PARAM = "annotator"  # the URL query parameter that keeps the name across a reload
SHOWN = "review_shown"  # hidden widget: the token of the item the browser shows (see actions_view)
REASON_TITLES = {
    "uncertain": "Model unsure",
    "contradiction": "Answers contradict each other",
    "model_vs_label": "Model disagrees with the data-set label",
    "version_vs_version": "Model versions disagree",
    "annotator_conflict": "Annotators disagree",
}
REASON_COLORS = {"uncertain": "orange", "contradiction": "red", "model_vs_label": "violet",
                 "version_vs_version": "blue", "annotator_conflict": "gray"}

# What a queue score measures, per reason (shown under the item: "why this item, why now").
SCORE_HELP = {
    "uncertain": "how unsure the model is: ½·(1 − margin between its top two classes) + ½·normalised entropy "
                 "(1 = a coin flip); NER: 1 − the weakest span's confidence",
    "contradiction": "confidence of the first answer × how clearly the second breaks the task file's rule",
    "model_vs_label": "the model's confidence in its own class minus its probability for the data-set label "
                      "(NER: 1 − overlap of the two span sets; numbers: the gap over half the scale)",
    "version_vs_version": "how far the two versions' answers moved (mean confidence of two different classes)",
    "annotator_conflict": "share of annotators outside the majority, doubled (a 1–1 split is 1.0)",
}
# Keyboard shortcuts of the Review actions (Streamlit's `st.button(shortcut=)`; C and R are reserved by it).
KEYS = {"accept": "A", "keep": "K", "save": "Ctrl+Enter", "skip": "S", "undo": "U", "next_task": "N"}
CLASS_KEYS = "123456789"  # the n-th class of a classification task: that class, saved, next item

flash, show_flash = one_shot(FLASH)
