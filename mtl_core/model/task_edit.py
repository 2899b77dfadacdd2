"""Remove or rename a task of a trained model: a new version, no training (its heads are dropped or re-keyed).

The new version records the edited task file, so every version keeps the tasks it answers; the parent stays
as it was (roll back to it to get a removed task back). Applicability keeps its domain classifier (a
removed task's texts are still a domain it tells apart) and renames the task wherever a rule names it.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from mtl_core.model.applicability import Applicability
from mtl_core.model.checkpoint import load_checkpoint, save_checkpoint
from mtl_core.model.registry import Registry, VersionInfo
from mtl_core.tasks import TaskFile, parse_task_file


def edited_task_file(task_file: TaskFile, remove: list[str], rename: dict[str, str]) -> TaskFile:
    """The task file without `remove` and with `rename` applied (contradictions follow; a removed task's go)."""
    known = {t.name for t in task_file.tasks}
    unknown = sorted((set(remove) | set(rename)) - known)
    if unknown:
        raise KeyError(f"unknown task(s) {unknown}; the model's tasks are {sorted(known)}")
    if len(remove) + len(rename) == 0:
        raise ValueError("nothing to change: name a task to remove or rename")
    data = task_file.to_dict()
    data["tasks"] = [{**t, "name": rename.get(t["name"], t["name"])} for t in data["tasks"] if t["name"] not in remove]
    data["contradictions"] = [{**r, "if_task": rename.get(r["if_task"], r["if_task"]),
                               "then_task": rename.get(r["then_task"], r["then_task"])}
                              for r in data["contradictions"] if not {r["if_task"], r["then_task"]} & set(remove)]
    edited = parse_task_file(data)  # TaskFileError: a clash with an existing name, an invalid name, no task left
    return edited


def edit_model(model, remove: list[str], rename: dict[str, str], task_file: TaskFile) -> None:
    """Drop/re-key heads (and private layers, edit memories, thresholds) in place to match `task_file`."""
    gates = [model.mmoe.gates] if getattr(model, "mmoe", None) is not None else []  # MMoE: a gate per task
    for table in (model.heads, model.private, model.memory, *gates):
        for name in list(table.keys()):
            module = table.pop(name)
            if name not in remove:
                table[rename.get(name, name)] = module
    thresholds = getattr(model, "thresholds", None) or {}
    model.thresholds = {rename.get(k, k): v for k, v in thresholds.items() if k not in remove}
    model.tasks = {t.name: t for t in task_file.tasks}
    _edit_private_tasks(model, remove, rename)
    if getattr(model, "applicability", None) is not None:
        model.applicability = _renamed_applicability(model.applicability, remove, rename)
    model.train(model.training)  # clears the fused-head cache: the set of heads changed


def _edit_private_tasks(model, remove: list[str], rename: dict[str, str]) -> None:
    """Tasks with their own upper layers beside a full encoder (ModelConfig.private_tasks): the config names
    them, so it follows the edit; with none left the model is fully shared."""
    cfg = getattr(model, "config", None)
    if cfg is None or cfg.private_tasks is None:
        return
    kept = [rename.get(n, n) for n in cfg.private_tasks if n not in remove]
    model.config = dataclasses.replace(cfg, private_tasks=kept or None,
                                       shared_layers=cfg.shared_layers if kept else None)
    if not kept:
        model.branch_from = None


def _renamed_applicability(app: Applicability, remove: list[str], rename: dict[str, str]) -> Applicability:
    def name(n):
        return rename.get(n, n)

    rules = {}
    for task, rule in app.rules.items():
        if task in remove:
            continue
        rule = dict(rule)
        if "domain" in rule:
            rule["domain"] = [name(d) for d in rule["domain"]]
        if rule.get("polarity"):
            rule["polarity"] = None if rule["polarity"] in remove else name(rule["polarity"])
        rules[name(task)] = rule
    return dataclasses.replace(app, domains=[name(d) for d in app.domains], rules=rules)


def edit_version(home: str | Path | None, remove: list[str] = (), rename: dict[str, str] | None = None,
                 base: str | None = None, activate: bool = True) -> VersionInfo:
    """Register the base (default: active) version minus `remove`, with `rename`, as a new version."""
    reg = Registry(home)
    base = base or reg.active
    if base is None:
        raise ValueError("no model version to edit: train a model first")
    remove, rename = list(remove), dict(rename or {})
    model, tokenizer, task_file, meta = load_checkpoint(reg.path_of(base))
    edited = edited_task_file(task_file, remove, rename)
    edit_model(model, remove, rename, edited)
    what = ", ".join([f"removed {n}" for n in remove] + [f"renamed {a} to {b}" for a, b in rename.items()])
    staging = reg.staging_dir("task-edit")
    try:
        save_checkpoint(model, tokenizer, edited, staging, train_config=meta.get("train_config"),
                        metrics=meta.get("metrics"))
        old = reg.get(base).metrics or {}
        metrics = {rename.get(k, k): v for k, v in old.items() if k not in remove}
        return reg.register(staging, note=f"{what} (from {base}, no training)", parent=base, metrics=metrics,
                            extra={"kind": "task_edit", "removed": remove, "renamed": rename}, activate=activate)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
