"""Workspace backup/restore: a full round trip (store, registry, models) and archives that must be refused."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tracemalloc
import uuid
import zipfile
from dataclasses import asdict
from pathlib import Path

import pytest

from mtl_core.cli.main import main
from mtl_core.model.registry import Registry
from mtl_core.model.version_marks import discard_version, discarded_versions
from mtl_core.ops import backup, backup_archive
from mtl_core.ops.backup import BackupError, create_backup, restore_backup
from mtl_core.serve.predictor import Predictor
from mtl_core.store import add_annotation, add_texts, export_annotations_jsonl, history, undo_last
from mtl_core.store.db import open_store
from tests.helpers.rounds import add_round_version

TEXTS = ["a great film", "an awful film", "Obama visited Paris"]


@pytest.fixture
def filled(workspace, monkeypatch):
    """The tiny workspace + annotations (an undo included) + an inactive, discarded v0002; the store stays open."""
    monkeypatch.delenv("MTL_STUDIO_DATABASE_URL", raising=False)
    engine, sessions = open_store(workspace)
    with sessions() as s:
        ids = add_texts(s, TEXTS, source="predict")
        add_annotation(s, ids[0], "sentiment", "positive", "alice")
        add_annotation(s, ids[1], "sentiment", "negative", "alice", reason="uncertain")
        add_annotation(s, ids[2], "ner", [{"start": 0, "end": 5, "label": "person"}], "bob")
        undo_last(s, "alice")
        add_annotation(s, ids[1], "sentiment", "positive", "bob")
    add_round_version(workspace)
    discard_version("v0002", workspace)
    yield workspace
    engine.dispose()


def _annotations(home: Path, tmp_path: Path) -> tuple[bytes, list]:
    engine, sessions = open_store(home)
    out = tmp_path / f"export-{home.name}.jsonl"
    with sessions() as s:
        export_annotations_jsonl(s, out)
        events = [(e.event_key, e.kind, e.value, e.annotator, e.created_at, e.undoes_event_id)
                  for text_id in (1, 2, 3) for e in history(s, text_id)]
    engine.dispose()
    return out.read_bytes(), events


def _predictions(home: Path) -> list[dict]:
    reg = Registry(home)
    predictor = Predictor.from_dir(reg.path_of(reg.active), device="cpu", version=reg.active)
    return [p.to_dict() for p in predictor.predict(TEXTS)]


def assert_same_workspace(original: Path, restored: Path, tmp_path: Path) -> None:
    exported, events = _annotations(original, tmp_path)
    assert exported.count(b"\n") == 5 and _annotations(restored, tmp_path) == (exported, events)
    old, new = Registry(original), Registry(restored)
    assert [asdict(v) for v in new.versions()] == [asdict(v) for v in old.versions()]
    assert new.active == old.active == "v0001"
    assert discarded_versions(restored) == discarded_versions(original) != {}
    assert _predictions(restored) == _predictions(original)


def test_backup_and_restore_round_trip(filled, tmp_path):
    assert (filled / "mtl_studio.db-wal").stat().st_size > 0  # live WAL: a raw file copy would miss commits
    report = create_backup(tmp_path / "b.zip", filled)
    assert report.database == "sqlite" and report.models
    with zipfile.ZipFile(report.path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        names = set(zf.namelist())
    assert manifest["format_version"] == 1 and manifest["mtl_core_version"] and manifest["created"]
    assert {"store/mtl_studio.db", "models/registry.json", "models/discarded.json"} <= names
    assert any(n.startswith("models/v0002/") for n in names) and "store/mtl_studio.db-wal" not in names
    restored = restore_backup(report.path, tmp_path / "restored")
    assert restored.warnings == [] and restored.moved_aside is None
    assert_same_workspace(filled, tmp_path / "restored", tmp_path)


def test_store_export_branch_for_other_databases(filled, tmp_path, monkeypatch):
    with monkeypatch.context() as m:  # what a PostgreSQL workspace gets: the annotation log, not a db file
        m.setattr(backup, "sqlite_file", lambda url: None)
        report = create_backup(tmp_path / "pg.zip", filled)
    assert report.database == "annotations"
    with zipfile.ZipFile(report.path) as zf:
        assert "store/annotations.jsonl" in zf.namelist() and "store/mtl_studio.db" not in zf.namelist()
    restore_backup(report.path, tmp_path / "restored")
    assert _annotations(tmp_path / "restored", tmp_path) == _annotations(filled, tmp_path)


def test_cli_backup_restore_refuses_non_empty_without_force(filled, tmp_path, capsys):
    out, target = tmp_path / "cli.zip", tmp_path / "target"
    assert main(["--home", str(filled), "backup", str(out), "--no-models"]) == 0
    with zipfile.ZipFile(out) as zf:
        assert not [n for n in zf.namelist() if n.startswith("models/v")]
    assert main(["--home", str(target), "restore", str(out)]) == 0
    assert "v0001, v0002" in capsys.readouterr().out  # warns that the model files are not in the backup
    assert Registry(target).active == "v0001"
    assert main(["--home", str(target), "restore", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["--home", str(filled), "backup", str(out)]) == 0
    assert main(["--home", str(target), "restore", str(out), "--force"]) == 0
    [aside] = tmp_path.glob("target.before-restore-*")
    assert (aside / "mtl_studio.db").exists() and (target / "models" / "v0002").is_dir()
    assert_same_workspace(filled, target, tmp_path)


# ------------------------------------------------------------------------------ refused archives


def _craft(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]], corrupt_sha: bool = False) -> Path:
    """An archive with a well-formed manifest that lists `entries` with their true (or wrong) checksums."""
    files = [{"path": info if isinstance(info, str) else info.filename, "size": len(data),
              "sha256": hashlib.sha256(data + (b"x" if corrupt_sha else b"")).hexdigest()} for info, data in entries]
    manifest = {"format": "mtl-studio-backup", "format_version": 1, "database": "none", "models": False,
                "files": files}
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in entries:
            zf.writestr(info, data)
        zf.writestr("manifest.json", json.dumps(manifest))
    return path


def _symlink_entry() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("models/link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def assert_refused(archive: Path, tmp_path: Path, message: str) -> None:
    target = tmp_path / "victim" / "ws"
    with pytest.raises(BackupError, match=message):
        restore_backup(archive, target)
    assert not target.exists() and list((tmp_path / "victim").iterdir()) == []  # no half-restored workspace


@pytest.mark.parametrize("entry, message", [
    ("../evil.txt", "zip-slip"),
    ("models/../../evil.txt", "zip-slip"),
    ("/tmp/mtl-evil-absolute.txt", "absolute path"),
    (_symlink_entry(), "symbolic link"),
])
def test_unsafe_entries_are_refused(tmp_path, entry, message):
    archive = _craft(tmp_path / "evil.zip", [("models/registry.json", b"{}"), (entry, b"/etc/passwd")])
    assert_refused(archive, tmp_path, message)
    assert not (tmp_path / "victim" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/mtl-evil-absolute.txt").exists()


def test_checksum_mismatch_and_foreign_zip_are_refused(tmp_path):
    assert_refused(_craft(tmp_path / "a.zip", [("models/registry.json", b"{}")], corrupt_sha=True), tmp_path,
                   "checksum")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("hello.txt", "hi")
    assert_refused(tmp_path / "other.zip", tmp_path, "not an MTL Studio backup")


def test_truncated_and_damaged_archives_are_refused(filled, tmp_path):
    data = create_backup(tmp_path / "b.zip", filled).path.read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) // 2])
    assert_refused(tmp_path / "cut.zip", tmp_path, "corrupt or truncated")
    damaged = bytearray(data)
    for offset in range(len(data) // 3, len(data) // 3 + 64):  # inside the model weights
        damaged[offset] ^= 0xFF
    (tmp_path / "bad.zip").write_bytes(bytes(damaged))
    assert_refused(tmp_path / "bad.zip", tmp_path, "corrupt or truncated|checksum")


def _bomb(path: Path, size: int = 1 << 30) -> Path:
    """A ~1 MB zip whose valid-JSON manifest inflates to `size` bytes of blanks, written streaming."""
    head = b'{"format": "mtl-studio-backup", "format_version": 1, "database": "none", "files": []'
    block, left = b" " * (1 << 20), size - len(head) - 1
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zf.open("manifest.json", "w", force_zip64=True) as out:
        out.write(head)
        while left:
            out.write(block[:left])
            left -= min(left, len(block))
        out.write(b"}")
    return path


def test_a_zip_bomb_manifest_is_refused_before_it_is_read(tmp_path, capsys):
    bomb = _bomb(tmp_path / "bomb.zip")
    assert bomb.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        assert_refused(bomb, tmp_path, r"manifest.json is 1,024.0 MiB, over the 16 MiB .* zip bomb")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 << 20
    assert main(["--home", str(tmp_path / "cli"), "restore", str(bomb)]) == 2
    err = capsys.readouterr().err
    assert "zip bomb" in err and "Traceback" not in err


def test_json_files_are_read_with_a_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(backup_archive, "JSON_CAP", 1000)
    big = json.dumps({"versions": [], "active": None, "pad": " " * 2000}).encode()
    assert_refused(_craft(tmp_path / "big.zip", [("models/registry.json", big)]), tmp_path,
                   "models/registry.json is .* MiB, over")
    assert_refused(_bomb(tmp_path / "small-bomb.zip", 4000), tmp_path, "manifest.json is .* MiB, over")


@pytest.mark.parametrize("where", ["manifest.json", "models/registry.json", "models/discarded.json"])
def test_deeply_nested_json_is_refused(tmp_path, where):
    deep = b"[" * 100_000 + b"]" * 100_000
    if where == "manifest.json":
        with zipfile.ZipFile(tmp_path / "deep.zip", "w") as zf:
            zf.writestr("manifest.json", deep)
    else:
        registry = ("models/registry.json", b'{"active": null, "versions": []}')
        _craft(tmp_path / "deep.zip", [e for e in [registry] if e[0] != where] + [(where, deep)])
    assert_refused(tmp_path / "deep.zip", tmp_path, f"{where}( in the backup)? is nested too deeply")


@pytest.mark.postgres
@pytest.mark.skipif(not os.environ.get("MTL_STUDIO_TEST_PG"), reason="set MTL_STUDIO_TEST_PG to a PostgreSQL URL")
def test_postgres_workspace_backs_up_its_annotation_log(workspace, tmp_path, monkeypatch):
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"mtl_backup_{uuid.uuid4().hex[:10]}"
    admin = create_engine(os.environ["MTL_STUDIO_TEST_PG"], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(os.environ["MTL_STUDIO_TEST_PG"]).set(database=name).render_as_string(hide_password=False)
    try:
        monkeypatch.setenv("MTL_STUDIO_DATABASE_URL", url)
        engine, sessions = open_store(workspace)
        with sessions() as s:
            ids = add_texts(s, TEXTS, source="predict")
            add_annotation(s, ids[0], "sentiment", "positive", "alice")
            undo_last(s, "alice")
        expected = _annotations(workspace, tmp_path)
        engine.dispose()
        report = create_backup(tmp_path / "pg.zip", workspace)
        assert report.database == "annotations"
        monkeypatch.delenv("MTL_STUDIO_DATABASE_URL")
        restore_backup(report.path, tmp_path / "restored")
        assert _annotations(tmp_path / "restored", tmp_path) == expected
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
