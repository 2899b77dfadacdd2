"""Persistence for MTL Studio: texts, predictions, the append-only annotation log, the review queue, jobs.

Plain functions taking a SQLAlchemy `Session` first. Write functions commit (retrying SQLite's
"database is locked"), so one call is one unit of work.
"""

from mtl_core.store.annotations import (
    Conflict,
    CurrentLabel,
    add_annotation,
    annotator_conflicts,
    cohen_kappa,
    current_labels,
    history,
    undo_last,
)
from mtl_core.store.db import database_url, init_db, make_engine, retry_locked, session_factory
from mtl_core.store.exchange import export_annotations_jsonl, export_conll, import_annotations_jsonl
from mtl_core.store.jobs import (
    add_job_metric,
    append_job_log,
    create_job,
    current_job,
    finish_job,
    get_job,
    job_metrics,
    job_ordinal,
    list_jobs,
    mark_stale_jobs_failed,
    start_job,
    update_job_progress,
)
from mtl_core.store.queue import QueueEntry, queue_progress, top_queue, upsert_queue_items
from mtl_core.store.texts import (
    add_texts,
    get_dataset_labels,
    get_texts,
    load_predictions,
    record_predictions,
    set_dataset_labels,
)

__all__ = [
    "Conflict",
    "CurrentLabel",
    "QueueEntry",
    "add_annotation",
    "add_job_metric",
    "add_texts",
    "annotator_conflicts",
    "append_job_log",
    "cohen_kappa",
    "create_job",
    "current_labels",
    "database_url",
    "export_annotations_jsonl",
    "export_conll",
    "finish_job",
    "get_dataset_labels",
    "get_job",
    "get_texts",
    "history",
    "import_annotations_jsonl",
    "init_db",
    "job_metrics",
    "job_ordinal",
    "current_job",
    "list_jobs",
    "load_predictions",
    "make_engine",
    "mark_stale_jobs_failed",
    "queue_progress",
    "record_predictions",
    "retry_locked",
    "session_factory",
    "set_dataset_labels",
    "start_job",
    "top_queue",
    "undo_last",
    "update_job_progress",
    "upsert_queue_items",
]
