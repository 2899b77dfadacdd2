"""Near-identical texts by their shared-encoder vectors: the cluster a bulk label applies to. Pure numpy."""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.95  # cosine similarity of the pooled representations; 1.0 = the same text


def near_duplicates(anchor: np.ndarray, others: np.ndarray, threshold: float = DEFAULT_THRESHOLD
                    ) -> list[tuple[int, float]]:
    """(index into `others`, cosine) for every row of `others` within `threshold` of `anchor`, most similar
    first. Rows need not be unit length: each is normalised here (a zero row matches nothing)."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if len(others) == 0:
        return []
    a = np.asarray(anchor, dtype=np.float64)
    b = np.asarray(others, dtype=np.float64)
    norms = np.linalg.norm(b, axis=1) * (np.linalg.norm(a) or np.inf)
    cosine = np.divide(b @ a, norms, out=np.zeros(len(b)), where=norms > 0)
    hits = [(int(i), float(cosine[i])) for i in np.flatnonzero(cosine >= threshold - 1e-9)]
    return sorted(hits, key=lambda h: (-h[1], h[0]))
