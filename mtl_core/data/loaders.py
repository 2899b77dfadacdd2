"""Loader registry: a task's `source.loader` names a function `options -> list[Example]`.

`load_examples` passes the task file's source options plus a resolved `path` and two reserved
keys, `_kind` and `_labels` (the task's kind and labels), so file loaders can parse and check
labels while they still know the line number."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mtl_core.data.bio import normalise_tags
from mtl_core.data.corpora import BUILTINS, builtin_files
from mtl_core.data.errors import DataSourceError
from mtl_core.data.examples import Example
from mtl_core.data.readers import read_conll, read_jsonl, read_table
from mtl_core.data.uploads import loads_json
from mtl_core.tasks import MULTILABEL, TaskSpec

Loader = Callable[[dict], list[Example]]


def parse_label(raw: Any, options: dict, where: str, column: str) -> str | float | tuple[str, ...]:
    """A raw cell -> float (regression), class name or (multi-label) label set checked against the task labels."""
    if options.get("_kind") == MULTILABEL:
        return parse_label_set(raw, options.get("_labels") or [], where, column)
    if options.get("_kind") == "regression":
        try:
            value = float(str(raw).strip())
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise DataSourceError(f"{where}: {column} {raw!r} is not a number (regression task)")
        return value
    label = str(raw).strip() if raw is not None else ""
    labels = options.get("_labels") or []
    if not label:
        raise DataSourceError(f"{where}: empty {column}")
    if labels and label not in labels:
        raise DataSourceError(f"{where}: label {label!r} not in task labels {labels}")
    return label


def parse_label_set(raw: Any, labels: list[str], where: str, column: str) -> tuple[str, ...]:
    """A multi-label cell -> its labels in task-file order: a JSON list (`["a", "b"]`, also inside a CSV cell)
    or a "|"-separated string (`a|b`); empty (`[]`, "") = none of the labels applies."""
    items = raw
    if isinstance(raw, str):
        cell = raw.strip()
        if cell.startswith("["):
            try:
                items = loads_json(cell)  # depth-capped: a cell of 100k "[" is an error, not a crash
            except json.JSONDecodeError as exc:
                raise DataSourceError(f"{where}: {column} {cell[:60]!r} is not a JSON list ({exc.msg})") from None
        else:
            items = cell.split("|")
    if raw is None:
        items = []
    if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
        raise DataSourceError(f"{where}: {column} must be a list of labels (JSON list or 'a|b'), got {raw!r:.60}")
    chosen = {x.strip() for x in items if x.strip()}
    unknown = sorted(chosen - set(labels)) if labels else []
    if unknown:
        raise DataSourceError(f"{where}: labels {unknown} not in task labels {labels}")
    return tuple(x for x in labels if x in chosen) if labels else tuple(sorted(chosen))


def _text(raw: Any, where: str, column: str) -> str:
    text = " ".join(str(raw).split()) if raw is not None else ""
    if not text:
        raise DataSourceError(f"{where}: empty text in {column}")
    return text


def _require_path(options: dict) -> Path:
    if not options.get("path"):
        raise DataSourceError("option 'path' is required (a file path, relative to the task file)")
    return Path(options["path"])


def _sentence_example(words: list[str], tags: list[str], options: dict, where: str) -> Example:
    if len(words) != len(tags):
        raise DataSourceError(f"{where}: {len(words)} words but {len(tags)} tags")
    if not words:
        raise DataSourceError(f"{where}: empty sentence")
    try:
        norm = normalise_tags(tags, options.get("_labels") or [])
    except ValueError as exc:
        raise DataSourceError(f"{where}: {exc}") from None
    return Example(" ".join(words), None, tuple(words), norm)


def _no_token_tasks(options: dict, loader: str) -> None:
    if options.get("_kind") == "token_classification":
        raise DataSourceError(
            f"loader '{loader}' cannot feed a token task: use conll, or jsonl with words/tags"
        )


def load_csv(options: dict) -> list[Example]:
    """CSV/TSV with a header. Options: path, text_column, label_column, delimiter, encoding."""
    _no_token_tasks(options, "csv")
    path = _require_path(options)
    text_col = options.get("text_column", "text")
    label_col = options.get("label_column", "label")
    header, rows = read_table(path, options.get("delimiter"), options.get("encoding"))
    for col, opt in ((text_col, "text_column"), (label_col, "label_column")):
        if col not in header:
            raise DataSourceError(
                f"file {path.name}: no column {col!r} (option '{opt}'); columns are {header}"
            )
    out = []
    for line, row in rows:
        where = f"file {path.name}, line {line}"
        text = _text(row[text_col], where, f"column {text_col!r}")
        out.append(Example(text, parse_label(row[label_col], options, where, f"column {label_col!r}")))
    return out


def load_jsonl(options: dict) -> list[Example]:
    """One object per line. Options: path, text_column, label_column (or words_column/tags_column)."""
    path = _require_path(options)
    token_task = options.get("_kind") == "token_classification"
    keys = ("words_column", "tags_column") if token_task else ("text_column", "label_column")
    defaults = {
        "words_column": "words",
        "tags_column": "tags",
        "text_column": "text",
        "label_column": "label",
    }
    k1, k2 = (options.get(k, defaults[k]) for k in keys)
    out = []
    for line, obj in read_jsonl(path, options.get("encoding")):
        where = f"file {path.name}, line {line}"
        for key, opt in ((k1, keys[0]), (k2, keys[1])):
            if key not in obj:
                raise DataSourceError(f"{where}: no key {key!r} (option '{opt}'); keys are {sorted(obj)}")
        if token_task:
            if not all(isinstance(obj[k], list) for k in (k1, k2)):
                raise DataSourceError(f"{where}: {k1!r} and {k2!r} must be lists")
            out.append(
                _sentence_example([str(w) for w in obj[k1]], [str(t) for t in obj[k2]], options, where)
            )
        else:
            text = _text(obj[k1], where, f"key {k1!r}")
            out.append(Example(text, parse_label(obj[k2], options, where, f"key {k2!r}")))
    return out


def load_conll(options: dict) -> list[Example]:
    """`token ... tag` per line (tag = last column), blank line between sentences. Options: path, encoding."""
    if options.get("_kind") not in (None, "token_classification"):
        raise DataSourceError("loader 'conll' is for token_classification tasks")
    path = _require_path(options)
    return [
        _sentence_example(words, tags, options, f"file {path.name}, sentence at line {line}")
        for line, words, tags in read_conll(path, options.get("encoding"))
    ]


LOADERS: dict[str, Loader] = {**BUILTINS, "csv": load_csv, "jsonl": load_jsonl, "conll": load_conll}
FILE_LOADERS = ("csv", "jsonl", "conll")


def register_loader(name: str, loader: Loader) -> None:
    """Add a custom loader (e.g. from a plugin) under `name`."""
    LOADERS[name] = loader


def loader_options(spec: TaskSpec, base_dir: Path | None = None) -> dict:
    """The options a loader receives: the source options, `path` resolved, plus `_kind`/`_labels`."""
    if spec.source is None:
        raise DataSourceError(
            f"task '{spec.name}' has no 'source'; add e.g. source: {{loader: csv, path: data/{spec.name}.csv}}"
        )
    options = {**spec.source.options, "_kind": spec.kind, "_labels": list(spec.labels)}
    if options.get("path"):
        path = Path(str(options["path"])).expanduser()
        options["path"] = path if path.is_absolute() or base_dir is None else Path(base_dir) / path
    return options


def source_files(spec: TaskSpec, base_dir: Path | None = None) -> list[Path]:
    """Files a task's loader reads (for cache fingerprints); [] for custom loaders."""
    options = loader_options(spec, base_dir)
    if spec.source.loader in BUILTINS:
        try:
            return builtin_files(spec.source.loader, options)
        except DataSourceError as exc:
            raise DataSourceError(f"task '{spec.name}' (loader '{spec.source.loader}'): {exc}") from None
    return [options["path"]] if options.get("path") else []


