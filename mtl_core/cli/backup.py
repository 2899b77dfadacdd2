"""`python -m mtl_core backup OUT.zip [--no-models]` and `python -m mtl_core restore BACKUP.zip [--force]`."""

from __future__ import annotations


def add_parsers(sub) -> None:
    bk = sub.add_parser("backup", help="write the workspace (database, registry, models) to one zip")
    bk.add_argument("out", metavar="OUT.zip")
    bk.add_argument("--no-models", action="store_true", help="only the database and registry metadata")
    rs = sub.add_parser("restore", help="restore a backup zip into the --home workspace")
    rs.add_argument("archive", metavar="BACKUP.zip")
    rs.add_argument("--force", action="store_true",
                    help="restore over a non-empty workspace (the current one is kept aside, renamed)")


def cmd_backup(args) -> int:
    from mtl_core.ops.backup import create_backup

    report = create_backup(args.out, args.home, include_models=not args.no_models)
    print(f"wrote {report.path}: {report.files} file(s), {report.size / 1e6:,.1f} MB "
          f"(database: {report.database}; models: {'yes' if report.models else 'no, metadata only'})")
    if report.database == "annotations":
        print("note: the database is not SQLite, so only its annotation log is in the backup; "
              "back the database up with its own tools too (PostgreSQL: pg_dump).")
    return 0


def cmd_restore(args) -> int:
    from mtl_core.ops.backup import restore_backup

    report = restore_backup(args.archive, args.home, force=args.force)
    if report.moved_aside:
        print(f"the previous workspace was kept as {report.moved_aside}")
    print(f"restored {report.files} file(s) into {report.target} (database: {report.database})")
    for warning in report.warnings:
        print(f"warning: {warning}")
    return 0


BACKUP_COMMANDS = {"backup": cmd_backup, "restore": cmd_restore}
