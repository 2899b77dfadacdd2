"""Workspace backup and restore: one zip with the store, the model registry and (by default) the models.

Archive layout:
  manifest.json            format + version, created, mtl_core version, database kind, every file's size + sha256
  store/mtl_studio.db      SQLite: a consistent copy from sqlite3's online backup API (safe while the app runs)
  store/annotations.jsonl  any other database (PostgreSQL): the annotation log as exported by the Review page;
                           back such a database up with pg_dump as well
  models/registry.json, models/discarded.json, ...   the registry metadata
  models/vNNNN/...         the registered model versions (left out with include_models=False)

Restore checks the whole archive (readable zip, safe relative paths, no links, every checksum) while it
extracts into a scratch dir beside the target, then moves it into place: a bad archive leaves nothing behind.
It holds the workspace lock alone while it works, so it refuses while the app or a worker uses the workspace.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
import zipfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from mtl_core import __version__
from mtl_core.model.checkpoint import CheckpointError
from mtl_core.model.registry import Registry
from mtl_core.ops.backup_archive import (
    CHUNK,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    BackupError,
    extract_verified,
    parse_json,
)
from mtl_core.store import database_url, export_annotations_jsonl, init_db, make_engine, session_factory
from mtl_core.store.db import ENV_URL
from mtl_core.store.exchange import import_annotations_jsonl
from mtl_core.workspace import LOCK_FILE, WorkspaceBusy, workspace_dir, workspace_exclusive

DB_ENTRY = "store/mtl_studio.db"
ANNOTATIONS_ENTRY = "store/annotations.jsonl"
DB_FILE = "mtl_studio.db"


@dataclass
class BackupReport:
    path: Path
    files: int
    size: int  # bytes of the zip
    database: str  # "sqlite", "annotations" (export of another database) or "none"
    models: bool


@dataclass
class RestoreReport:
    target: Path
    files: int
    database: str
    models: bool
    moved_aside: Path | None = None  # the previous workspace, kept under another name (--force)
    warnings: list[str] = field(default_factory=list)


def sqlite_file(url: str) -> Path | None:
    """The file behind a SQLite URL; None for other databases (or an in-memory one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def sqlite_snapshot(source: Path, target: Path) -> None:
    """Copy a live (WAL) SQLite database consistently with the online backup API, as one self-contained file."""
    src = sqlite3.connect(str(source), timeout=30)
    dst = sqlite3.connect(str(target))
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # the copy needs no -wal/-shm files beside it
        check = dst.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        dst.close()
        src.close()
    if check != "ok":
        raise BackupError(f"the database copy failed its integrity check: {check}")


def create_backup(out: str | Path, home: str | Path | None = None, include_models: bool = True) -> BackupReport:
    """Write the workspace at `home` to the zip `out` (written under a temporary name, then renamed)."""
    home, out = workspace_dir(home), Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with tempfile.TemporaryDirectory(prefix="backup-", dir=out.parent) as scratch:
        database, sources = _snapshot_store(home, Path(scratch))
        sources += _registry_files(home, Path(scratch), include_models)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "mtl_core_version": __version__,
                "created": datetime.now(timezone.utc).isoformat(), "database": database, "models": include_models}
        try:
            _write_zip(partial, sources, meta)
            os.replace(partial, out)
        finally:
            partial.unlink(missing_ok=True)
    return BackupReport(out, len(sources), out.stat().st_size, database, include_models)


def _snapshot_store(home: Path, scratch: Path) -> tuple[str, list[tuple[str, Path]]]:
    url = database_url(home)
    db_file = sqlite_file(url)
    if db_file is not None:
        if not db_file.exists():
            return "none", []
        sqlite_snapshot(db_file, scratch / DB_FILE)
        return "sqlite", [(DB_ENTRY, scratch / DB_FILE)]
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            export_annotations_jsonl(session, scratch / "annotations.jsonl")
    finally:
        engine.dispose()
    return "annotations", [(ANNOTATIONS_ENTRY, scratch / "annotations.jsonl")]


def _registry_files(home: Path, scratch: Path, include_models: bool) -> list[tuple[str, Path]]:
    """Copies of the registry's metadata files, then the version dirs that copy names (one consistent view)."""
    models = home / "models"
    meta_dir = scratch / "models"
    meta_dir.mkdir()
    sources = []
    for path in sorted(models.glob("*.json")) if models.is_dir() else []:
        shutil.copy2(path, meta_dir / path.name)
        sources.append((f"models/{path.name}", meta_dir / path.name))
    if include_models and (meta_dir / "registry.json").exists():
        versions = json.loads((meta_dir / "registry.json").read_text(encoding="utf-8"))["versions"]
        for version in (v["id"] for v in versions):
            for path in sorted((models / version).rglob("*")):
                if path.is_file() and not path.is_symlink():
                    sources.append((path.relative_to(home).as_posix(), path))
    return sources


