"""`python -m mtl_core prepare-data | train | round | lab | evaluate | predict | export | versions | activate`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from mtl_core.cli.backup import BACKUP_COMMANDS
from mtl_core.cli.backup import add_parsers as add_backup_parsers
from mtl_core.cli.lab import add_parser as add_lab_parser
from mtl_core.cli.lab import cmd_lab
from mtl_core.cli.rounds import add_nproc, cmd_round, relaunch
from mtl_core.cli.rounds import add_parser as add_round_parser
from mtl_core.cli.tasks import add_parser as add_tasks_parser
from mtl_core.cli.tasks import cmd_tasks
from mtl_core.cli.users import add_parser as add_users_parser
from mtl_core.cli.users import cmd_users
from mtl_core.data import DataSourceError, counts_table
from mtl_core.model.checkpoint import CheckpointError
from mtl_core.model.modeling import ModelConfig
from mtl_core.serve.export import ExportError
from mtl_core.serve.predictor import NoModelError
from mtl_core.tasks import DEFAULT_TASK_FILE, TaskFileError
from mtl_core.train.loop import TrainConfig

USER_ERRORS = (TaskFileError, DataSourceError, CheckpointError, NoModelError, ValueError, FileNotFoundError, KeyError,
               ExportError)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mtl_core", description="MTL Studio: multi-task text models")
    p.add_argument("--home", help="workspace dir (default: $MTL_STUDIO_HOME or ./workspace)")
    sub = p.add_subparsers(dest="command", required=True)

    prep = sub.add_parser("prepare-data", help="load, dedupe and split every task; print counts")
    prep.add_argument("--task-file", default=str(DEFAULT_TASK_FILE))

    tr = sub.add_parser("train", help="train a new model version from the pretrained encoder")
    tr.add_argument("--task-file", default=str(DEFAULT_TASK_FILE))
    size = tr.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="~3 minute run: fewer steps, smaller dev evaluation")
    size.add_argument("--full", action="store_true", help="~35 minute run (2 CPU cores): 2.25x the default steps")
    tr.add_argument("--if-missing", action="store_true", help="do nothing when a model version already exists")
    tr.add_argument("--no-activate", action="store_true", help="register without making it the active version")
    tr.add_argument("--progress-file", help="write the latest progress event as JSON here (for UIs)")
    tr.add_argument("--note", default="")
    tr.add_argument("--json", action="store_true", help="print the report as JSON")
    add_nproc(tr)
    for f in fields(ModelConfig) + fields(TrainConfig):
        if f.name in ("tasks", "private_tasks"):
            continue
        tr.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=None, type=_type_of(f))
    tr.add_argument("--tasks", nargs="+", default=None, help="train only these tasks")
    tr.add_argument("--private-tasks", nargs="+", default=None,
                    help="with --shared-layers K: only these tasks get their own layers above K (default: every task)")

    ev = sub.add_parser("evaluate", help="metrics of a version on a split")
    ev.add_argument("--version")
    ev.add_argument("--split", default="test", choices=["train", "dev", "test"])
    ev.add_argument("--quantize", action="store_true", help="evaluate the int8 dynamically quantized model (CPU)")
    ev.add_argument("--json", action="store_true")

    pr = sub.add_parser("predict", help="every task for each TEXT ('-' reads lines from stdin)")
    pr.add_argument("texts", nargs="+", metavar="TEXT")
    pr.add_argument("--version")
    pr.add_argument("--quantize", action="store_true", help="int8 dynamic quantization (CPU)")
    pr.add_argument("--json", action="store_true")

    ex = sub.add_parser("export", help="export a version (all heads, one graph) for other runtimes")
    ex.add_argument("--onnx", action="store_true", required=True, help="ONNX graph, checked with onnxruntime")
    ex.add_argument("--version", help="default: the active version")
    ex.add_argument("--out", help="output dir (default: <workspace>/exports/<version>-onnx)")
    ex.add_argument("--json", action="store_true")

    sub.add_parser("versions", help="list model versions")
    act = sub.add_parser("activate", help="make a version the active one (promote / roll back)")
    act.add_argument("version")
    add_backup_parsers(sub)
    add_users_parser(sub)
    add_round_parser(sub, _type_of)
    add_tasks_parser(sub)
    add_lab_parser(sub)
    return p


def _type_of(f):
    # annotations are strings ("int | None"): the first word is the scalar type
    return {"int": int, "float": float, "bool": _bool}.get(str(f.type).split(" ")[0], str)


def _bool(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _pick(cls, args) -> dict:
    return {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}


def cmd_prepare(args) -> int:
    from mtl_core.train.pipeline import prepare

    task_file, prepared = prepare(args.task_file, args.home)
    print(counts_table(prepared, task_file))
    return 0


def cmd_train(args) -> int:
    from mtl_core.model.registry import Registry
    from mtl_core.progress import ProgressFile
    from mtl_core.train import distributed
    from mtl_core.train.pipeline import FULL, train_new_version
    from mtl_core.train.recipe import with_recipe  # the Lab page's "Use as default recipe"

    if args.if_missing and Registry(args.home).active:
        print(f"model {Registry(args.home).active} already exists; skipping training")
        return 0
    status = relaunch(args)  # --nproc N: this command again, on N processes under torchrun
    if status is not None:
        return status
    distributed.init_from_env()  # under torchrun: this process is one rank (docs/SCALING.md)
    reporter = ProgressFile(args.progress_file) if args.progress_file and distributed.is_main() else None
    try:
        explicit = {**(FULL if args.full else {}), **_pick(TrainConfig, args)}  # given options win over --full
        train_over, model_over = with_recipe(args.home, explicit, _pick(ModelConfig, args))
        info, report = train_new_version(
            args.task_file, ModelConfig(**model_over), TrainConfig(**train_over), quick=args.quick,
            home=args.home, note=args.note or ("full training" if args.full else ""), activate=not args.no_activate,
            reporter=reporter,
        )
    except Exception as exc:
        if reporter:
            reporter.write({"status": "failed", "message": f"{type(exc).__name__}: {exc}"})
        raise
    finally:
        distributed.shutdown()
    if info is None:  # a rank other than 0: rank 0 evaluates, registers and prints
        return 0
    if reporter:
        reporter.write({"status": "done", "version": info.id, "step": report["steps"], "total": report["steps"]})
    if args.json:
        print(json.dumps({"version": info.id, **{k: report[k] for k in ("test", "dev", "timings", "best_step")}}))
        return 0
    print(f"\nregistered {info.id} ({'active' if not args.no_activate else 'inactive'})")
    print(_metrics_table(report["test"]["tasks"], "test"))
    print("\nwhere the time went (s): " + ", ".join(f"{k} {v:.1f}" for k, v in report["timings"].items()))
    return 0


def _metrics_table(tasks: dict, split: str) -> str:
    lines = [f"{'task':<16} {split} metrics"]
    for name, m in tasks.items():
        shown = {k: v for k, v in m.items() if not k.startswith("f1_") and k != "primary"}
        lines.append(f"{name:<16} " + "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()))
    return "\n".join(lines)


def cmd_evaluate(args) -> int:
    from mtl_core.train.pipeline import evaluate_version

    out = evaluate_version(args.version, args.split, args.home, quantize=args.quantize)
    print(json.dumps(out) if args.json else _metrics_table(out["tasks"], args.split + (" (int8)" if args.quantize else "")))
    return 0


def cmd_predict(args) -> int:
    from mtl_core.model.registry import Registry
    from mtl_core.serve.predictor import Predictor, load_active_predictor

    texts = [line.rstrip("\n") for line in sys.stdin] if args.texts == ["-"] else args.texts
    empty = [i + 1 for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise ValueError(f"text #{empty[0]} is empty or whitespace only: nothing to predict")
    if args.version:
        reg = Registry(args.home)
        pred = Predictor.from_dir(reg.path_of(args.version), version=args.version, quantize=args.quantize)
    else:
        pred = load_active_predictor(args.home, quantize=args.quantize)
    results = pred.predict(texts)
    if args.json:
        print(json.dumps([{"text": r.text, "tasks": r.to_dict()["tasks"], "truncated": r.truncated} for r in results]))
        return 0
    for r in results:
        print(f"\n{r.text[:100]!r}" + ("  [truncated: model read the first 128 tokens]" if r.truncated else ""))
        for name, p in r.tasks.items():
            print(f"  {name:<16} {_short(p)}")
    return 0


def _short(p) -> str:
    if p.kind == "classification":
        return f"{p.label} ({p.score:.2f})"
    if p.kind == "regression":
        return f"{p.value:+.2f} on [{p.low:g}, {p.high:g}]"
    if p.kind == "multilabel_classification":
        return ", ".join(f"{label} ({p.probs[label]:.2f})" for label in p.labels) or "(no labels)"
    return ", ".join(f"{s.text!r}:{s.label}" for s in p.spans) or "(no entities)"


def cmd_export(args) -> int:
    from mtl_core.serve.export import export_version

    out = export_version(args.version, args.out, args.home)
    if args.json:
        print(json.dumps(out))
        return 0
    worst = max(out["max_abs_diff"].values())
    print(f"exported {out['version']} to {out['path']} ({out['size_mb']:.0f} MB): inputs input_ids, attention_mask; "
          f"outputs {', '.join(out['max_abs_diff'])}")
    print(f"onnxruntime matches PyTorch: max abs difference {worst:.1e}")
    return 0


def cmd_versions(args) -> int:
    from mtl_core.model.registry import Registry

    reg = Registry(args.home)
    for v in reg.versions():
        mark = "*" if v.id == reg.active else " "
        metrics = " ".join(f"{k}={val:.3f}" for k, val in v.metrics.items())
        print(f"{mark} {v.id}  parent={v.parent or '-'}  {v.note}  {metrics}")
    if reg.orphans():
        print(f"orphan dirs, not versions (left by an interrupted registration): {', '.join(reg.orphans())}")
    return 0


def cmd_activate(args) -> int:
    from mtl_core.model.registry import Registry

    Registry(args.home).activate(args.version)
    print(f"{args.version} is now active")
    return 0


COMMANDS = {"prepare-data": cmd_prepare, "train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict,
            "export": cmd_export, "versions": cmd_versions, "activate": cmd_activate, "users": cmd_users,
            "round": cmd_round, "tasks": cmd_tasks, "lab": cmd_lab}
COMMANDS.update(BACKUP_COMMANDS)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `--nproc N` runs the same command under torchrun
    try:
        return COMMANDS[args.command](args)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
