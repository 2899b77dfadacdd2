"""Review page services: the queue, labelling actions, agreement, export/import, pool scoring jobs.

Plain functions over a sessionmaker (no widgets), so tests call them directly. Every labelling
action appends an event to the annotation log; nothing here updates or deletes one.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from mtl_core import worker
from mtl_core.review_queue import candidates_for
from mtl_core.store import (
    QueueEntry,
    add_annotation,
    add_texts,
    annotator_conflicts,
    cohen_kappa,
    current_labels,
    export_annotations_jsonl,
    export_conll,
    get_job,
    get_texts,
    history,
    list_jobs,
    load_predictions,
    queue_progress,
    record_predictions,
    top_queue,
    undo_last,
    upsert_queue_items,
)
from mtl_core.store.annotations import canonical
from mtl_core.store.exchange import import_annotation_records
from mtl_core.store.import_file import read_records
from mtl_core.store.models import AnnotationEvent, QueueItem, TextRow
from mtl_core.tasks import TaskFile, TaskSpec
from mtl_core.types import ClassPrediction, Prediction, RegressionPrediction, TaskPrediction, TokenPrediction

PREDICT_POOL = "predict"
ADJUDICATION = "adjudication"
JOB_KIND = "score_pool"
ACTIVE_STATUSES = ("queued", "running")

# ---------------------------------------------------------------- send to review (Predict page)


@dataclass(frozen=True)
class SentToReview:
    text_id: int
    queued: int  # queue items written for the text


def send_to_review(sessions, prediction: Prediction, version: str, task_file: TaskFile) -> SentToReview:
    """Store a Predict-page text (source 'predict'), its predictions for `version`, and its
    uncertainty/contradiction candidates as queue items. Re-sending refreshes, never duplicates."""
    with sessions() as s:
        [text_id] = add_texts(s, [prediction.text], source=PREDICT_POOL)
        record_predictions(s, [text_id], [prediction], version)
        candidates = candidates_for(prediction, 0, task_file)
        queued = upsert_queue_items(
            s, candidates, text_ids=[text_id], pool=PREDICT_POOL, model_version=version
        ) if candidates else 0
    return SentToReview(text_id, queued)


# ---------------------------------------------------------------- pools and scoring jobs


def upload_pool_name(filename: str) -> str:
    """'My reviews (1).csv' -> 'upload:My_reviews_1_.csv' (a safe, stable source name)."""
    safe = re.sub(r"[^\w.-]+", "_", Path(filename).name).strip("_") or "file"
    return f"upload:{safe[:150]}"


def store_upload(sessions, filename: str, texts: list[str]) -> tuple[str, int]:
    """Store an uploaded file's texts under source 'upload:<name>'; returns (pool name, distinct texts)."""
    pool = upload_pool_name(filename)
    with sessions() as s:
        ids = add_texts(s, texts, source=pool)
    return pool, len(set(ids))


def pool_size(sessions, source: str) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(TextRow).where(TextRow.source == source)) or 0)


def start_scoring(sessions, home: str, pool: str, model_version: str | None, limit: int,
                  previous_version: str | None = None) -> int:
    """Launch the `score_pool` worker; raises worker.JobBusy while another scoring job runs."""
    params: dict[str, Any] = {"pool": pool, "model_version": model_version, "limit": int(limit)}
    if previous_version:
        params["previous_version"] = previous_version
    return worker.launch(JOB_KIND, params, home, sessions)


@dataclass(frozen=True)
class JobView:
    id: int
    status: str
    step: int | None
    total: int | None
    progress: float
    message: str | None
    params: dict
    result: dict | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


def job_view(sessions, job_id: int | None = None) -> JobView | None:
    """A snapshot of the given scoring job, or of the newest one."""
    with sessions() as s:
        if job_id is not None:
            job = get_job(s, job_id)
        else:
            jobs = list_jobs(s, kind=JOB_KIND, limit=1)
            job = jobs[0] if jobs else None
        if job is None:
            return None
        if job.status in ACTIVE_STATUSES:
            worker.mark_stale_jobs_failed(s, worker.STALE_AFTER_S)
            s.refresh(job)
        return JobView(job.id, job.status, job.step, job.total, job.progress or 0.0, job.message,
                       dict(job.params or {}), dict(job.result) if job.result else None)


# ---------------------------------------------------------------- the queue


def next_item(sessions, annotator: str, task: str | None = None, reason: str | None = None) -> QueueEntry | None:
    """The highest-scored item this annotator has not labelled, accepted or skipped yet."""
    with sessions() as s:
        found = top_queue(s, limit=1, task=task, reason=reason, annotator=annotator)
    return found[0] if found else None


def item_for(sessions, text_id: int, task: str | None) -> QueueEntry | None:
    """The best queue item of a text (preferring `task`): where the view returns after an undo."""
    with sessions() as s:
        query = (
            select(QueueItem, TextRow.text)
            .join(TextRow, TextRow.id == QueueItem.text_id)
            .where(QueueItem.text_id == text_id)
            .order_by((QueueItem.task == task).desc(), QueueItem.score.desc(), QueueItem.id)
            .limit(1)
        )
        row = s.execute(query).first()
    if row is None:
        return None
    q, text = row
    return QueueEntry(q.id, q.text_id, text, q.task, q.reason, q.detail, q.score, q.pool, q.model_version,
                      q.created_at)


