"""Property-based: a multi-label head's decoding chooses exactly the labels whose probability reaches their
threshold, for any logits and thresholds; thresholds come from `model.thresholds` or default to 0.5."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from mtl_core.model.decoding import DEFAULT_THRESHOLD, decode_multilabel, decode_task, task_thresholds
from mtl_core.tasks import MULTILABEL, TaskSpec

SPEC = TaskSpec("topics", MULTILABEL, ["a", "b", "c", "d"])
logits = st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=4, max_size=4)
thresholds = st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4)


@given(logits, thresholds)
def test_chosen_labels_are_those_at_or_above_their_threshold(raw, cuts):
    thr = dict(zip(SPEC.labels, cuts))
    answer = decode_multilabel(SPEC, np.asarray(raw, dtype=np.float32), thr)
    assert answer.kind == MULTILABEL and answer.thresholds == thr and list(answer.probs) == SPEC.labels
    assert answer.labels == [lab for lab in SPEC.labels if answer.probs[lab] >= thr[lab]]
    assert all(0.0 <= p <= 1.0 for p in answer.probs.values())
    order = np.argsort(raw, kind="stable")
    assert all(answer.probs[SPEC.labels[i]] <= answer.probs[SPEC.labels[j]] for i, j in zip(order, order[1:]))


def test_thresholds_come_from_the_model_with_a_default():
    class Model:
        thresholds = {"topics": {"a": 0.2, "c": 0.9}, "other": {"x": 0.1}}

    assert task_thresholds(Model(), SPEC) == {"a": 0.2, "b": DEFAULT_THRESHOLD, "c": 0.9, "d": DEFAULT_THRESHOLD}
    assert task_thresholds(object(), SPEC) == dict.fromkeys(SPEC.labels, DEFAULT_THRESHOLD)  # none saved
    answer = decode_task(SPEC, np.zeros(4, dtype=np.float32), None, 0, "text")  # sigmoid(0) = 0.5 >= 0.5
    assert answer.labels == SPEC.labels and answer.thresholds == dict.fromkeys(SPEC.labels, DEFAULT_THRESHOLD)
