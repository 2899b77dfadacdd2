"""Few-shot heads: a new task answered from the frozen shared encoder's representation, fitted in seconds.

A head is a small linear model over the features of one forward pass (`features_from_output`), fitted on the
labels so far (`fit_head`) and saved as JSON under `<workspace>/fewshot/` with the model version whose encoder
made its features (a head never answers for another version: its features would mean something else).
The Predictor applies every head of its version after the shared forward, so a new task costs no extra pass.

Methods (bench/quality/fewshot.py measured them; the default is the winner there):
- "logreg": multinomial logistic regression (scikit-learn) on unit-length features;
- "prototype": cosine to each class mean, softmax with a fixed temperature (no fitting at all).
Representations: "pooled" (the heads' pooled last layer), "layers" (mean-pooled layers 2, 4 and 6 joined: the
lower layers are less specialised to the trained tasks) or "all_layers" (the embeddings and every layer, each
mean-pooled: the default, best on the dev splits of bench/quality/fewshot_layers.py). Heads fitted before keep
their representation.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from mtl_core.model.applicability import represent
from mtl_core.tasks import MULTILABEL
from mtl_core.workspace import workspace_dir

METHODS = ("logreg", "prototype")
REPRESENTATIONS = ("pooled", "layers", "all_layers")
LAYERS = (2, 4, 6)  # "layers": the same mid/upper layers task applicability pools
ALL_LAYERS = (0, 1, 2, 3, 4, 5, 6)  # "all_layers": embeddings + MiniLM's six layers (a deeper encoder: the first 7)
MIN_PER_CLASS = 2  # labels per class before a head is fitted
PROTOTYPE_TEMPERATURE = 20.0  # cosine gaps of ~0.1 become confident answers
LOGREG_C = 10.0  # weak regularisation: unit-length features, few examples


@dataclass
class FewShotConfig:
    """How few-shot heads are fitted (defaults: bench/quality/fewshot.py's best at k = 8)."""

    method: str = "logreg"  # one of METHODS
    representation: str = "all_layers"  # one of REPRESENTATIONS
    min_per_class: int = MIN_PER_CLASS
    cv_folds: int = 5  # folds of the accuracy estimate (fewer when a class has fewer labels)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"FewShotConfig.method: {self.method!r} not in {METHODS}")
        if self.representation not in REPRESENTATIONS:
            raise ValueError(f"FewShotConfig.representation: {self.representation!r} not in {REPRESENTATIONS}")
        if self.min_per_class < 1 or self.cv_folds < 2:
            raise ValueError("FewShotConfig: min_per_class >= 1 and cv_folds >= 2")


@dataclass
class FewShotHead:
    """A fitted few-shot classification head. `weights` (C, D) and `bias` (C,) give logits = x @ W.T + b."""

    task: str
    labels: list[str]
    model_version: str
    method: str
    representation: str
    weights: list[list[float]]
    bias: list[float]
    n_labels: int  # labelled texts it was fitted on
    per_class: dict[str, int]
    cv_accuracy: float | None  # cross-validated on the labels so far (multi-label: micro-F1); None: too few
    fitted_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    kind: str = "classification"  # or "multilabel_classification": one sigmoid per label, threshold 0.5

    def proba(self, x: np.ndarray) -> np.ndarray:
        """(N, D) features -> (N, C) probabilities (softmax; multi-label: independent sigmoids)."""
        logits = normalise(x) @ np.asarray(self.weights, dtype=np.float32).T + np.asarray(self.bias, np.float32)
        if self.kind == MULTILABEL:
            return 1.0 / (1.0 + np.exp(-logits))
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


class FewShotError(ValueError):
    """Not enough labels (or classes) to fit a head; the message says what is missing."""


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)


