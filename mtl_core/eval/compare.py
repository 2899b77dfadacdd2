"""Old vs new model: per-example answers, metric and per-label deltas, confusion differences,
examples fixed and broken, and the tasks that regressed. Everything here is JSON-friendly.

`predict_answers`/`answers_for` run a model and `cached_answers` keeps a version's answers on disk; every
other function is pure (lists and dicts in, lists and dicts out).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from mtl_core.data.bio import tags_to_spans as bio_tags_to_spans
from mtl_core.eval.flips import negative_flip_rate
from mtl_core.eval.metrics import (
    PRIMARY,
    classification_metrics,
    multilabel_metrics,
    ner_metrics,
    regression_metrics,
    task_outputs,
)
from mtl_core.model.decoding import chosen_labels, regression_value, sigmoid, task_thresholds
from mtl_core.model.features import featurize, predicted_word_tags
from mtl_core.model.runner import ModelRunner
from mtl_core.tasks import MULTILABEL, TaskSpec
from mtl_core.workspace import workspace_dir

REGRESSION_TOLERANCE = 1.0  # a regression answer is "wrong" when it is off by more than this
REGRESSION_THRESHOLD = 0.01  # a primary-metric drop above this (1 point) is a regression
MAX_EXAMPLES = 200  # fixed/broken examples kept per list (the counts stay exact)
SKIP_REPORT_KEYS = {"accuracy", "macro avg", "weighted avg", "micro avg"}


# ---------------------------------------------------------------------------------- answers


def gold_answers(spec: TaskSpec, examples: list) -> list:
    """The gold answer per example: class name, float, list of BIO tags, or (multi-label) list of labels."""
    if spec.kind == "token_classification":
        return [list(ex.tags) for ex in examples]
    if spec.kind == MULTILABEL:
        return [list(ex.label) for ex in examples]
    if spec.kind == "regression":
        return [float(ex.label) for ex in examples]
    return [ex.label for ex in examples]


def predict_answers(runner: ModelRunner, spec: TaskSpec, examples: list) -> list:
    """The model's answer per example, in the same form as `gold_answers`."""
    if not examples:
        return []
    feats = featurize(spec, examples, runner.tokenizer, runner.length_for(spec))
    outs = task_outputs(runner.model, spec, feats, runner.pad_id, runner.device)
    crf = runner.model.crf_scores(spec.name) if spec.kind == "token_classification" else None
    if spec.kind == "classification":
        return [spec.labels[int(o.argmax())] for o in outs]
    if spec.kind == "regression":
        return [round(float(regression_value(spec, float(o[0]))), 4) for o in outs]
    if spec.kind == MULTILABEL:
        return [chosen_labels(spec, sigmoid(o.astype("float64")), task_thresholds(runner.model, spec)) for o in outs]
    return [predicted_word_tags(spec, f, o, crf=crf, n_words=len(ex.words)) for f, o, ex in zip(feats, outs, examples)]


def is_right(kind: str, gold: Any, pred: Any, tolerance: float = REGRESSION_TOLERANCE) -> bool:
    """Classification: same label; regression: within `tolerance`; NER: every word's tag right; multi-label: same set."""
    if kind == "regression":
        return abs(float(gold) - float(pred)) <= tolerance
    if kind == "token_classification":
        return list(gold) == list(pred)
    if kind == MULTILABEL:
        return set(gold) == set(pred)
    return gold == pred


def answer_metrics(spec: TaskSpec, gold: list, pred: list) -> dict:
    """evaluation's metrics (incl. report/confusion) computed from answers; adds n and primary."""
    if spec.kind == "classification":
        m = classification_metrics(spec, gold, pred)
    elif spec.kind == "regression":
        m = regression_metrics(gold, pred)
    elif spec.kind == MULTILABEL:
        m = multilabel_metrics(spec, gold, pred)
    else:
        m = ner_metrics(gold, pred)
        m["report"] = _plain(m["report"])
    m["n"] = len(gold)
    m["primary"] = float(m[PRIMARY[spec.kind]])
    return m


def evaluation_from_answers(specs: dict[str, TaskSpec], sets: dict[str, list], answers: dict[str, list],
                            split: str = "test") -> dict:
    """`evaluation.evaluate`'s result ({"tasks", "average", "split"}) computed from stored answers."""
    tasks = {t: answer_metrics(specs[t], gold_answers(specs[t], exs), answers[t])
             for t, exs in sets.items() if t in answers}
    average = sum(m["primary"] for m in tasks.values()) / len(tasks) if tasks else 0.0
    return {"tasks": tasks, "average": average, "split": split}


