"""The training data of a fine-tuning round: corrections from the store + replay of the original data.

- corrections: the latest non-undone label per (text, task) from the annotation log (`current_labels`;
  the most recent annotator wins), joined with the texts; NER span lists become word/BIO-tag examples.
- the test splits stay frozen: a correction whose text (normalised) is in any task's test split is dropped.
- replay: a deterministic sample of each task's original train split, so the shared encoder keeps
  what it knew (`replay_ratio` originals per correction).
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from mtl_core.data.bio import CharSpan, spans_to_tags, tags_to_spans, whitespace_offsets
from mtl_core.data.examples import Example
from mtl_core.store import current_labels, get_texts
from mtl_core.tasks import MULTILABEL, TaskFile, TaskSpec


@dataclass(frozen=True)
class Correction:
    """One corrected label as stored: the annotation event that set it, and its text."""

    event_id: int
    text_id: int
    task: str
    text: str
    value: Any
    annotator: str


@dataclass
class RoundData:
    prepared: dict[str, dict[str, list[Example]]]  # task -> {"train", "dev"} for training.train
    corrections: dict[str, list[Example]]  # task -> the correction examples (one per text)
    correction_ids: list[int]  # annotation event ids used
    counts: dict[str, dict[str, int]]  # task -> {corrections, replay, train, dev}
    skipped: dict[str, int] = field(default_factory=dict)  # why corrections were left out -> how many


def normalise(text: str) -> str:
    """Case- and whitespace-insensitive key used to match texts against the frozen test splits."""
    return " ".join(str(text).lower().split())


def load_corrections(session: Session, tasks: list[str] | None = None) -> list[Correction]:
    """The latest label per (text, task), texts joined in; ordered by event id (oldest first)."""
    latest: dict[tuple[int, str], Any] = {}
    for label in current_labels(session):
        if tasks is not None and label.task not in tasks:
            continue
        key = (label.text_id, label.task)
        if key not in latest or (label.created_at, label.event_id) > (latest[key].created_at, latest[key].event_id):
            latest[key] = label
    texts = get_texts(session, [k[0] for k in latest])
    out = [Correction(c.event_id, c.text_id, c.task, texts[c.text_id], c.value, c.annotator)
           for c in latest.values() if c.text_id in texts]
    return sorted(out, key=lambda c: c.event_id)


def correction_counts(session: Session) -> dict[str, int]:
    """task -> number of corrected texts (what a round would use, before test-split exclusion)."""
    counts: dict[str, int] = {}
    for c in load_corrections(session):
        counts[c.task] = counts.get(c.task, 0) + 1
    return counts


def spans_to_example(text: str, spans: list[dict], labels: list[str] | None = None) -> Example:
    """Character spans [{start, end, label}] -> words (whitespace split) and BIO tags.

    A word belongs to a span when they overlap; where spans overlap, the one that starts first (then the
    first listed) takes the word (`data.bio.spans_to_tags` over the spans sorted by start). Spans with an
    unknown label (when `labels` is given) are ignored."""
    offsets = whitespace_offsets(text)
    chosen = [c for c in map(CharSpan.from_dict, spans) if labels is None or c.label in labels]
    tags = spans_to_tags(offsets, sorted(chosen, key=lambda c: c.start))
    words = [text[s:e] for s, e in offsets]
    return Example(text=" ".join(words), words=tuple(words), tags=tuple(tags))


def correction_example(spec: TaskSpec, text: str, value: Any) -> Example | None:
    """A training example from a stored label, or None when the value does not fit the task."""
    if not text or not text.strip():
        return None
    if spec.kind == "token_classification":
        if not isinstance(value, list) or not all(isinstance(s, dict) and {"start", "end", "label"} <= s.keys()
                                                  for s in value):
            return None
        ex = spans_to_example(text, value, list(spec.labels))
        return ex if ex.words else None
    if spec.kind == "regression":
        try:
            v = float(value)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(v):
            return None
        lo, hi = spec.value_range
        return Example(text=text, label=min(max(v, lo), hi))
    if spec.kind == MULTILABEL:  # a list of labels ([] = none applies); an unknown label voids it
        if not isinstance(value, list) or not all(isinstance(v, str) and v in spec.labels for v in value):
            return None
        return Example(text=text, label=tuple(label for label in spec.labels if label in value))
    return Example(text=text, label=value) if value in spec.labels else None


def frozen_texts(prepared: dict[str, dict[str, list[Example]]]) -> set[str]:
    """Normalised texts of every task's test split."""
    return {normalise(ex.text) for splits in prepared.values() for ex in splits.get("test", [])}


