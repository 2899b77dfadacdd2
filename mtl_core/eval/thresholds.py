"""Per-label decision thresholds of multi-label heads, tuned on dev after training.

Each label gets the threshold that maximises its own F1 on the dev split (a rare label usually wants a lower
one than 0.5); a label dev never carries keeps DEFAULT_THRESHOLD. The result lives in `model.thresholds`
(task -> label -> threshold), is saved as the checkpoint's thresholds.json and used by every decoder
(`model.decoding.task_thresholds`).
"""

from __future__ import annotations

import numpy as np

from mtl_core.eval.metrics import task_outputs
from mtl_core.model.decoding import DEFAULT_THRESHOLD, sigmoid
from mtl_core.model.features import featurize
from mtl_core.model.runner import ModelRunner
from mtl_core.tasks import MULTILABEL, TaskSpec

# Tuned thresholds are kept inside this range: on a small dev split the F1-best cut can sit at an extreme
# (every text, or one lucky one) that would not hold on new texts.
THRESHOLD_RANGE = (0.05, 0.95)


def best_threshold(probs: np.ndarray, gold: np.ndarray) -> float:
    """The threshold t whose decisions `probs >= t` have the best F1 against 0/1 `gold`; both (N,).

    The cut falls midway between the last probability taken and the next lower one, never between equal
    probabilities; on ties of F1 the fewest positives win. DEFAULT_THRESHOLD when `gold` has no positive."""
    gold = np.asarray(gold, dtype=bool)
    if not gold.any():
        return DEFAULT_THRESHOLD
    order = np.argsort(-np.asarray(probs, dtype=np.float64), kind="stable")
    p, g = np.asarray(probs, dtype=np.float64)[order], gold[order]
    tp = np.cumsum(g)  # true positives when the top k+1 are taken
    f1 = 2 * tp / (np.arange(1, len(p) + 1) + g.sum())
    cuttable = np.append(p[:-1] > p[1:], True)  # a cut after k must not split equal probabilities
    best = int(np.argmax(np.where(cuttable, f1, -1.0)))
    lower = p[best + 1] if best + 1 < len(p) else 0.0
    return float(np.clip((p[best] + lower) / 2, *THRESHOLD_RANGE))


def tune_thresholds(runner: ModelRunner, spec: TaskSpec, examples: list) -> dict[str, float]:
    """label -> its F1-best threshold on `examples` (a dev split); DEFAULT_THRESHOLD everywhere without any."""
    if not examples:
        return {label: DEFAULT_THRESHOLD for label in spec.labels}
    feats = featurize(spec, examples, runner.tokenizer, runner.length_for(spec))
    probs = sigmoid(np.stack(task_outputs(runner.model, spec, feats, runner.pad_id, runner.device)).astype(np.float64))
    gold = np.array([[label in ex.label for label in spec.labels] for ex in examples], dtype=bool)  # (N, C)
    return {label: best_threshold(probs[:, j], gold[:, j]) for j, label in enumerate(spec.labels)}


def tune_model_thresholds(runner: ModelRunner, specs: list[TaskSpec], prepared: dict) -> dict[str, dict[str, float]]:
    """Tune every multi-label task of `specs` on its dev split into `runner.model.thresholds`; returns them."""
    model = runner.model
    tuned = dict(getattr(model, "thresholds", None) or {})
    for spec in specs:
        if spec.kind == MULTILABEL:
            tuned[spec.name] = tune_thresholds(runner, spec, prepared.get(spec.name, {}).get("dev") or [])
    model.thresholds = tuned
    return tuned
