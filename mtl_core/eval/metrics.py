"""Per-task metrics on prepared splits: classification, regression, entity-level NER, multi-label."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr
from seqeval.metrics import classification_report as seq_report
from seqeval.metrics import f1_score, precision_score, recall_score
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix
from sklearn.metrics import f1_score as sk_f1

from mtl_core.model.decoding import chosen_labels, regression_value, sigmoid, task_thresholds
from mtl_core.model.features import (
    Feature,
    collate,
    featurize,
    model_inputs,
    predicted_word_tags,
    sorted_batches,
)
from mtl_core.model.runner import ModelRunner
from mtl_core.tasks import MULTILABEL, TaskFile, TaskSpec

if TYPE_CHECKING:  # annotations only: no import cost or cycle at run time
    from mtl_core.model.modeling import MultiTaskModel

PRIMARY = {"classification": "macro_f1", "regression": "pearson", "token_classification": "f1",
           MULTILABEL: "micro_f1"}


@torch.inference_mode()
def task_outputs(model: MultiTaskModel, spec: TaskSpec, features: list[Feature], pad_id: int, device, batch_size: int = 64) -> list:
    """Raw head outputs per feature (numpy), in feature order; only this task's head runs."""
    model.eval()
    out: list = [None] * len(features)
    for idx in sorted_batches(features, batch_size):
        batch = collate([features[i] for i in idx], spec.kind, pad_id)
        logits = model(**model_inputs(batch, device), tasks=[spec.name]).logits[spec.name].float().cpu().numpy()
        for row, i in enumerate(idx):
            out[i] = logits[row]
    return out


def classification_metrics(spec: TaskSpec, gold: list[str], pred: list[str]) -> dict:
    m = {
        "accuracy": accuracy_score(gold, pred),
        "macro_f1": sk_f1(gold, pred, labels=spec.labels, average="macro", zero_division=0),
        "report": classification_report(gold, pred, labels=spec.labels, output_dict=True, zero_division=0),
        "confusion": confusion_matrix(gold, pred, labels=spec.labels).tolist(),
    }
    for label in spec.labels:
        m[f"f1_{label}"] = m["report"][label]["f1-score"]
    return m


def multilabel_metrics(spec: TaskSpec, gold: list, pred: list) -> dict:
    """Label sets per text: micro-F1 over every (text, label) decision, macro-F1 (mean of the labels' F1; a
    label neither gold nor predicted anywhere counts 0, as sklearn's zero_division=0), exact-set accuracy,
    and per label precision/recall/F1/support (`report`, `f1_<label>`)."""
    gold_sets, pred_sets = [set(g) for g in gold], [set(p) for p in pred]
    report, total = {}, np.zeros(3)  # total: tp, fp, fn over every label
    for label in spec.labels:
        tp = sum(label in g and label in p for g, p in zip(gold_sets, pred_sets))
        fp = sum(label not in g and label in p for g, p in zip(gold_sets, pred_sets))
        fn = sum(label in g and label not in p for g, p in zip(gold_sets, pred_sets))
        total += (tp, fp, fn)
        report[label] = {"precision": tp / (tp + fp) if tp + fp else 0.0, "recall": tp / (tp + fn) if tp + fn else 0.0,
                         "f1-score": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0, "support": tp + fn}
    tp, fp, fn = total
    m = {
        "micro_f1": float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0,
        "micro_precision": float(tp / (tp + fp)) if tp + fp else 0.0,
        "micro_recall": float(tp / (tp + fn)) if tp + fn else 0.0,
        "macro_f1": float(np.mean([r["f1-score"] for r in report.values()])),
        "exact_match": float(np.mean([g == p for g, p in zip(gold_sets, pred_sets)])) if gold_sets else 0.0,
        "report": report,
    }
    for label in spec.labels:
        m[f"f1_{label}"] = report[label]["f1-score"]
    return m


def regression_metrics(gold: list[float], pred: list[float]) -> dict:
    g, p = np.asarray(gold, dtype=float), np.asarray(pred, dtype=float)
    constant = g.std() == 0 or p.std() == 0
    return {
        "pearson": 0.0 if constant else float(pearsonr(g, p)[0]),
        "spearman": 0.0 if constant else float(spearmanr(g, p)[0]),
        "mae": float(np.abs(g - p).mean()),
    }


def ner_metrics(gold: list[list[str]], pred: list[list[str]]) -> dict:
    return {
        "precision": precision_score(gold, pred, zero_division=0),
        "recall": recall_score(gold, pred, zero_division=0),
        "f1": f1_score(gold, pred, zero_division=0),
        "report": seq_report(gold, pred, output_dict=True, zero_division=0),
    }


def evaluate_task(runner: ModelRunner, spec: TaskSpec, examples: list) -> dict:
    feats = featurize(spec, examples, runner.tokenizer, runner.length_for(spec))
    outs = task_outputs(runner.model, spec, feats, runner.pad_id, runner.device)
    crf = runner.model.crf_scores(spec.name) if spec.kind == "token_classification" else None
    if spec.kind == "classification":
        pred = [spec.labels[int(o.argmax())] for o in outs]
        m = classification_metrics(spec, [ex.label for ex in examples], pred)
    elif spec.kind == "regression":
        m = regression_metrics([ex.label for ex in examples], [regression_value(spec, float(o[0])) for o in outs])
    elif spec.kind == MULTILABEL:
        thresholds = task_thresholds(runner.model, spec)
        pred = [chosen_labels(spec, sigmoid(o.astype(np.float64)), thresholds) for o in outs]
        m = multilabel_metrics(spec, [list(ex.label) for ex in examples], pred)
    else:
        gold = [list(ex.tags) for ex in examples]
        pred = [predicted_word_tags(spec, f, o, crf=crf, n_words=len(g)) for f, o, g in zip(feats, outs, gold)]
        m = ner_metrics(gold, pred)
    m["n"] = len(examples)
    m["primary"] = m[PRIMARY[spec.kind]]
    return m


def evaluate(runner: ModelRunner, task_file: TaskFile, prepared: dict, split: str = "test",
             tasks: list[str] | None = None) -> dict:
    """-> {"tasks": {name: metrics}, "average": mean of each task's primary metric}."""
    results = {}
    for spec in task_file.tasks:
        if (tasks and spec.name not in tasks) or not prepared.get(spec.name, {}).get(split):
            continue
        results[spec.name] = evaluate_task(runner, spec, prepared[spec.name][split])
    avg = float(np.mean([m["primary"] for m in results.values()])) if results else 0.0
    return {"tasks": results, "average": avg, "split": split}


def headline(metrics: dict) -> dict[str, dict[str, float]]:
    """The scalar metrics only (drops reports and confusion matrices), for JSON and tables."""
    return {
        name: {k: round(float(v), 4) for k, v in m.items() if isinstance(v, (int, float, np.floating))}
        for name, m in metrics["tasks"].items()
    }
