"""Deduplication and hash-based train/dev/test splits.

A text's split depends only on the text (and the seed), never on the task or the row order. So
the same sentence lands in the same split in every task: the Rotten Tomatoes snippets reappear
in VADER's movie snippets (often re-punctuated), and a per-task random split would put a test
sentence of one task into the training data of the other through the shared encoder."""

from __future__ import annotations

import hashlib
import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

from mtl_core.data.bio import entity_types_of
from mtl_core.data.examples import Example

SPLITS = ("train", "dev", "test")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
_NON_WORD = re.compile(r"[\W_]+")


def normalise_text(text: str) -> str:
    """Dedup key: NFKC, whitespace collapsed, casefolded."""
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


def split_key(text: str) -> str:
    """Hash key for splits: the normalised text without punctuation or spaces.

    Stricter than `normalise_text` because the VADER copies of RT snippets differ in punctuation
    ("co-writer" vs "co writer", curly vs '' quotes): 6.2k of 10.6k match after normalise_text,
    10.45k after this. Texts that are only punctuation keep their normalised form."""
    norm = normalise_text(text)
    return _NON_WORD.sub("", norm) or norm


def _unit_hash(key: str, salt: str) -> float:
    """Stable value in [0, 1) (blake2b: Python's hash() is salted per process)."""
    digest = hashlib.blake2b(f"{salt}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _check_fractions(fractions: Sequence[float]) -> None:
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(
            f"fractions must be three non-negative numbers (train, dev, test) summing to 1, got {fractions}"
        )


def assign_split(text: str, seed: int = 0, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> str:
    """'train', 'dev' or 'test', from a stable hash of the text's split key and the seed."""
    _check_fractions(fractions)
    u = _unit_hash(split_key(text), f"split:{seed}")
    if u < fractions[0]:
        return "train"
    return "dev" if u < fractions[0] + fractions[1] else "test"


def _merge(group: list[Example]) -> Example | None:
    """One example for a group of duplicates; None when a classification (or multi-label) vote ties."""
    first = group[0]
    if len(group) == 1 or first.tags is not None:
        return first  # token tasks: keep the first annotation
    labels = [ex.label for ex in group]
    if all(isinstance(x, tuple) for x in labels):
        return _merge_sets(first.text, labels)
    if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in labels):
        return Example(first.text, statistics.fmean(labels))
    top = Counter(labels).most_common()
    if len(top) > 1 and top[0][1] == top[1][1]:
        return None  # no majority: the text is ambiguous, drop it
    return Example(first.text, top[0][0])


def _merge_sets(text: str, sets: list[tuple[str, ...]]) -> Example | None:
    """Multi-label duplicates: a label stays when most copies carry it; None when a label's vote ties."""
    votes = Counter(label for labels in sets for label in set(labels))
    if any(2 * n == len(sets) for n in votes.values()):
        return None
    order = list(dict.fromkeys(label for labels in sets for label in labels))  # first-seen order
    return Example(text, tuple(label for label in order if 2 * votes[label] > len(sets)))


def dedupe(examples: Iterable[Example]) -> list[Example]:
    """One example per normalised text, in first-seen order (majority label / mean value / per-label majority)."""
    groups: dict[str, list[Example]] = {}
    for ex in examples:
        groups.setdefault(normalise_text(ex.text), []).append(ex)
    merged = (_merge(g) for g in groups.values())
    return [ex for ex in merged if ex is not None]


def split_examples(
    examples: Iterable[Example], seed: int = 0, fractions: Sequence[float] = DEFAULT_FRACTIONS
) -> dict[str, list[Example]]:
    """Dedupe, then hash-split; each split keeps the input order. No text sits in two splits."""
    _check_fractions(fractions)
    out: dict[str, list[Example]] = {name: [] for name in SPLITS}
    for ex in dedupe(examples):
        out[assign_split(ex.text, seed, fractions)].append(ex)
    return out


def subsample(examples: Sequence[Example], n: int, seed: int = 0) -> list[Example]:
    """A deterministic `n`-example subset (order kept), chosen by a hash independent of the split hash."""
    if n >= len(examples):
        return list(examples)
    ranked = sorted(
        range(len(examples)), key=lambda i: _unit_hash(split_key(examples[i].text), f"sub:{seed}")
    )
    keep = set(ranked[:n])
    return [ex for i, ex in enumerate(examples) if i in keep]


def label_counts(examples: Iterable[Example]) -> Counter:
    """Class counts, or entity-type counts for token examples; empty for regression."""
    counts: Counter = Counter()
    for ex in examples:
        if ex.tags is not None:
            counts.update(entity_types_of(ex.tags))
        elif isinstance(ex.label, str):
            counts[ex.label] += 1
        elif isinstance(ex.label, tuple):  # multi-label: texts carrying each label
            counts.update(ex.label)
    return counts


def value_stats(examples: Iterable[Example]) -> dict[str, float]:
    """mean, std, min, max of regression labels ({} when there are none)."""
    values = [float(ex.label) for ex in examples if isinstance(ex.label, (int, float))]
    if not values:
        return {}
    std = statistics.pstdev(values)
    return {"mean": statistics.fmean(values), "std": std, "min": min(values), "max": max(values)}
