"""Tokenise texts once, keep offsets, truncate ourselves so truncation is always reported."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

_TOKENIZER_LOG = logging.getLogger("transformers.tokenization_utils_base")


@dataclass
class EncodedBatch:
    input_ids: torch.Tensor  # (B, T) padded
    attention_mask: torch.Tensor  # (B, T) 1 = real token
    lengths: list[int]  # tokens kept per row, specials included
    full_lengths: list[int]  # tokens the whole text needed
    truncated: list[bool]
    tokens: list[list[str]]  # word pieces kept, per row
    offsets: list[list[tuple[int, int]]]  # char span per kept token; (0, 0) for specials

    def word_starts(self, row: int, text: str) -> list[bool]:
        """True for the first word piece of each whitespace-separated word (where token-task labels sit)."""
        flags = []
        for s, e in self.offsets[row]:
            flags.append(e > s and (s == 0 or text[s - 1].isspace()))
        return flags


def encode_texts(tokenizer, texts: list[str], max_length: int) -> EncodedBatch:
    """Tokenise without truncation (to know the full length), then cut to `max_length` keeping the final special token."""
    if _TOKENIZER_LOG.level != logging.ERROR:  # setLevel clears logging's caches: ~0.5 ms per call
        _TOKENIZER_LOG.setLevel(logging.ERROR)
    enc = tokenizer(list(texts), add_special_tokens=True, truncation=False, return_offsets_mapping=True,
                    return_attention_mask=False, verbose=False)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids_rows, offset_rows, full, cut = [], [], [], []
    for ids, offs in zip(enc["input_ids"], enc["offset_mapping"]):
        full.append(len(ids))
        cut.append(len(ids) > max_length)
        if len(ids) > max_length:
            ids = ids[: max_length - 1] + ids[-1:]
            offs = offs[: max_length - 1] + offs[-1:]
        ids_rows.append(ids)
        offset_rows.append([tuple(o) for o in offs])
    width = max(len(r) for r in ids_rows)
    # one tensor from padded lists: far cheaper than a torch.tensor + slice assignment per row
    input_ids = torch.tensor([r + [pad_id] * (width - len(r)) for r in ids_rows], dtype=torch.long)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in ids_rows], dtype=torch.long)
    return EncodedBatch(
        input_ids=input_ids,
        attention_mask=mask,
        lengths=[len(r) for r in ids_rows],
        full_lengths=full,
        truncated=cut,
        tokens=[tokenizer.convert_ids_to_tokens(r) for r in ids_rows],
        offsets=offset_rows,
    )
