"""Task definitions are data: a YAML/JSON file lists tasks, their labels and where the data comes from.

A user adds a task by adding an entry, e.g.::

    - name: urgency
      kind: classification
      labels: [low, high]
      source: {loader: csv, path: data/urgency.csv, text_column: text, label_column: label}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KINDS = ("classification", "regression", "token_classification", "multilabel_classification")
MULTILABEL = "multilabel_classification"  # several labels per text: one sigmoid per label, per-label thresholds
DEFAULT_TASK_FILE = Path(__file__).with_name("default_tasks.yaml")


class TaskFileError(ValueError):
    """A task file is malformed; the message names the offending field."""


@dataclass
class SourceSpec:
    """Where a task's examples come from: a built-in loader name plus its options."""

    loader: str  # built-in corpus (e.g. "rotten_tomatoes") or "csv" / "jsonl" / "conll"
    options: dict[str, Any] = field(default_factory=dict)  # e.g. path, text_column, label_column


@dataclass
class TaskSpec:
    """One task head."""

    name: str
    kind: str  # one of KINDS
    labels: list[str] = field(default_factory=list)  # classes, or entity types for token tasks (no B-/I-)
    # (multi-label: the labels a text may carry any number of)
    source: SourceSpec | None = None
    loss_weight: float = 1.0  # static weight, used by the "static" loss weighting
    sample_weight: float = 1.0  # multiplies how often the task sampler picks this task
    value_range: tuple[float, float] = (0.0, 1.0)  # regression scale, for clipping and gauges
    max_length: int | None = None  # per-task token budget; None = the model's default
    max_train: int | None = None  # cap on training examples (keeps the default run inside its budget)
    description: str = ""  # what the task is for, in the user's words (shown on the Data page)

    def __post_init__(self) -> None:
        where = f"task '{self.name}'"
        if not self.name or not str(self.name).isidentifier():
            raise TaskFileError(f"{where}: field 'name' must be a simple identifier (letters, digits, _)")
        if self.kind not in KINDS:
            raise TaskFileError(f"{where}: field 'kind' is {self.kind!r}, expected one of {list(KINDS)}")
        if self.kind != "regression" and len(self.labels) < (1 if self.kind == "token_classification" else 2):
            raise TaskFileError(f"{where}: field 'labels' needs at least two classes or labels (one entity type for NER)")
        if len(set(self.labels)) != len(self.labels):
            raise TaskFileError(f"{where}: field 'labels' has duplicates")
        for key in ("loss_weight", "sample_weight"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or value <= 0:
                raise TaskFileError(f"{where}: field '{key}' must be a positive number")
        lo, hi = self.value_range
        if self.kind == "regression" and not lo < hi:
            raise TaskFileError(f"{where}: field 'value_range' must be [low, high] with low < high")

    @property
    def tag_names(self) -> list[str]:
        """BIO tags of a token task ("O", "B-x", "I-x", ...); the class labels otherwise."""
        if self.kind != "token_classification":
            return list(self.labels)
        return ["O"] + [f"{p}-{t}" for t in self.labels for p in ("B", "I")]

    @property
    def n_outputs(self) -> int:
        return 1 if self.kind == "regression" else len(self.tag_names)

    def to_dict(self) -> dict:
        d = {
            "name": self.name,
            "kind": self.kind,
            "labels": list(self.labels),
            "loss_weight": self.loss_weight,
            "sample_weight": self.sample_weight,
            "value_range": list(self.value_range),
            "max_length": self.max_length,
            "max_train": self.max_train,
        }
        if self.description:
            d["description"] = self.description
        if self.source is not None:
            d["source"] = {"loader": self.source.loader, **self.source.options}
        return d


@dataclass
class ContradictionRule:
    """Two task answers that should not co-occur, e.g. sentiment=positive while sentiment_score < 0.

    `if_task`/`if_label` select items; the rule fires when `then_task` is a regression below
    `below` / above `above`, or a classification whose label is in `not_labels`.
    """

    name: str
    if_task: str
    if_label: str
    then_task: str
    below: float | None = None
    above: float | None = None
    not_labels: list[str] = field(default_factory=list)


@dataclass
class TaskFile:
    tasks: list[TaskSpec]
    contradictions: list[ContradictionRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        names = [t.name for t in self.tasks]
        if not names:
            raise TaskFileError("field 'tasks' is empty: define at least one task")
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise TaskFileError(f"field 'tasks': duplicate task names {sorted(dupes)}")
        for rule in self.contradictions:
            for key in ("if_task", "then_task"):
                if getattr(rule, key) not in names:
                    raise TaskFileError(f"contradiction '{rule.name}': field '{key}' names unknown task")

    def by_name(self, name: str) -> TaskSpec:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(f"unknown task {name!r}; known: {[t.name for t in self.tasks]}")

    def to_dict(self) -> dict:
        return {
            "tasks": [t.to_dict() for t in self.tasks],
            "contradictions": [vars(r) for r in self.contradictions],
        }


def _task_from_dict(raw: Any, index: int) -> TaskSpec:
    if not isinstance(raw, dict):
        raise TaskFileError(f"tasks[{index}]: expected a mapping, got {type(raw).__name__}")
    raw = dict(raw)
    for key in ("name", "kind"):
        if key not in raw:
            raise TaskFileError(f"tasks[{index}]: missing field '{key}'")
    source = raw.pop("source", None)
    if source is not None:
        if not isinstance(source, dict) or "loader" not in source:
            raise TaskFileError(f"task '{raw['name']}': field 'source' needs a 'loader'")
        source = dict(source)
        source = SourceSpec(loader=str(source.pop("loader")), options=source)
    known = set(TaskSpec.__dataclass_fields__) - {"source"}
    unknown = set(raw) - known
    if unknown:
        raise TaskFileError(f"task '{raw['name']}': unknown field(s) {sorted(unknown)}")
    if "value_range" in raw:
        vr = raw["value_range"]
        if not (isinstance(vr, (list, tuple)) and len(vr) == 2):
            raise TaskFileError(f"task '{raw['name']}': field 'value_range' must be [low, high]")
        raw["value_range"] = (float(vr[0]), float(vr[1]))
    if "labels" in raw and not isinstance(raw["labels"], list):
        raise TaskFileError(f"task '{raw['name']}': field 'labels' must be a list")
    raw["labels"] = [str(x) for x in raw.get("labels", [])]
    return TaskSpec(source=source, **raw)


def _rule_from_dict(raw: Any, index: int) -> ContradictionRule:
    if not isinstance(raw, dict):
        raise TaskFileError(f"contradictions[{index}]: expected a mapping")
    try:
        return ContradictionRule(**raw)
    except TypeError as exc:
        raise TaskFileError(f"contradictions[{index}]: {exc}") from None


def parse_task_file(data: Any) -> TaskFile:
    if not isinstance(data, dict) or "tasks" not in data:
        raise TaskFileError("task file must be a mapping with a top-level 'tasks' list")
    if not isinstance(data["tasks"], list):
        raise TaskFileError("field 'tasks' must be a list")
    tasks = [_task_from_dict(t, i) for i, t in enumerate(data["tasks"])]
    rules = [_rule_from_dict(r, i) for i, r in enumerate(data.get("contradictions") or [])]
    return TaskFile(tasks=tasks, contradictions=rules)


def load_task_file(path: str | Path = DEFAULT_TASK_FILE) -> TaskFile:
    """Read a YAML or JSON task file; raises TaskFileError naming the bad field."""
    path = Path(path)
    if not path.is_file():
        raise TaskFileError(f"task file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise TaskFileError(f"task file {path} is not valid YAML/JSON: {exc}") from None
    return parse_task_file(data)