def progress(sessions, annotator: str, task: str | None = None, reason: str | None = None) -> tuple[int, int]:
    """(done, total) for this annotator under the filters."""
    with sessions() as s:
        counts = queue_progress(s, task, annotator=annotator)
    if reason is None:
        return counts["done"], counts["total"]
    part = counts["by_reason"].get(reason, {"done": 0, "total": 0})
    return part["done"], part["total"]


def stored_prediction(sessions, entry: QueueEntry) -> Prediction | None:
    """The queued version's stored answers (used when no model can be loaded)."""
    if not entry.model_version:
        return None
    with sessions() as s:
        return load_predictions(s, [entry.text_id], entry.model_version)[0]


def model_value(answer: TaskPrediction) -> Any:
    """A head's answer in the annotation-value format: class, float, or [{start, end, label}]."""
    if isinstance(answer, ClassPrediction):
        return answer.label
    if isinstance(answer, RegressionPrediction):
        return round(float(answer.value), 3)
    if isinstance(answer, TokenPrediction):
        return [{"start": s.start, "end": s.end, "label": s.label} for s in answer.spans]
    raise TypeError(f"unknown prediction type {type(answer).__name__}")


def format_value(value: Any, text: str | None = None) -> str:
    """A label as one readable line (spans with their text when `text` is given)."""
    if value is None:
        return "—"
    if isinstance(value, list):
        if not value:
            return "(no entities)"
        parts = []
        for span in sorted(value, key=lambda s: int(s["start"])):
            shown = text[int(span["start"]):int(span["end"])] if text is not None else f"{span['start']}-{span['end']}"
            parts.append(f"{shown} [{span['label']}]")
        return "; ".join(parts)
    if isinstance(value, float):
        return f"{value:+.2f}"
    return str(value)


def check_value(spec: TaskSpec, value: Any, text: str) -> Any:
    """Validate a label against its task before it is written; returns the normalised value."""
    if spec.kind == "classification":
        if value not in spec.labels:
            raise ValueError(f"{spec.name}: {value!r} is not one of {spec.labels}")
        return value
    if spec.kind == "regression":
        lo, hi = spec.value_range
        number = float(value)
        if not lo <= number <= hi:
            raise ValueError(f"{spec.name}: {number} is outside [{lo}, {hi}]")
        return round(number, 3)
    spans = sorted(({"start": int(s["start"]), "end": int(s["end"]), "label": str(s["label"])} for s in value),
                   key=lambda s: s["start"])
    for span in spans:
        if span["label"] not in spec.labels or not 0 <= span["start"] < span["end"] <= len(text):
            raise ValueError(f"{spec.name}: bad span {span}")
    for a, b in zip(spans, spans[1:]):
        if b["start"] < a["end"]:
            raise ValueError(f"{spec.name}: spans overlap at character {b['start']}")
    return spans


def record(sessions, text_id: int, task: str, value: Any, annotator: str, kind: str, reason: str | None) -> int:
    """Append a label / accept / skip event; returns its id."""
    with sessions() as s:
        return add_annotation(s, text_id, task, value, annotator, kind=kind, reason=reason).id


@dataclass(frozen=True)
class Undone:
    text_id: int
    task: str
    kind: str  # the kind of the event that was undone


def undo(sessions, annotator: str) -> Undone | None:
    """Cancel the annotator's latest effective event (a new 'undo' event); None when nothing is left."""
    with sessions() as s:
        event = undo_last(s, annotator)
        if event is None:
            return None
        target = s.get(AnnotationEvent, event.undoes_event_id)
        return Undone(event.text_id, event.task, target.kind if target is not None else "?")


@dataclass(frozen=True)
class LogRow:
    id: int
    time: datetime
    annotator: str
    task: str
    kind: str
    value: str
    reason: str | None
    undone: bool


def event_log(sessions, text_id: int) -> list[LogRow]:
    """Every event of a text, oldest first, undone ones marked."""
    with sessions() as s:
        events = history(s, text_id)
        text = get_texts(s, [text_id]).get(text_id, "")
    undone = {e.undoes_event_id for e in events if e.kind == "undo"}
    return [LogRow(e.id, e.created_at, e.annotator, e.task, e.kind,
                   "" if e.kind in ("skip", "undo") else format_value(e.value, text), e.reason, e.id in undone)
            for e in events]


# ---------------------------------------------------------------- NER span editing


@dataclass(frozen=True)
class Word:
    index: int
    start: int
    end: int
    text: str


def words_of(text: str) -> list[Word]:
    """Whitespace-separated words with their character offsets (what a span is built from)."""
    return [Word(i, m.start(), m.end(), m.group()) for i, m in enumerate(re.finditer(r"\S+", text))]