def replay_sample(examples: list[Example], k: int, seed: int, task: str, exclude: set[str],
                  labels: list[str] | None = None) -> list[Example]:
    """A deterministic sample of `k` examples whose text is not in `exclude` (same seed, same sample).

    With `labels` (classification), half of the sample is spread evenly over the labels first, so a
    rare class is never missing from the replay (its absence would let the round unlearn it)."""
    pool = [ex for ex in examples if normalise(ex.text) not in exclude]
    rng = random.Random(seed * 1_000_003 + zlib.crc32(task.encode()))
    if k >= len(pool):
        return rng.sample(pool, len(pool))
    picked: list[int] = []
    if labels:
        quota = k // (2 * len(labels))
        for label in labels:
            idx = [i for i, ex in enumerate(pool) if ex.label == label]
            picked += rng.sample(idx, min(quota, len(idx)))
    chosen = set(picked)
    rest = [i for i in range(len(pool)) if i not in chosen]
    picked += rng.sample(rest, k - len(picked))
    rng.shuffle(picked)
    return [pool[i] for i in picked]


def build_round_data(task_file: TaskFile, prepared: dict[str, dict[str, list[Example]]],
                     corrections: list[Correction], *, tasks: list[str] | None = None, replay_ratio: float = 4.0,
                     upsample: int = 4, min_replay: int = 32, replay_all_tasks: bool = True,
                     stream_size: int = 0, seed: int = 0, joined: tuple[str, ...] = ()) -> RoundData:
    """Corrections (test texts excluded) upsampled + replay, per task, ready for `training.train`.

    `tasks`: tasks whose corrections are used (None = all). With `replay_all_tasks`, every task with
    training data gets replay (at least `min_replay`), so the ones without corrections are not forgotten.
    Replay size: `replay_ratio` originals per correction, grown so that the round's `stream_size`
    (steps x batch size) draws each replayed original about once: a small replay pool seen over and
    over would be memorised, and that is forgetting too.
    `joined`: tasks new to the model (rounds/join.py): all of their train split is used, none of it distilled
    (the base has no answer to keep), and the old tasks are replayed for them as for corrections."""
    specs = {t.name: t for t in task_file.tasks}
    frozen = frozen_texts(prepared)
    skipped = {"in_test_split": 0, "invalid_label": 0, "unknown_task": 0}
    by_task: dict[str, dict[str, tuple[int, Example]]] = {}
    for c in corrections:
        if tasks is not None and c.task not in tasks:
            continue
        spec = specs.get(c.task)
        if spec is None:
            skipped["unknown_task"] += 1
            continue
        ex = correction_example(spec, c.text, c.value)
        if ex is None:
            skipped["invalid_label"] += 1
        elif normalise(ex.text) in frozen:
            skipped["in_test_split"] += 1
        else:
            by_task.setdefault(c.task, {})[normalise(ex.text)] = (c.event_id, ex)  # later event wins
    total = sum(len(v) for v in by_task.values())
    trainable = [t for t in specs if prepared.get(t, {}).get("train")]
    wanted = total or any(t in trainable for t in joined)  # new data moves the encoder as corrections do
    replayed = [t for t in specs if t in by_task or (t in joined and t in trainable)
                or (replay_all_tasks and wanted and t in trainable)]
    base = {t: math.ceil(replay_ratio * len(by_task.get(t, {}))) for t in replayed}
    fill = max(0, stream_size - upsample * total - sum(base.values())) if replay_ratio > 0 else 0
    out, counts, ids = {}, {}, []
    for task in replayed:
        corr = by_task.get(task, {})
        k = max(min_replay, base[task] + fill // max(1, len(replayed))) if replay_ratio > 0 else 0
        originals = prepared.get(task, {})
        spec = specs[task]
        if task in joined:  # a new task's dataset is new data, not replay: all of it, never distilled
            replay = [ex for ex in originals.get("train", []) if normalise(ex.text) not in corr]
        else:
            replay = replay_sample(originals.get("train", []), k, seed, task, set(corr),
                                   labels=list(spec.labels) if spec.kind == "classification" else None)
        examples = [ex for _, ex in corr.values()]
        dev = [ex for ex in originals.get("dev", []) if normalise(ex.text) not in corr]
        # replay, not corrections, may learn the base model's own answers (TrainConfig.distill)
        out[task] = {"train": examples * upsample + replay, "dev": dev,
                     "distill": [False] * (len(examples) * upsample) + [task not in joined] * len(replay)}
        counts[task] = {"corrections": len(examples), "replay": len(replay), "train": len(out[task]["train"]),
                        "dev": len(dev)}
        ids += [i for i, _ in corr.values()]
    return RoundData(prepared=out, corrections={t: [ex for _, ex in v.values()] for t, v in by_task.items()},
                     correction_ids=sorted(ids), counts=counts, skipped=skipped)


def example_spans(ex: Example) -> list[dict]:
    """Inverse of `spans_to_example`: a token example's BIO tags as [{start, end, label}] over `ex.text`
    (`data.bio.tags_to_spans`, untrimmed; words beyond the shorter of words and tags are ignored)."""
    offsets, tags = ex.word_offsets(), ex.tags or ()
    n = min(len(offsets), len(tags))
    return [span.to_dict() for span in tags_to_spans(offsets[:n], tags[:n])]
