"""Valid BIO tag sequences by construction: Viterbi over per-word tag scores under BIO constraints.

Per-word argmax can give "I-person" after "O" (an entity without a start) or "B-person B-person" for
"Barack Obama" (one name split in two). The decoder forbids:
  - I-X after O, after the start, or after any tag of another type Y != X;
  - B-X right after B-X or I-X: two adjacent entities of the same type. In the WNUT tweets these are 5 of
    ~1,500 entities (0.3 %), so a name split in two is almost always an error, never an answer.
With a CRF head (`TokenHead.crf`) the learnt transition scores are added to these constraints.
"""

from __future__ import annotations

import numpy as np

NEG = -1e9  # "impossible": finite, so a row where everything is forbidden still decodes to something


def transition_mask(tag_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """-> (start (C,), trans (C, C)): 0 where allowed, NEG where forbidden; trans[prev, next]."""
    n = len(tag_names)
    start = np.zeros(n)
    trans = np.zeros((n, n))
    for j, nxt in enumerate(tag_names):
        if nxt.startswith("I-"):
            start[j] = NEG
        for i, prev in enumerate(tag_names):
            prev_type = prev[2:] if prev != "O" else None
            orphan_inside = nxt.startswith("I-") and prev_type != nxt[2:]
            split_name = nxt.startswith("B-") and prev_type == nxt[2:]
            if orphan_inside or split_name:
                trans[i, j] = NEG
    return start, trans


_CACHE: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}


def _mask_for(tag_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    key = tuple(tag_names)
    if key not in _CACHE:
        _CACHE[key] = transition_mask(tag_names)
    return _CACHE[key]


def viterbi(scores: np.ndarray, tag_names: list[str], transitions: np.ndarray | None = None,
            start_scores: np.ndarray | None = None, end_scores: np.ndarray | None = None) -> list[int]:
    """Best valid tag ids for (W, C) per-word scores (log-probabilities, or CRF emissions).

    `transitions` (C, C), `start_scores`/`end_scores` (C,): a CRF's learnt scores, added to the constraints."""
    if len(scores) == 0:
        return []
    start, trans = _mask_for(tag_names)
    if transitions is not None:
        trans = trans + transitions
    score = scores[0] + start + (start_scores if start_scores is not None else 0.0)  # (C,)
    back = np.zeros(scores.shape, dtype=np.int64)  # (W, C) best previous tag
    for w in range(1, len(scores)):
        total = score[:, None] + trans  # (C prev, C next)
        back[w] = total.argmax(0)
        score = total.max(0) + scores[w]
    if end_scores is not None:
        score = score + end_scores
    best = [int(score.argmax())]
    for w in range(len(scores) - 1, 0, -1):
        best.append(int(back[w, best[-1]]))
    return best[::-1]


def decode_words(logits: np.ndarray, tag_names: list[str], crf: dict | None = None) -> list[int]:
    """(W, C) head outputs of each word's first piece -> valid tag ids: log-probabilities under the BIO
    constraints, or (with a CRF's `crf_scores`) the raw emissions plus its learnt transitions."""
    scores = logits.astype(np.float64)
    return viterbi(scores if crf else log_softmax(scores), tag_names, **(crf or {}))


def log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