def features_from_output(out, mask, representation: str) -> np.ndarray:
    """(B, D) float32 features of one forward's output (`MultiTaskOutput`): see the module docstring."""
    if representation == "pooled":
        return out.pooled.float().cpu().numpy()
    wanted = ALL_LAYERS if representation == "all_layers" else LAYERS
    layers = [i for i in wanted if i < len(out.hidden_states)]  # a shallower encoder: the layers it has
    x = represent(out.hidden_states, None, mask, layers)  # (B, L * H), the pooling applicability uses
    # each layer unit-length before joining, so no layer dominates the dot products
    return normalise(x.reshape(len(x) * len(layers), -1)).reshape(len(x), -1)


def _fit_weights(x: np.ndarray, y: np.ndarray, n_classes: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length x (N, D), class indices y (N,) -> W (C, D), b (C,)."""
    if method == "prototype":
        means = np.stack([x[y == c].mean(axis=0) for c in range(n_classes)])
        return normalise(means) * PROTOTYPE_TEMPERATURE, np.zeros(n_classes, dtype=np.float32)
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=LOGREG_C, max_iter=2000).fit(x, y)
    w, b = clf.coef_, clf.intercept_
    if n_classes == 2:  # scikit-learn's binary form: one row for class 1; as two-class softmax logits
        w, b = np.stack([-w[0] / 2, w[0] / 2]), np.array([-b[0] / 2, b[0] / 2])
    return w.astype(np.float32), b.astype(np.float32)


def cv_accuracy(x: np.ndarray, y: np.ndarray, n_classes: int, method: str, folds: int = 5,
                seed: int = 0) -> float | None:
    """Stratified k-fold accuracy (k = min(folds, smallest class count)); None below two per class."""
    from sklearn.model_selection import StratifiedKFold

    k = min(folds, int(np.bincount(y, minlength=n_classes).min()))
    if k < 2:
        return None
    right = 0
    for train, test in StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(x, y):
        w, b = _fit_weights(x[train], y[train], n_classes, method)
        right += int(((x[test] @ w.T + b).argmax(axis=1) == y[test]).sum())
    return right / len(y)


def fit_head(task: str, labels: list[str], x: np.ndarray, y: list, model_version: str,
             config: FewShotConfig | None = None, kind: str = "classification") -> FewShotHead:
    """Fit on features `x` (N, D) with gold class names `y` (multi-label: label lists); FewShotError naming
    what is missing."""
    config = config or FewShotConfig()
    if kind == MULTILABEL:
        return _fit_multilabel(task, labels, normalise(x), y, model_version, config)
    counts = {label: sum(1 for v in y if v == label) for label in labels}
    short = [f"{label} ({n})" for label, n in counts.items() if n < config.min_per_class]
    if short:
        raise FewShotError(f"task {task!r} needs at least {config.min_per_class} labels per class; "
                           f"short: {', '.join(short)}")
    x = normalise(x)
    idx = np.asarray([labels.index(v) for v in y])
    w, b = _fit_weights(x, idx, len(labels), config.method)
    return FewShotHead(task=task, labels=list(labels), model_version=model_version, method=config.method,
                       representation=config.representation, weights=w.round(6).tolist(),
                       bias=b.round(6).tolist(), n_labels=len(y), per_class=counts,
                       cv_accuracy=cv_accuracy(x, idx, len(labels), config.method, config.cv_folds))


def _fit_multilabel(task: str, labels: list[str], x: np.ndarray, y: list[list[str]], version: str,
                    config: FewShotConfig) -> FewShotHead:
    """One logistic regression per label (positives need `min_per_class` texts); CV estimate = micro-F1."""
    hot = np.asarray([[label in chosen for label in labels] for chosen in y], dtype=np.int64)  # (N, C)
    counts = dict(zip(labels, hot.sum(0).tolist()))
    short = [f"{label} ({n})" for label, n in counts.items() if n < config.min_per_class]
    if short:
        raise FewShotError(f"task {task!r} needs at least {config.min_per_class} texts with each label; "
                           f"short: {', '.join(short)}")
    w, b = _binary_weights(x, hot)
    return FewShotHead(task=task, labels=list(labels), model_version=version, method="logreg",
                       representation=config.representation, weights=w.round(6).tolist(), bias=b.round(6).tolist(),
                       n_labels=len(y), per_class=counts, cv_accuracy=_cv_micro_f1(x, hot, config.cv_folds),
                       kind=MULTILABEL)


def _binary_weights(x: np.ndarray, hot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per label (column of `hot`): a binary logistic regression; a label on every text (or none) gets a
    constant, confident logit."""
    from sklearn.linear_model import LogisticRegression

    w, b = np.zeros((hot.shape[1], x.shape[1]), np.float32), np.zeros(hot.shape[1], np.float32)
    for c in range(hot.shape[1]):
        if hot[:, c].min() == hot[:, c].max():
            b[c] = 4.0 if hot[0, c] else -4.0
            continue
        clf = LogisticRegression(C=LOGREG_C, max_iter=2000).fit(x, hot[:, c])
        w[c], b[c] = clf.coef_[0], clf.intercept_[0]
    return w, b


def _cv_micro_f1(x: np.ndarray, hot: np.ndarray, folds: int) -> float | None:
    from sklearn.model_selection import KFold

    k = min(folds, len(x) // 2)
    if k < 2:
        return None
    tp = fp = fn = 0
    for train, test in KFold(n_splits=k, shuffle=True, random_state=0).split(x):
        w, b = _binary_weights(x[train], hot[train])
        pred = (x[test] @ w.T + b) >= 0  # probability >= 0.5
        gold = hot[test].astype(bool)
        tp, fp, fn = tp + int((pred & gold).sum()), fp + int((pred & ~gold).sum()), fn + int((~pred & gold).sum())
    return 2 * tp / max(2 * tp + fp + fn, 1)


# ------------------------------------------------------------------------------------------ files


def heads_dir(home: str | Path | None = None) -> Path:
    return workspace_dir(home) / "fewshot"


def save_head(head: FewShotHead, home: str | Path | None = None) -> Path:
    """`<workspace>/fewshot/<task>.json`, written atomically (the app may be reading it)."""
    root = heads_dir(home)
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{head.task}-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(asdict(head), f)
    path = root / f"{head.task}.json"
    os.replace(tmp, path)
    return path


def delete_head(task: str, home: str | Path | None = None) -> None:
    (heads_dir(home) / f"{task}.json").unlink(missing_ok=True)


def load_heads(home: str | Path | None, version: str | None, tasks: set[str] | None = None) -> dict[str, FewShotHead]:
    """The heads fitted on `version`'s encoder (of `tasks`, when given); unreadable files are skipped."""
    out = {}
    root = heads_dir(home)
    for path in sorted(root.glob("*.json")) if root.is_dir() else []:
        try:
            head = FewShotHead(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue
        if head.model_version == version and (tasks is None or head.task in tasks):
            out[head.task] = head
    return out


def heads_stamp(home: str | Path | None) -> tuple:
    """Changes whenever a head file is written or removed (the Predictor reloads its heads then)."""
    root = heads_dir(home)
    if not root.is_dir():
        return ()
    return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in root.glob("*.json")))


def answers(head: FewShotHead, x: np.ndarray) -> list:
    """(N, D) features -> one ClassPrediction (MultiLabelPrediction) per row, marked few-shot with the head's
    estimated accuracy."""
    from mtl_core.types import ClassPrediction, MultiLabelPrediction

    if head.kind == MULTILABEL:
        return [MultiLabelPrediction(labels=[lab for lab, p in zip(head.labels, row) if p >= 0.5],
                                     probs={lab: float(p) for lab, p in zip(head.labels, row)},
                                     thresholds={lab: 0.5 for lab in head.labels}, fewshot=True,
                                     estimated_accuracy=head.cv_accuracy) for row in head.proba(x)]
    out = []
    for row in head.proba(x):
        top = np.argsort(-row)
        out.append(ClassPrediction(label=head.labels[int(top[0])], score=float(row[top[0]]),
                                   probs={lab: float(p) for lab, p in zip(head.labels, row)},
                                   margin=float(row[top[0]] - row[top[1]]) if len(row) > 1 else 1.0,
                                   fewshot=True, estimated_accuracy=head.cv_accuracy))
    return out
