"""`python -m mtl_core round`: a fine-tuning round on the store's corrections, on one or several processes.

`--nproc N` runs the same command under torchrun on N local processes (GPUs); under a torchrun started by
hand (several nodes, SLURM: docs/SCALING.md) every rank runs it and rank 0 prints the result.
"""

from __future__ import annotations

import json
from dataclasses import fields

from mtl_core.rounds.config import RoundConfig


def add_parser(sub, type_of) -> None:
    """Register `round`; `type_of(field)` turns a dataclass field into an argparse type (cli.main's)."""
    p = sub.add_parser("round", help="fine-tune a version on the store's corrections; registers it inactive")
    p.add_argument("--base", help="the version to start from (default: the active one)")
    p.add_argument("--note", default="")
    p.add_argument("--data-dir", help="folder the task file's relative data paths are read from")
    add_nproc(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    for f in fields(RoundConfig):
        if f.name not in ("tasks", "new_tasks"):
            p.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=None, type=type_of(f))
    p.add_argument("--tasks", nargs="+", default=None, help="learn from these tasks' corrections only")
    p.add_argument("--new-tasks", nargs="+", default=None,
                   help="workspace tasks to join to the model (a new head each; docs/FINETUNE.md)")


def add_nproc(parser) -> None:
    parser.add_argument("--nproc", type=int, default=1,
                        help="processes on this node, one per GPU if there are GPUs: runs this command under "
                             "torchrun (docs/SCALING.md)")


def relaunch(args) -> int | None:
    """Under `--nproc N` > 1 and not yet under torchrun: run this very command on N processes; its exit status."""
    from mtl_core.train import distributed

    distributed.check_nproc(args.nproc)
    if args.nproc == 1 or distributed.under_torchrun():
        return None
    return distributed.run_torchrun(args.nproc, ["mtl_core", *without_nproc(args.argv)])


def without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def cmd_round(args) -> int:
    from mtl_core.progress import PrintReporter
    from mtl_core.rounds.distributed import run_round_ranked
    from mtl_core.store.db import open_store
    from mtl_core.train import distributed
    from mtl_core.workspace import workspace_dir

    status = relaunch(args)
    if status is not None:
        return status
    cfg = RoundConfig(**{f.name: getattr(args, f.name) for f in fields(RoundConfig) if getattr(args, f.name) is not None})
    distributed.init_from_env()
    try:
        home = workspace_dir(args.home)
        with distributed.main_first():  # rank 0 migrates the store if it has to
            _, sessions = open_store(home)
        reporter = PrintReporter(verbose=not args.json) if distributed.is_main() else distributed.SilentReporter()
        result = run_round_ranked(home, args.base, cfg, sessions, reporter, note=args.note, data_dir=args.data_dir)
    finally:
        distributed.shutdown()
    if result is None:  # a rank other than 0: it trained, rank 0 reports
        return 0
    out = result.to_dict()
    if args.json:
        print(json.dumps(out, default=str))
    else:
        test = out["comparison"]["test"]["tasks"]
        print(f"registered {out['version']} (inactive) from {out['base_version']}: {out['n_corrections']} corrections; "
              + ", ".join(f"{t} {'new' if row['old'] is None else format(row['old'], '.3f')} -> {row['new']:.3f}"
                          for t, row in test.items()))
    return 0
