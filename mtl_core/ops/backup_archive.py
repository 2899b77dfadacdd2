"""Reading a backup zip defensively: readable archive, known format, safe paths, no links, every checksum.

Used by `mtl_core.ops.backup.restore_backup`; everything is extracted into a scratch dir the caller throws away
on any error. Memory stays bounded whatever the archive claims: the manifest and every JSON file may hold at most
JSON_CAP bytes (checked on the declared size, then on what is read), deep nesting is refused, and the payload is
streamed to disk, never past the size the manifest gives each file.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

FORMAT = "mtl-studio-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNK = 1 << 20
DATABASE_KINDS = ("sqlite", "annotations", "none")
JSON_CAP = 16 << 20  # manifest.json and the registry's JSON files are kilobytes; more is a zip bomb


class BackupError(ValueError):
    """A backup could not be written, or an archive cannot be restored (nothing was changed)."""


def extract_verified(archive: Path, dest: Path) -> dict:
    """Extract every file of `archive` into `dest`, checking it against the manifest; returns the manifest."""
    try:
        with zipfile.ZipFile(archive) as zf:
            manifest = read_manifest(zf, archive)
            entries = _entries_matching(zf, manifest)
            _check_free_space(dest, sum(f["size"] for f in manifest["files"]))
            for spec in manifest["files"]:
                _extract_one(zf, entries[spec["path"]], spec, dest)
    except FileNotFoundError:
        raise BackupError(f"{archive}: no such file") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise BackupError(f"{archive} is not a readable MTL Studio backup: the zip is corrupt or truncated "
                          f"({exc}). Nothing was restored.") from None
    return manifest


def read_manifest(zf: zipfile.ZipFile, archive: Path) -> dict:
    try:
        info = zf.getinfo(MANIFEST)
    except KeyError:
        raise BackupError(f"{archive} has no {MANIFEST}: it is not an MTL Studio backup") from None
    if info.file_size > JSON_CAP:
        raise _too_big(archive, MANIFEST, info.file_size)
    with zf.open(info) as src:
        raw = src.read(JSON_CAP + 1)  # the declared size can lie
    if len(raw) > JSON_CAP:
        raise _too_big(archive, MANIFEST, len(raw))
    manifest = parse_json(raw, f"{archive}: {MANIFEST}")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive} is not an MTL Studio backup ({MANIFEST} has no format {FORMAT!r})")
    if not isinstance(manifest.get("format_version"), int) or manifest["format_version"] > FORMAT_VERSION:
        raise BackupError(f"{archive} has backup format {manifest.get('format_version')!r}; this version of "
                          f"MTL Studio reads format {FORMAT_VERSION} and older: upgrade MTL Studio to restore it")
    files = manifest.get("files")
    if not isinstance(files, list) or not all(_is_file_spec(f) for f in files):
        raise BackupError(f"{archive}: {MANIFEST} has no valid file list")
    for spec in files:  # restore parses these whole: bound them like the manifest
        if spec["path"].endswith(".json") and spec["size"] > JSON_CAP:
            raise _too_big(archive, spec["path"], spec["size"])
    if manifest.get("database") not in DATABASE_KINDS:
        raise BackupError(f"{archive}: {MANIFEST} names an unknown database kind {manifest.get('database')!r}")
    manifest["models"] = bool(manifest.get("models"))
    return manifest


def parse_json(raw: bytes, what: str):
    """json.loads with a BackupError for bad or too deeply nested JSON (which would raise RecursionError)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise BackupError(f"refusing the backup: {what} is nested too deeply to be ours. Nothing was restored.") from None
    except ValueError as exc:
        raise BackupError(f"{what} is not valid JSON ({exc}). Nothing was restored.") from None


def _too_big(archive: Path, name: str, size: int) -> BackupError:
    return BackupError(f"refusing the backup {archive}: {name} is {size / (1 << 20):,.1f} MiB, over the "
                       f"{JSON_CAP >> 20} MiB such a file may have (a zip bomb?). Nothing was restored.")


def _is_file_spec(spec) -> bool:
    return (isinstance(spec, dict) and isinstance(spec.get("path"), str) and isinstance(spec.get("size"), int)
            and spec["size"] >= 0 and isinstance(spec.get("sha256"), str))


def unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    """Why an archive entry must not be extracted: absolute path, '..', backslashes, a link or device."""
    name = info.filename
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "an absolute path"
    if "\\" in name or "\x00" in name:
        return "a path with a backslash or NUL"
    if any(part in ("..", ".") for part in PurePosixPath(name).parts):
        return "a path with '..' or '.' (zip-slip)"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: no type recorded (Python's own writer)
        return "not a regular file"
    return None


def _entries_matching(zf: zipfile.ZipFile, manifest: dict) -> dict[str, zipfile.ZipInfo]:
    """The archive's file entries, which must be exactly the manifest's files, each with a safe path."""
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        why = unsafe_reason(info)
        if why:
            raise BackupError(f"refusing the backup: entry {info.filename!r} is {why}. Nothing was restored.")
        if info.filename != MANIFEST and not info.is_dir():
            entries[info.filename] = info
    listed = [f["path"] for f in manifest["files"]]
    if len(set(listed)) != len(listed):
        raise BackupError("refusing the backup: the manifest lists a file twice")
    missing, extra = set(listed) - set(entries), set(entries) - set(listed)
    if missing or extra:
        detail = f"missing {sorted(missing)[:3]}" if missing else f"unlisted {sorted(extra)[:3]}"
        raise BackupError(f"refusing the backup: its files do not match the manifest ({detail})")
    for spec in manifest["files"]:
        if entries[spec["path"]].file_size != spec["size"]:
            raise BackupError(f"refusing the backup: {spec['path']} is not the size its manifest says")
    return entries


def _check_free_space(dest: Path, needed: int) -> None:
    free = shutil.disk_usage(dest).free
    if needed > free:
        raise BackupError(f"not enough disk space to restore: {needed / 1e6:,.0f} MB needed, {free / 1e6:,.0f} MB free")


def _extract_one(zf: zipfile.ZipFile, info: zipfile.ZipInfo, spec: dict, dest: Path) -> None:
    """Stream one entry to disk, never writing more than the manifest's size; then compare the sha256."""
    target = dest / PurePosixPath(info.filename)
    if not target.resolve().is_relative_to(dest.resolve()):
        raise BackupError(f"refusing the backup: entry {info.filename!r} points outside the workspace")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with zf.open(info) as src, target.open("wb") as out:
        for chunk in iter(lambda: src.read(CHUNK), b""):
            size += len(chunk)
            if size > spec["size"]:
                raise BackupError(f"refusing the backup: {info.filename} is larger than its manifest says")
            digest.update(chunk)
            out.write(chunk)
    if size != spec["size"] or digest.hexdigest() != spec["sha256"]:
        raise BackupError(f"refusing the backup: {info.filename} does not match its checksum "
                          "(the archive was changed or damaged). Nothing was restored.")