def _write_zip(path: Path, sources: list[tuple[str, Path]], meta: dict) -> None:
    files = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for name, source in sources:
            digest, size = hashlib.sha256(), 0
            big = source.stat().st_size >= 1 << 31
            with source.open("rb") as src, archive.open(name, "w", force_zip64=big) as dst:
                for chunk in iter(lambda src=src: src.read(CHUNK), b""):
                    digest.update(chunk)
                    dst.write(chunk)
                    size += len(chunk)
            files.append({"path": name, "size": size, "sha256": digest.hexdigest()})
        archive.writestr(MANIFEST, json.dumps({**meta, "files": files}, indent=1))


def workspace_path(home: str | Path | None = None) -> Path:
    """Where the workspace is (like `registry.workspace_dir`, without creating it)."""
    return Path(home or os.environ.get("MTL_STUDIO_HOME") or "workspace").resolve()


def restore_backup(archive: str | Path, home: str | Path | None = None, force: bool = False) -> RestoreReport:
    """Restore `archive` into the workspace `home`, which must be empty or absent unless `force`
    (then the current workspace is kept beside it as `<name>.before-restore-<time>`)."""
    target = workspace_path(home)
    with _alone_in(target):
        if _has_content(target) and not force:
            raise BackupError(f"{target} is not empty: restore into a new or empty workspace (--home DIR), "
                              "or pass --force to keep the current one aside and restore in its place")
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=f".{target.name}.restoring-", dir=target.parent))
        try:
            manifest = extract_verified(Path(archive), staged)
            report = RestoreReport(target, len(manifest["files"]), manifest["database"], manifest["models"])
            _install_store(staged, report)
            _check_registry(staged, report)
            report.moved_aside = _move_into_place(staged, target)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
    return report


def _alone_in(target: Path) -> ExitStack:
    """The workspace lock of an existing `target`, held exclusively (the app and workers hold it shared)."""
    stack = ExitStack()
    if target.is_dir():
        try:
            stack.enter_context(workspace_exclusive(target))
        except WorkspaceBusy as exc:
            raise BackupError(f"{exc}. Nothing was restored.") from None
    return stack


def _has_content(path: Path) -> bool:
    return path.exists() and (not path.is_dir() or any(p.name != LOCK_FILE for p in path.iterdir()))


def _install_store(staged: Path, report: RestoreReport) -> None:
    store = staged / "store"
    if (store / DB_FILE).exists():
        (store / DB_FILE).replace(staged / DB_FILE)
        try:
            with sqlite3.connect(str(staged / DB_FILE)) as conn:
                check = conn.execute("PRAGMA integrity_check").fetchone()[0]
            if check == "ok":
                init_db(f"sqlite:///{staged / DB_FILE}").dispose()  # upgrades an older schema, proves it opens
        except (sqlite3.DatabaseError, SQLAlchemyError) as exc:
            check = f"{type(exc).__name__}: {exc}"
        if check != "ok":
            raise BackupError(f"the database in the backup failed its integrity check: {check}. Nothing was restored.")
        if os.environ.get(ENV_URL, "").strip():
            report.warnings.append(f"{ENV_URL} is set, so the app uses that database, not the restored SQLite "
                                   f"file {DB_FILE}: unset it to use the restored one.")
    elif (store / "annotations.jsonl").exists():
        engine = init_db(database_url(staged))
        try:
            with session_factory(engine)() as session:
                import_annotations_jsonl(session, store / "annotations.jsonl")
        finally:
            engine.dispose()
    shutil.rmtree(store, ignore_errors=True)


def _check_registry(staged: Path, report: RestoreReport) -> None:
    for path in sorted((staged / "models").glob("*.json")):  # each at most JSON_CAP: parsing it is bounded
        parse_json(path.read_bytes(), f"models/{path.name} in the backup")
    if not (staged / "models" / "registry.json").exists():
        return
    registry = Registry(staged)
    try:
        missing = [v.id for v in registry.versions() if not registry.path_of(v.id).is_dir()]
    except (CheckpointError, TypeError, KeyError, AttributeError) as exc:
        raise BackupError(f"models/registry.json in the backup is not a model registry ({exc}). "
                          "Nothing was restored.") from None
    if missing:
        report.warnings.append(f"the backup holds no files for model version(s) {', '.join(missing)} "
                               "(made with --no-models?): copy those dirs into models/ or train again.")


def _move_into_place(staged: Path, target: Path) -> Path | None:
    aside = None
    if target.exists():
        if _has_content(target):
            aside = target.with_name(f"{target.name}.before-restore-{time.strftime('%Y%m%d-%H%M%S')}")
            os.rename(target, aside)
        else:
            (target / LOCK_FILE).unlink(missing_ok=True)  # a process waiting on it notices and locks the new one
            target.rmdir()
    try:
        os.rename(staged, target)
    except OSError:
        if aside is not None:
            os.rename(aside, target)
        raise
    return aside
