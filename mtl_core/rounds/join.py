"""New tasks joining the shared model in a fine-tuning round (`RoundConfig.new_tasks`).

A workspace task the base version has no head for (data/workspace_tasks.py) joins in a round: the model gets a
new, randomly initialised head for it (model/new_heads.py); it trains on its store labels (the round's
corrections of that task) and on all of its dataset's train split when its spec has a `source`; the new
version's checkpoint records the extended task file. The old tasks are replayed and distilled as in any round;
the new task is never distilled (the base has no answer to keep). Few-shot heads of the task belong to the base
version and stay as they are.

Test sets: a task with a dataset is tested on its test split. A task without one (any task of the round, so a
joined task stays tested in later rounds) holds out its store labels whose normalised text hashes into the last
HOLDOUT_SHARE (20 %), only when it has at least HOLDOUT_MIN (20) usable labels; held-out texts are frozen like a
test split: no task trains on them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mtl_core.data.examples import Example
from mtl_core.data.workspace_tasks import load_workspace_tasks, new_tasks
from mtl_core.model.registry import Registry
from mtl_core.rounds.round_data import Correction, RoundData, correction_example, normalise
from mtl_core.tasks import TaskFile, TaskSpec, parse_task_file

HOLDOUT_SHARE = 0.2  # share of a dataset-less task's labels (by text hash) kept as its test set
HOLDOUT_MIN = 20  # fewer labels than this: no held-out test set (a few labels are better spent on training)

Prepared = dict[str, dict[str, list[Example]]]


def version_tasks(home: str | Path | None, version: str) -> TaskFile:
    """The task file a registered version was trained with (its checkpoint's tasks.json; no weights loaded)."""
    path = Registry(home).path_of(version) / "tasks.json"
    return parse_task_file(json.loads(path.read_text(encoding="utf-8")))


def joinable_tasks(home: str | Path | None, version: str) -> list[TaskSpec]:
    """Workspace tasks `version` has no head for: what `RoundConfig.new_tasks` may name."""
    base = version_tasks(home, version)
    return new_tasks(load_workspace_tasks(home, base), base)


def extend_task_file(home: str | Path | None, base: TaskFile,
                     names: list[str] | None) -> tuple[TaskFile, list[TaskSpec]]:
    """-> (the base's tasks + the joined ones, the joined specs in workspace-file order).

    ValueError for a name that is not a new task of the workspace's task file. Workspace contradiction
    rules that involve a joined task (and only tasks of the result) come along."""
    if not names:
        return base, []
    workspace = load_workspace_tasks(home, base)
    have = {t.name for t in base.tasks}
    taken = [n for n in names if n in have]
    if taken:
        raise ValueError(f"RoundConfig.new_tasks: the base model already has a head for {taken}")
    new = {t.name: t for t in new_tasks(workspace, base)}
    unknown = [n for n in names if n not in new]
    if unknown:
        raise ValueError(f"RoundConfig.new_tasks: {unknown} not in the workspace's task file "
                         f"(new tasks there: {sorted(new)})")
    joined = [t for t in new.values() if t.name in names]
    every = have | set(names)
    rules = list(base.contradictions) + [
        r for r in workspace.contradictions
        if {r.if_task, r.then_task} <= every and {r.if_task, r.then_task} & set(names)
        and r.name not in {b.name for b in base.contradictions}]
    return TaskFile(tasks=[*base.tasks, *joined], contradictions=rules), joined


def _bucket(key: str) -> float:
    """A text's place in [0, 1): the same on every machine and in every round."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big") / 2 ** 64


def held_out(spec: TaskSpec, corrections: list[Correction]) -> list[Example]:
    """The test set of a task without a dataset: its store labels whose text hashes into the last
    HOLDOUT_SHARE ([] with fewer than HOLDOUT_MIN usable labels). The latest label per text wins."""
    examples: dict[str, Example] = {}
    for c in corrections:  # oldest first (load_corrections): a later label overwrites
        ex = correction_example(spec, c.text, c.value) if c.task == spec.name else None
        if ex is not None:
            examples[normalise(ex.text)] = ex
    if len(examples) < HOLDOUT_MIN:
        return []
    return [ex for key, ex in examples.items() if _bucket(key) >= 1 - HOLDOUT_SHARE]


def with_test_sets(task_file: TaskFile, prepared: Prepared,
                   corrections: list[Correction]) -> tuple[Prepared, dict[str, list[Example]]]:
    """-> (prepared + the held-out test sets of tasks without a dataset (so `build_round_data` freezes their
    texts), task -> test examples for every task that has some)."""
    out = dict(prepared)
    for spec in task_file.tasks:
        if spec.source is None and spec.name not in prepared:
            tests = held_out(spec, corrections)
            if tests:
                out[spec.name] = {"test": tests}
    tests = {t.name: out[t.name]["test"] for t in task_file.tasks if out.get(t.name, {}).get("test")}
    return out, tests


def check_round_data(data: RoundData, joined: list[TaskSpec], found: int) -> None:
    """ValueError when the round has nothing to learn, or a joined task has no training example."""
    if not data.correction_ids and not joined:
        raise ValueError(f"no usable corrections (found {found}; skipped: {data.skipped})")
    empty = [t.name for t in joined if not data.counts.get(t.name, {}).get("train")]
    if empty:
        raise ValueError(f"new task(s) {empty} have nothing to train on: label some of their texts "
                         "(the store) or give them a dataset (`source` in the task file)")


def applicability_texts(texts: dict[str, list[str]], data: RoundData) -> dict[str, list[str]]:
    """`train_texts` + the corrected texts of tasks without a dataset (so a joined task gets a domain)."""
    out = dict(texts)
    for task, examples in data.corrections.items():
        if not out.get(task):
            out[task] = [ex.text for ex in examples]
    return out