def _plain(value: Any) -> Any:
    """numpy scalars -> Python numbers, recursively (seqeval reports hold numpy ints)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def tags_to_spans(words: list[str], tags: list[str]) -> list[tuple[str, str]]:
    """BIO tags -> [(entity text, type)] (`data.bio.tags_to_spans` over word indices; the entity text is its
    words joined by single spaces); an I-x right after an x entity continues it, else starts one. Words
    beyond the shorter of the two lists are ignored."""
    n = min(len(words), len(tags))
    spans = bio_tags_to_spans([(i, i + 1) for i in range(n)], list(tags)[:n])
    return [(" ".join(words[s.start:s.end]), s.label) for s in spans]


def format_answer(kind: str, answer: Any, words: list[str] | None = None) -> str:
    """A short human string for an answer (entity lists for NER)."""
    if kind == "regression":
        return f"{float(answer):+.2f}"
    if kind == "token_classification":
        spans = tags_to_spans(words or [], list(answer))
        return "; ".join(f"{text} ({label})" for text, label in spans) or "(no entities)"
    if kind == MULTILABEL:
        return " | ".join(answer) or "(no labels)"
    return str(answer)


# ---------------------------------------------------------------------------------- comparison


def primary_deltas(old: dict[str, dict], new: dict[str, dict]) -> dict[str, dict]:
    """task -> {metric, old, new, delta, n} for each task's primary metric (both sides present)."""
    out = {}
    for task in old.keys() & new.keys():
        o, n = old[task], new[task]
        out[task] = {"metric": o.get("metric", "primary"), "old": float(o["primary"]), "new": float(n["primary"]),
                     "delta": float(n["primary"]) - float(o["primary"]), "n": int(n.get("n", 0))}
    return dict(sorted(out.items()))


def metric_deltas(old: dict[str, dict], new: dict[str, dict]) -> list[dict]:
    """One row per (task, scalar metric): old, new, delta."""
    rows = []
    for task in sorted(old.keys() & new.keys()):
        for name, value in old[task].items():
            other = new[task].get(name)
            if name in ("n", "primary") or not _number(value) or not _number(other):
                continue
            rows.append({"task": task, "metric": name, "old": float(value), "new": float(other),
                         "delta": float(other) - float(value)})
    return rows


def label_deltas(old: dict[str, dict], new: dict[str, dict]) -> list[dict]:
    """Per-label precision/recall/F1 deltas from each side's `report` (classification and NER)."""
    rows = []
    for task in sorted(old.keys() & new.keys()):
        ro, rn = old[task].get("report") or {}, new[task].get("report") or {}
        for label in [k for k in ro if k not in SKIP_REPORT_KEYS and isinstance(ro[k], dict)]:
            a, b = ro[label], rn.get(label) or {}
            row = {"task": task, "label": label, "support": int(b.get("support", a.get("support", 0)))}
            for key, short in (("precision", "precision"), ("recall", "recall"), ("f1-score", "f1")):
                row[f"old_{short}"] = float(a.get(key, 0.0))
                row[f"new_{short}"] = float(b.get(key, 0.0))
            row["delta_f1"] = row["new_f1"] - row["old_f1"]
            rows.append(row)
    return rows


def confusion_diff(old: dict[str, dict], new: dict[str, dict], labels: dict[str, list[str]]) -> dict[str, dict]:
    """task -> {labels, old, new, diff = new - old} for tasks with confusion matrices (rows: gold)."""
    out = {}
    for task in sorted(old.keys() & new.keys()):
        co, cn = old[task].get("confusion"), new[task].get("confusion")
        if co is None or cn is None:
            continue
        diff = [[int(b) - int(a) for a, b in zip(ra, rb)] for ra, rb in zip(co, cn)]
        out[task] = {"labels": list(labels.get(task, [])), "old": co, "new": cn, "diff": diff}
    return out


def fixed_and_broken(task: str, kind: str, examples: list, gold: list, old: list, new: list,
                     split: str) -> tuple[list[dict], list[dict]]:
    """Examples the new model gets right that the old got wrong (fixed), and the reverse (broken)."""
    fixed, broken = [], []
    for ex, g, o, n in zip(examples, gold, old, new):
        was, now = is_right(kind, g, o), is_right(kind, g, n)
        if was == now:
            continue
        words = list(ex.words) if ex.words is not None else None
        row = {"split": split, "task": task, "text": ex.text, "gold": format_answer(kind, g, words),
               "old": format_answer(kind, o, words), "new": format_answer(kind, n, words)}
        (fixed if now else broken).append(row)
    return fixed, broken


