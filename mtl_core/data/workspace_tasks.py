"""The workspace's task file (`<workspace>/tasks.yaml`): the tasks the user works on.

It starts as the active model's task file; `add_task` appends a user's task. A task in this file that the
active model has no head for is a *new* task: few-shot heads answer it (`serve/fewshot.py`) until a round
joins it to the shared model. Every model version records the task file it was trained with (checkpoint).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

from mtl_core.tasks import (
    DEFAULT_TASK_FILE,
    TaskFile,
    TaskFileError,
    TaskSpec,
    load_task_file,
    parse_task_file,
)
from mtl_core.workspace import workspace_dir

TASK_FILE_NAME = "tasks.yaml"


def task_file_path(home: str | Path | None = None) -> Path:
    return workspace_dir(home) / TASK_FILE_NAME


def load_workspace_tasks(home: str | Path | None = None, model_tasks: TaskFile | None = None) -> TaskFile:
    """The workspace's task file; without one, the model's task file (or the built-in default six)."""
    path = task_file_path(home)
    if path.is_file():
        return load_task_file(path)
    return model_tasks or load_task_file(DEFAULT_TASK_FILE)


def save_workspace_tasks(task_file: TaskFile, home: str | Path | None = None) -> Path:
    """Write atomically (a reader never sees half a file)."""
    path = task_file_path(home)
    text = "# MTL Studio workspace tasks: the active model's tasks and the ones you added.\n"
    text += yaml.safe_dump(task_file.to_dict(), sort_keys=False, allow_unicode=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tasks-", suffix=".yaml")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def add_task(spec: TaskSpec, home: str | Path | None = None, model_tasks: TaskFile | None = None) -> TaskFile:
    """Append `spec` to the workspace's task file; TaskFileError when the name is taken."""
    current = load_workspace_tasks(home, model_tasks)
    if spec.name in {t.name for t in current.tasks}:
        raise TaskFileError(f"a task named {spec.name!r} already exists: pick another name")
    updated = parse_task_file({**current.to_dict(), "tasks": [*current.to_dict()["tasks"], spec.to_dict()]})
    save_workspace_tasks(updated, home)
    return updated


def remove_new_task(name: str, home: str | Path | None = None, model_tasks: TaskFile | None = None,
                    model_task_ok: bool = False) -> TaskFile:
    """Drop a task from the workspace's file (its labels stay in the store). A task `model_tasks` has a head for
    is refused unless `model_task_ok` (the caller made the model version without it: `model/task_edit.py`)."""
    current = load_workspace_tasks(home, model_tasks)
    if not model_task_ok and model_tasks is not None and name in {t.name for t in model_tasks.tasks}:
        raise TaskFileError(f"task {name!r} has a head in the active model: removing it makes a new model version")
    current.by_name(name)  # KeyError naming the known tasks
    data = current.to_dict()
    data["tasks"] = [t for t in data["tasks"] if t["name"] != name]
    data["contradictions"] = [r for r in data["contradictions"] if name not in (r["if_task"], r["then_task"])]
    updated = parse_task_file(data)
    save_workspace_tasks(updated, home)
    return updated


def new_tasks(workspace: TaskFile, model_tasks: TaskFile) -> list[TaskSpec]:
    """Tasks of the workspace that the model has no head for, in file order."""
    known = {t.name for t in model_tasks.tasks}
    return [t for t in workspace.tasks if t.name not in known]


def rename_task(old: str, new: str, home: str | Path | None = None, model_tasks: TaskFile | None = None) -> TaskFile:
    """Rename a task in the workspace's file (contradictions follow); TaskFileError when `new` is taken."""
    data = load_workspace_tasks(home, model_tasks).to_dict()
    if old not in {t["name"] for t in data["tasks"]}:
        raise KeyError(f"unknown task {old!r}")
    data["tasks"] = [{**t, "name": new if t["name"] == old else t["name"]} for t in data["tasks"]]
    for rule in data["contradictions"]:
        for key in ("if_task", "then_task"):
            rule[key] = new if rule[key] == old else rule[key]
    updated = parse_task_file(data)
    save_workspace_tasks(updated, home)
    return updated