def _problem(ex: Example, spec: TaskSpec) -> str | None:
    """Why one example does not fit the task, or None."""
    if spec.kind == "token_classification":
        if ex.words is None or ex.tags is None or len(ex.words) != len(ex.tags):
            return "token task examples need words and one tag per word"
        unknown = sorted(set(ex.tags) - set(spec.tag_names))
        return f"tags {unknown} not in the task's tags {spec.tag_names}" if unknown else None
    if spec.kind == MULTILABEL:
        ok = isinstance(ex.label, tuple) and all(isinstance(x, str) for x in ex.label)
        unknown = sorted(set(ex.label) - set(spec.labels)) if ok else []
        return None if ok and not unknown else f"label {ex.label!r} is not a set of the task labels {spec.labels}"
    if spec.kind == "regression":
        ok = isinstance(ex.label, (int, float)) and not isinstance(ex.label, bool) and math.isfinite(ex.label)
        return None if ok else f"label {ex.label!r} is not a number"
    return None if ex.label in spec.labels else f"label {ex.label!r} not in task labels {spec.labels}"


def _check(examples: list[Example], spec: TaskSpec) -> None:
    """Safety net for built-in and custom loaders: every example must fit the task."""
    if not examples:
        raise DataSourceError("the source gave no examples")
    for i, ex in enumerate(examples):
        problem = _problem(ex, spec)
        if problem:
            hint = ""
            if spec.kind == "classification":
                hint = f"; labels in this source: {sorted({str(e.label) for e in examples})[:20]}"
            raise DataSourceError(f"example {i + 1}: {problem}{hint}")


def load_examples(spec: TaskSpec, base_dir: Path | None = None) -> list[Example]:
    """Load a task's examples in a stable order; relative `path` options resolve against `base_dir`."""
    options = loader_options(spec, base_dir)
    name = spec.source.loader
    if name not in LOADERS:
        raise DataSourceError(f"task '{spec.name}': unknown loader {name!r}; known: {sorted(LOADERS)}")
    try:
        examples = LOADERS[name](options)
        _check(examples, spec)
    except DataSourceError as exc:
        raise DataSourceError(f"task '{spec.name}' (loader '{name}'): {exc}") from None
    return examples