def span_from_words(words: list[Word], indices: list[int], label: str) -> dict[str, Any]:
    """A span covering a contiguous run of words; raises ValueError for an empty or gappy selection."""
    if not indices:
        raise ValueError("pick at least one word")
    picked = sorted(set(indices))
    if picked != list(range(picked[0], picked[-1] + 1)):
        raise ValueError("pick neighbouring words only: a span is one contiguous run")
    return {"start": words[picked[0]].start, "end": words[picked[-1]].end, "label": label}


def add_span(spans: list[dict[str, Any]], span: dict[str, Any]) -> list[dict[str, Any]]:
    """`spans` plus `span`, sorted; raises ValueError when it overlaps one already there."""
    for other in spans:
        if span["start"] < other["end"] and other["start"] < span["end"]:
            raise ValueError("that span overlaps an existing one: remove it first")
    return sorted([*spans, span], key=lambda s: s["start"])


# ---------------------------------------------------------------- agreement and adjudication


@dataclass(frozen=True)
class KappaRow:
    task: str
    annotator_a: str
    annotator_b: str
    shared: int
    kappa: float


def kappa_table(sessions, tasks: list[str]) -> list[KappaRow]:
    """Cohen's kappa per task and annotator pair, with how many texts both labelled."""
    rows = []
    with sessions() as s:
        for task in tasks:
            pairs = cohen_kappa(s, task)
            if not pairs:
                continue
            by_annotator: dict[str, set[int]] = {}
            for label in current_labels(s, task):
                by_annotator.setdefault(label.annotator, set()).add(label.text_id)
            for (a, b), k in sorted(pairs.items()):
                rows.append(KappaRow(task, a, b, len(by_annotator[a] & by_annotator[b]), k))
    return rows


@dataclass
class OpenConflict:
    text_id: int
    task: str
    text: str
    values: dict[str, Any]  # annotator -> current label
    options: list[Any] = field(default_factory=list)  # the distinct labels, in first-seen order


def _adjudicated_at(session, task: str) -> dict[int, datetime]:
    """text id -> time of its latest still-effective adjudication for `task`."""
    undone = select(AnnotationEvent.undoes_event_id).where(AnnotationEvent.undoes_event_id.is_not(None))
    query = (
        select(AnnotationEvent.text_id, func.max(AnnotationEvent.created_at))
        .where(AnnotationEvent.task == task, AnnotationEvent.reason == ADJUDICATION,
               AnnotationEvent.kind.in_(("label", "accept")), AnnotationEvent.id.not_in(undone))
        .group_by(AnnotationEvent.text_id)
    )
    return dict(session.execute(query).all())


def open_conflicts(sessions, spec: TaskSpec, limit: int = 50) -> list[OpenConflict]:
    """Texts whose annotators disagree on `spec` and that no later adjudication settled."""
    lo, hi = spec.value_range
    tolerance = 0.1 * (hi - lo) if spec.kind == "regression" else 0.0
    with sessions() as s:
        conflicts = annotator_conflicts(s, spec.name, tolerance=tolerance)
        settled = _adjudicated_at(s, spec.name)
        latest: dict[int, datetime] = {}
        for label in current_labels(s, spec.name):
            latest[label.text_id] = max(latest.get(label.text_id, label.created_at), label.created_at)
        open_ = [c for c in conflicts if c.text_id not in settled or settled[c.text_id] < latest[c.text_id]]
        open_ = open_[:limit]
        texts = get_texts(s, [c.text_id for c in open_])
    out = []
    for c in open_:
        options, seen = [], set()
        for value in c.values.values():
            if canonical(value) not in seen:
                seen.add(canonical(value))
                options.append(value)
        out.append(OpenConflict(c.text_id, c.task, texts.get(c.text_id, ""), dict(c.values), options))
    return out


def adjudicate(sessions, text_id: int, task: str, value: Any, annotator: str) -> int:
    """The final label of a conflict, recorded as the current annotator's label (reason 'adjudication')."""
    return record(sessions, text_id, task, value, annotator, "label", ADJUDICATION)


# ---------------------------------------------------------------- export / import


def export_jsonl_bytes(sessions) -> bytes:
    """Every annotation event as JSON lines (the format `import_jsonl_bytes` reads back)."""
    with tempfile.TemporaryDirectory() as tmp, sessions() as s:
        path = Path(tmp) / "annotations.jsonl"
        export_annotations_jsonl(s, path)
        return path.read_bytes()


def export_conll_bytes(sessions, task: str) -> bytes:
    """A span task's current labels as CoNLL (token TAB BIO-tag, blank line between texts)."""
    with tempfile.TemporaryDirectory() as tmp, sessions() as s:
        path = Path(tmp) / f"{task}.conll"
        export_conll(s, path, task)
        return path.read_bytes()


def import_jsonl_bytes(sessions, data: bytes) -> tuple[int, int]:
    """Import an annotation export; returns (new events, events in the file). Re-importing adds none.

    All or nothing: any bad line raises ImportFileError (a ValueError naming the lines) and stores nothing.
    """
    records = read_records(data)
    with sessions() as s:
        return import_annotation_records(s, records), len(records)
