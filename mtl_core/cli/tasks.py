"""`python -m mtl_core tasks list | add | remove | fit`: the workspace's own tasks (few-shot until a round joins
them to the shared model). `add` does what the Data page's "New task" does: define, load a file, fit a head.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mtl_core.tasks import KINDS


def add_parser(sub) -> None:
    tasks = sub.add_parser("tasks", help="your own tasks: list, add (with a labelled or unlabelled file), fit")
    cmds = tasks.add_subparsers(dest="tasks_command", required=True)
    cmds.add_parser("list", help="the workspace's tasks, with labels and few-shot heads of the new ones")
    add = cmds.add_parser("add", help="define a new task; optionally load its labelled file and/or text pool")
    add.add_argument("name")
    add.add_argument("--kind", required=True, choices=KINDS)
    add.add_argument("--labels", nargs="+", default=[], help="classes (or entity types of a token task)")
    add.add_argument("--range", nargs=2, type=float, metavar=("LOW", "HIGH"), help="regression: value range")
    add.add_argument("--description", default="")
    add.add_argument("--labelled", help="CSV/TSV/JSONL (text + label columns) or CoNLL file of labelled examples")
    add.add_argument("--pool", help="CSV/TSV/JSONL/TXT file of unlabelled texts to label later")
    add.add_argument("--text-column", default="text")
    add.add_argument("--label-column", default="label")
    add.add_argument("--annotator", default="import", help="name the file's labels are recorded under")
    rm = cmds.add_parser("remove", help="remove a task (a trained one: a new model version without its head)")
    rm.add_argument("name")
    mv = cmds.add_parser("rename", help="rename a task (a trained one: a new model version); labels follow")
    mv.add_argument("old")
    mv.add_argument("new")
    fit = cmds.add_parser("fit", help="refit a new task's few-shot head on the active model")
    fit.add_argument("name")


def cmd_tasks(args) -> int:
    return {"list": _list, "add": _add, "remove": _remove, "rename": _rename, "fit": _fit}[args.tasks_command](args)


def _context(home):
    from mtl_core.data.workspace_tasks import load_workspace_tasks
    from mtl_core.serve.predictor import load_active_predictor
    from mtl_core.store.db import open_store

    predictor = load_active_predictor(home)
    return predictor, load_workspace_tasks(home, predictor.task_file), open_store(home)[1]


def _list(args) -> int:
    from mtl_core.data.workspace_tasks import new_tasks
    from mtl_core.review.new_task import label_counts, pool_size
    from mtl_core.serve.fewshot import load_heads

    predictor, workspace, sessions = _context(args.home)
    fresh = {t.name for t in new_tasks(workspace, predictor.task_file)}
    heads = load_heads(args.home, predictor.version, fresh)
    print(f"{'task':<18} {'kind':<22} {'status':<10} details")
    for spec in workspace.tasks:
        if spec.name not in fresh:
            print(f"{spec.name:<18} {spec.kind:<22} {'trained':<10} head in model {predictor.version}")
            continue
        with sessions() as s:
            counts, pool = label_counts(s, spec), pool_size(s, spec.name)
        head = heads.get(spec.name)
        status = "few-shot" if head else "no head"
        est = "" if head is None or head.cv_accuracy is None else f", est. accuracy {head.cv_accuracy:.0%}"
        print(f"{spec.name:<18} {spec.kind:<22} {status:<10} labels {counts}, pool {pool}{est}")
    return 0


def _add(args) -> int:
    from mtl_core.data.task_upload import read_labelled, read_texts
    from mtl_core.data.workspace_tasks import add_task
    from mtl_core.review.fewshot_fit import refit
    from mtl_core.review.new_task import store_rows
    from mtl_core.tasks import TaskSpec

    predictor, _, sessions = _context(args.home)
    extra = {"value_range": tuple(args.range)} if args.range else {}
    spec = TaskSpec(name=args.name, kind=args.kind, labels=list(args.labels), description=args.description, **extra)
    files = []  # read before anything is stored: a bad file leaves no half-made task
    if args.labelled:
        files.append(read_labelled(Path(args.labelled).read_bytes(), args.labelled, spec, args.text_column,
                                   args.label_column))
    if args.pool:
        files.append(read_texts(Path(args.pool).read_bytes(), args.pool, args.text_column))
    add_task(spec, args.home, predictor.task_file)
    print(f"added task {spec.name!r} ({spec.kind}) to the workspace's task file")
    for got in files:
        for line in got.warnings + got.problems[:20]:
            print(f"  skipped/warning: {line}")
        if got.skipped > 20:
            print(f"  ... and {got.skipped - 20} more skipped rows")
        with sessions() as s:
            n_texts, n_labels = store_rows(s, spec.name, got.rows, args.annotator)
        print(f"  stored {n_texts} texts, {n_labels} labels ({got.skipped} rows skipped)")
    with sessions() as s:
        report = refit(args.home, predictor, spec, s)
    print(f"few-shot head: {report.message}")
    return 0


def _remove(args) -> int:
    from mtl_core.data.workspace_tasks import remove_new_task
    from mtl_core.model.task_edit import edit_version
    from mtl_core.serve.fewshot import delete_head

    predictor, workspace, _ = _context(args.home)
    if args.name not in set(predictor.task_names) | {t.name for t in workspace.tasks}:
        raise KeyError(f"unknown task {args.name!r}")
    if args.name in predictor.task_names:
        info = edit_version(args.home, remove=[args.name])
        print(f"registered {info.id} (active): {predictor.version} without {args.name!r}; roll back to "
              f"{predictor.version} to get it back")
    if args.name in {t.name for t in workspace.tasks}:
        remove_new_task(args.name, args.home, predictor.task_file, model_task_ok=True)
    delete_head(args.name, args.home)
    print(f"removed task {args.name!r} (its texts and labels stay in the store)")
    return 0


def _rename(args) -> int:
    from mtl_core.data.workspace_tasks import rename_task
    from mtl_core.model.task_edit import edit_version
    from mtl_core.serve.fewshot import delete_head
    from mtl_core.store.task_names import copy_task_labels
    from mtl_core.tasks import TaskSpec

    predictor, workspace, sessions = _context(args.home)
    TaskSpec(name=args.new, kind="regression")  # TaskFileError for an invalid name, before anything changes
    taken = {t.name for t in workspace.tasks} | set(predictor.task_names)
    if args.new in taken:
        raise ValueError(f"a task named {args.new!r} already exists")
    with sessions() as s:
        n = copy_task_labels(s, args.old, args.new)
    if args.old in predictor.task_names:
        info = edit_version(args.home, rename={args.old: args.new})
        print(f"registered {info.id} (active): {predictor.version} with {args.old!r} renamed")
    rename_task(args.old, args.new, args.home, predictor.task_file)
    delete_head(args.old, args.home)  # a new task's head is refitted under its new name
    print(f"renamed {args.old!r} to {args.new!r}; {n} current labels carried over")
    if args.old not in predictor.task_names and n:
        return _fit(argparse.Namespace(home=args.home, name=args.new))
    return 0


def _fit(args) -> int:
    from mtl_core.review.fewshot_fit import refit

    predictor, workspace, sessions = _context(args.home)
    with sessions() as s:
        report = refit(args.home, predictor, workspace.by_name(args.name), s)
    print(f"{args.name}: {report.message} ({report.seconds:.2f} s)")
    return 0 if report.fitted else 1
