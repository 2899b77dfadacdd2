"""Optional CRF on a token head (`ModelConfig.crf`): learnt tag transitions, trained on whole sequences.

The CRF itself is pytorch-crf's (`torchcrf.CRF`: forward algorithm and negative log-likelihood); this
module only moves word-level emissions in and out of it. It runs over the first piece of each word (where
labels sit), so continuation pieces and specials never enter a transition. Decoding is
`bio_viterbi.viterbi` with the learnt scores added to the BIO constraints.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

IGNORE = -100  # same as features.IGNORE: pieces without a word label


def make_crf(n_tags: int) -> nn.Module:
    try:
        from torchcrf import CRF
    except ModuleNotFoundError:
        raise ModuleNotFoundError("ModelConfig.crf needs pytorch-crf: pip install pytorch-crf") from None
    return CRF(n_tags, batch_first=True)


def word_rows(logits: torch.Tensor, labels: torch.Tensor):
    """(B, T, C) piece logits, (B, T) labels -> (emissions (B', W, C), tags (B', W), mask (B', W)) for the
    B' rows with at least one labelled word, words packed to the left."""
    keep = labels != IGNORE  # (B, T)
    counts = keep.sum(1)
    rows = counts > 0
    logits, labels, keep, counts = logits[rows], labels[rows], keep[rows], counts[rows]
    width = int(counts.max()) if len(counts) else 0
    # position of every labelled piece in its packed row: its rank among the row's labelled pieces
    slot = keep.long().cumsum(1) - 1  # (B', T)
    em = logits.new_zeros((logits.shape[0], width, logits.shape[-1]))
    tags = labels.new_zeros((labels.shape[0], width))
    r, t = keep.nonzero(as_tuple=True)
    em[r, slot[r, t]] = logits[r, t]
    tags[r, slot[r, t]] = labels[r, t]
    mask = torch.arange(width, device=labels.device)[None, :] < counts[:, None]
    return em, tags, mask


def crf_loss(crf: nn.Module, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood per labelled word (same scale as the token cross-entropy)."""
    em, tags, mask = word_rows(logits.float(), labels)
    if em.shape[0] == 0:
        return logits.sum() * 0.0
    return -crf(em, tags, mask, reduction="sum") / mask.sum()


def crf_scores(crf: nn.Module | None) -> dict | None:
    """The learnt scores as `viterbi(...)` keyword arguments (numpy), or None without a CRF."""
    if crf is None:
        return None
    as_np = lambda t: t.detach().float().cpu().numpy().astype(np.float64)  # noqa: E731
    return {"transitions": as_np(crf.transitions), "start_scores": as_np(crf.start_transitions),
            "end_scores": as_np(crf.end_transitions)}
