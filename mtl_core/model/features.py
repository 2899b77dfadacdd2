"""Examples -> token ids + label tensors, and length-bucketed batches."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from mtl_core.model.bio_viterbi import decode_words
from mtl_core.model.decoding import regression_target
from mtl_core.model.word_shape import shape_ids
from mtl_core.tasks import MULTILABEL, TaskSpec

if TYPE_CHECKING:  # annotations only: no import cost or cycle at run time
    from transformers import PreTrainedTokenizerBase

IGNORE = -100  # label id for tokens that carry no NER label (continuation pieces, specials)


@dataclass
class Feature:
    input_ids: list[int]
    label: int | float | list[int] | list[float]  # class id, normalised regression target, per-token tag ids,
    # or (multi-label) a multi-hot row: 1.0 per label the text carries
    word_index: list[int] | None = None  # token tasks: word each piece starts, -1 for none
    soft: float | list | None = None  # distillation target (mtl_core.train.distill), replaces the label's one-hot
    soft_weight: float = 1.0  # the row's loss weight (focal distillation: mtl_core.train.distill)
    shape_ids: list[int] | None = None  # token tasks: word-shape id per piece (word_shape.py)


def featurize(spec: TaskSpec, examples: list, tokenizer: PreTrainedTokenizerBase, max_length: int) -> list[Feature]:
    """Tokenise a task's examples once; token tasks label the first piece of each whitespace word."""
    texts = [ex.text for ex in examples]
    enc = tokenizer(texts, truncation=True, max_length=max_length, return_offsets_mapping=True,
                    return_attention_mask=False, verbose=False)
    out = []
    for ex, ids, offsets in zip(examples, enc["input_ids"], enc["offset_mapping"]):
        if spec.kind == "token_classification":
            out.append(_token_feature(spec, ex, ids, offsets))
        elif spec.kind == "regression":
            out.append(Feature(ids, regression_target(spec, ex.label)))
        elif spec.kind == MULTILABEL:
            out.append(Feature(ids, [1.0 if lab in ex.label else 0.0 for lab in spec.labels]))
        else:
            out.append(Feature(ids, spec.labels.index(ex.label)))
    return out


def _token_feature(spec: TaskSpec, ex, ids: list[int], offsets) -> Feature:
    tag_ids = {t: i for i, t in enumerate(spec.tag_names)}
    start_to_word = {s: w for w, (s, _) in enumerate(ex.word_offsets())}
    word_index = [start_to_word.get(s, -1) if e > s else -1 for s, e in offsets]
    labels = [tag_ids.get(ex.tags[w], 0) if w >= 0 else IGNORE for w in word_index]
    return Feature(ids, labels, word_index, shape_ids=shape_ids(ex.text, offsets))


def predicted_word_tags(spec: TaskSpec, feature: Feature, logits: np.ndarray, n_words: int,
                        crf: dict | None = None) -> list[str]:
    """One tag per word from (T, C) head outputs: the first pieces' scores decoded as one valid BIO
    sequence (`bio_viterbi`); words the model never saw (truncated) are "O"."""
    tags = ["O"] * n_words
    pieces = [(p, w) for p, w in enumerate(feature.word_index or []) if 0 <= w < n_words]
    if not pieces:
        return tags
    for (_, word), k in zip(pieces, decode_words(logits[[p for p, _ in pieces]], spec.tag_names, crf)):
        tags[word] = spec.tag_names[k]
    return tags


def collate(features: list[Feature], kind: str, pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(f.input_ids) for f in features)
    ids = torch.full((len(features), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(features), width), dtype=torch.long)
    for i, f in enumerate(features):
        ids[i, : len(f.input_ids)] = torch.tensor(f.input_ids)
        mask[i, : len(f.input_ids)] = 1
    out = {"input_ids": ids, "attention_mask": mask}
    if kind == "token_classification":
        labels = torch.full((len(features), width), IGNORE, dtype=torch.long)
        shapes = torch.zeros((len(features), width), dtype=torch.long)
        for i, f in enumerate(features):
            labels[i, : len(f.label)] = torch.tensor(f.label)
            if f.shape_ids:
                shapes[i, : len(f.shape_ids)] = torch.tensor(f.shape_ids)
        out["shape_ids"] = shapes
    elif kind == "regression":
        labels = torch.tensor([f.label for f in features], dtype=torch.float)
    elif kind == MULTILABEL:
        labels = torch.tensor([f.label for f in features], dtype=torch.float)  # (B, n_labels) multi-hot
    else:
        labels = torch.tensor([f.label for f in features], dtype=torch.long)
    out["labels"] = labels
    return out


def model_inputs(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    """A collated batch's model keyword arguments on `device` (token tasks also carry their word shapes)."""
    return {k: batch[k].to(device) for k in ("input_ids", "attention_mask", "shape_ids") if k in batch}


def bucketed_batches(features: list[Feature], batch_size: int, rng: random.Random, chunk: int = 50) -> list[list[int]]:
    """Shuffle, then sort by length inside chunks of `chunk` batches: little padding, still random order."""
    order = list(range(len(features)))
    rng.shuffle(order)
    batches = []
    span = batch_size * chunk
    for start in range(0, len(order), span):
        block = sorted(order[start:start + span], key=lambda i: len(features[i].input_ids))
        batches += [block[i:i + batch_size] for i in range(0, len(block), batch_size)]
    rng.shuffle(batches)
    return batches


def sorted_batches(features: list[Feature], batch_size: int) -> list[list[int]]:
    """Deterministic length-sorted batches for evaluation."""
    order = sorted(range(len(features)), key=lambda i: len(features[i].input_ids))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
