"""Review page services: export of the annotation log (JSONL, CoNLL) and import of an export.

Plain functions over a sessionmaker (no widgets), so tests call them directly.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mtl_core.store import export_annotations_jsonl, export_conll
from mtl_core.store.db import Sessions
from mtl_core.store.exchange import import_annotation_records
from mtl_core.store.import_file import read_records


def export_jsonl_bytes(sessions: Sessions) -> bytes:
    """Every annotation event as JSON lines (the format `import_jsonl_bytes` reads back)."""
    with tempfile.TemporaryDirectory() as tmp, sessions() as s:
        path = Path(tmp) / "annotations.jsonl"
        export_annotations_jsonl(s, path)
        return path.read_bytes()


def export_conll_bytes(sessions: Sessions, task: str) -> bytes:
    """A span task's current labels as CoNLL (token TAB BIO-tag, blank line between texts)."""
    with tempfile.TemporaryDirectory() as tmp, sessions() as s:
        path = Path(tmp) / f"{task}.conll"
        export_conll(s, path, task)
        return path.read_bytes()


def import_jsonl_bytes(sessions: Sessions, data: bytes) -> tuple[int, int]:
    """Import an annotation export; returns (new events, events in the file). Re-importing adds none.

    All or nothing: any bad line raises ImportFileError (a ValueError naming the lines) and stores nothing.
    """
    records = read_records(data)
    with sessions() as s:
        return import_annotation_records(s, records), len(records)
