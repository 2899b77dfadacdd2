"""Review page services: export of the annotation log (JSONL, CoNLL) and import of an export.

Plain functions over a sessionmaker (no widgets), so tests call them directly.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd

from mtl_core.data.csv_safe import to_csv_bytes
from mtl_core.ops import auth
from mtl_core.store import export_annotations_jsonl, export_conll
from mtl_core.store.db import Sessions
from mtl_core.store.final_labels import final_labels
from mtl_core.store.import_file import read_records
from mtl_core.store.importer import import_annotation_records
from mtl_core.tasks import TaskFile


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


def import_jsonl_bytes(sessions: Sessions, data: bytes, task_file: TaskFile,
                       importer: str | None = None) -> tuple[int, int]:
    """Import an annotation export; returns (new events, events in the file). Re-importing adds none.

    Tasks and values are checked against `task_file`. In team mode `importer` (the signed-in user) is
    required and becomes the annotator of the imported events; the file's names are kept as provenance.
    All or nothing: any bad line raises ImportFileError (a ValueError naming the lines) and stores nothing.
    """
    if auth.team_mode_enabled() and not importer:
        raise ValueError("Sign in to import annotations: in team mode they are recorded under your name.")
    records = read_records(data)
    with sessions() as s:
        return import_annotation_records(s, records, task_file, importer=importer), len(records)


FINAL_COLUMNS = ["text_id", "text", "task", "label", "status", "annotators"]


def final_labels_records(sessions: Sessions, task: str) -> list[dict]:
    """One record per text labelled for `task`: its final label after undo and adjudication (store.final_labels)."""
    with sessions() as s:
        rows = final_labels(s, task)
    return [{"text_id": r.text_id, "text": r.text, "task": r.task, "label": r.value, "status": r.status,
             "annotators": r.annotators} for r in rows]


def final_labels_csv(sessions: Sessions, task: str) -> bytes:
    """The final labels as spreadsheet-safe CSV (spans as JSON in the label cell)."""
    records = final_labels_records(sessions, task)
    for rec in records:
        if isinstance(rec["label"], (list, dict)):
            rec["label"] = json.dumps(rec["label"], ensure_ascii=False)
    return to_csv_bytes(pd.DataFrame(records, columns=FINAL_COLUMNS))


def final_labels_jsonl(sessions: Sessions, task: str) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in final_labels_records(sessions, task)).encode()