def regressions(comparison: dict, threshold: float = REGRESSION_THRESHOLD) -> list[str]:
    """Tasks whose primary metric dropped by more than `threshold` (0.01 = 1 point).

    Accepts a comparison dict (its "tasks") or the task -> {delta} mapping itself; a new task (delta None) never."""
    tasks = comparison.get("tasks", comparison) if isinstance(comparison, dict) else {}
    return sorted(t for t, row in tasks.items() if isinstance(row, dict) and (row.get("delta") or 0.0) < -threshold)


def compare_answers(specs: dict[str, TaskSpec], sets: dict[str, list], old: dict[str, list],
                    new: dict[str, list], split: str) -> dict:
    """Full comparison of two models' answers on `sets` (task -> examples). A task only the new model answers
    (a round joined it: "new_tasks") gets a "tasks" row with old and delta None, "new_task" True, and no more."""
    old_m, new_m, fixed, broken, counts, added = {}, {}, [], [], {}, {}
    for task, examples in sets.items():
        if not examples or task not in new:
            continue
        spec = specs[task]
        gold = gold_answers(spec, examples)
        if task not in old:
            added[task] = {"metric": PRIMARY[spec.kind], "old": None, "delta": None, "n": len(examples),
                           "new": float(answer_metrics(spec, gold, new[task])["primary"]), "new_task": True}
            continue
        old_m[task] = {**answer_metrics(spec, gold, old[task]), "metric": PRIMARY[spec.kind]}
        new_m[task] = {**answer_metrics(spec, gold, new[task]), "metric": PRIMARY[spec.kind]}
        f, b = fixed_and_broken(task, spec.kind, examples, gold, old[task], new[task], split)
        fixed += f
        broken += b
        right_old = sum(is_right(spec.kind, g, o) for g, o in zip(gold, old[task]))
        right_new = sum(is_right(spec.kind, g, n) for g, n in zip(gold, new[task]))
        counts[task] = {"n": len(examples), "right_old": right_old, "right_new": right_new,
                        "fixed": len(f), "broken": len(b)}
        counts[task]["nfr"] = negative_flip_rate(counts[task])
    tasks = dict(sorted({**primary_deltas(old_m, new_m), **added}.items()))
    return {
        "split": split,
        "tasks": tasks,
        "new_tasks": sorted(added),
        "metrics": metric_deltas(old_m, new_m),
        "labels": label_deltas(old_m, new_m),
        "confusion": confusion_diff(old_m, new_m, {t: list(s.labels) for t, s in specs.items()}),
        "counts": counts,
        "n_fixed": len(fixed),
        "n_broken": len(broken),
        "fixed": fixed[:MAX_EXAMPLES],
        "broken": broken[:MAX_EXAMPLES],
        "regressions": regressions(tasks),
    }


def _number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) or (hasattr(value, "item") and getattr(value, "ndim", 1) == 0)


# ---------------------------------------------------------------------------------- answer cache


def answers_for(runner: ModelRunner, sets: dict[str, list]) -> dict[str, list]:
    """Each task's answers on its examples (tasks the model lacks, or without examples, are left out)."""
    specs = runner.model.tasks
    return {task: predict_answers(runner, specs[task], examples)
            for task, examples in sets.items() if task in specs and examples}


def _answers_path(home, version: str, sets: dict[str, list]):
    key = hashlib.blake2b(json.dumps({t: [ex.to_dict() for ex in exs] for t, exs in sorted(sets.items())},
                                     sort_keys=True).encode(), digest_size=12).hexdigest()
    return workspace_dir(home) / "cache" / "answers" / f"{version}-{key}.json"


def store_answers(home, version: str, sets: dict[str, list], answers: dict) -> None:
    path = _answers_path(home, version, sets)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(answers), encoding="utf-8")
    tmp.replace(path)


def answers_cached(home, version: str, sets: dict[str, list]) -> bool:
    return _answers_path(home, version, sets).exists()


def cached_answers(home, version: str, runner: ModelRunner, sets: dict[str, list]) -> dict:
    """A version's answers on `sets`, cached on disk (versions never change; the key covers the data).
    A round stores its new version's test answers too, so a round from it starts warm."""
    path = _answers_path(home, version, sets)
    if path.exists():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
    answers = answers_for(runner, sets)
    store_answers(home, version, sets, answers)
    return answers
