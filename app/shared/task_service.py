"""New tasks for the pages: create one from a file, label it, refit its few-shot head in the background.

Refits run in a daemon thread of the server (one at a time per task, the model under `services.MODEL_LOCK`):
a refit is one forward for the new text plus a logistic regression (well under a second on two CPU cores),
so the worker process's start-up (~5 s of imports and model loading) would cost more than the work. Pages
see a new head on their next rerun: the Predictor reloads head files when they change.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from app.shared import services
from app.shared.store_service import get_sessions
from mtl_core.data.task_upload import Labelled
from mtl_core.data.workspace_tasks import add_task, new_tasks
from mtl_core.review.fewshot_fit import FitReport, refit, task_labels
from mtl_core.review.new_task import NextText, label_counts, next_texts, pool_size, store_rows
from mtl_core.serve.fewshot import load_heads
from mtl_core.serve.predictor import NoModelError
from mtl_core.store.annotations import add_annotation
from mtl_core.tasks import TaskFileError, TaskSpec

_refits: dict[tuple[str, str], dict] = {}  # (home, task) -> {"thread", "report", "queued_at"}
_REFIT_LOCK = threading.Lock()


@dataclass
class TaskStatus:
    spec: TaskSpec
    counts: dict[str, int]
    pool: int
    head: object | None  # FewShotHead of the active version, or None
    refitting: bool
    last_report: FitReport | None


_tried: set[tuple[str, str, str]] = set()  # (home, version, task) refits started by ensure_heads


def ensure_heads() -> None:
    """After a promotion or rollback the heads fitted on the previous version no longer apply: start one
    background refit per new task that has none for the active version (once per version and task)."""
    home = services.workspace_home()
    predictor, version = services.current_predictor()
    try:
        specs = new_task_specs()
    except TaskFileError:  # a broken tasks.yaml: the pages that show tasks say so; Predict goes on
        return
    for spec in specs:
        key = (home, version, spec.name)
        if spec.name not in predictor.fewshot and key not in _tried:
            _tried.add(key)
            start_refit(spec)


def new_task_specs() -> list[TaskSpec]:
    """The workspace's tasks the active model has no head for ([] without a model)."""
    predictor, _ = services.current_predictor()
    return new_tasks(services.workspace_tasks(services.workspace_home(), predictor.task_file), predictor.task_file)


def create_task(spec: TaskSpec, files: list[Labelled], annotator: str) -> tuple[int, int]:
    """Add the task to the workspace's task file, store its files' rows, start a refit. -> (texts, labels)."""
    home = services.workspace_home()
    try:
        model_tasks = services.current_predictor()[0].task_file
    except NoModelError:  # no model yet (first run): the task and its data wait for one; no head to fit
        model_tasks = None
    add_task(spec, home, model_tasks)
    texts = labels = 0
    for got in files:
        with get_sessions()() as s:
            t, n = store_rows(s, spec.name, got.rows, annotator)
        texts, labels = texts + t, labels + n
    if model_tasks is not None:
        start_refit(spec)
    return texts, labels


def add_pool_texts(spec: TaskSpec, got: Labelled) -> int:
    """Store unlabelled texts in the task's pool; -> texts stored (a text already there counts once)."""
    with get_sessions()() as s:
        return store_rows(s, spec.name, [(t, None) for t, _ in got.rows], "import")[0]


def save_label(spec: TaskSpec, text_id: int, value, annotator: str) -> None:
    """Record one label and start a refit in the background (the page does not wait for it)."""
    with get_sessions()() as s:
        add_annotation(s, text_id, spec.name, value, annotator)
        s.commit()
    start_refit(spec)


def start_refit(spec: TaskSpec) -> None:
    """Refit `spec`'s head in a background thread; a refit already running is followed by one more."""
    key = (services.workspace_home(), spec.name)
    with _REFIT_LOCK:
        state = _refits.setdefault(key, {"thread": None, "report": None, "again": False})
        if state["thread"] is not None and state["thread"].is_alive():
            state["again"] = True  # labels saved meanwhile: one more fit when this one ends
            return
        state["thread"] = threading.Thread(target=_refit_loop, args=(key, spec), daemon=True)
        state["thread"].start()


def _refit_loop(key: tuple[str, str], spec: TaskSpec) -> None:
    home, _ = key
    while True:
        predictor = services.get_predictor(services.active_version(home), home)
        with services.MODEL_LOCK, get_sessions()() as s:
            report = refit(home, predictor, spec, s)
        with _REFIT_LOCK:
            state = _refits[key]
            state["report"] = report
            if not state["again"]:
                state["thread"] = None
                return
            state["again"] = False


def wait_for_refit(spec: TaskSpec, timeout_s: float = 30.0) -> FitReport | None:
    """Block until the task's background refit ends (tests, the CLI-like flows); its report."""
    state = _refits.get((services.workspace_home(), spec.name))
    thread = state and state["thread"]
    if thread is not None:
        thread.join(timeout_s)
    return state["report"] if state else None


def status(spec: TaskSpec) -> TaskStatus:
    home = services.workspace_home()
    predictor, version = services.current_predictor()
    with get_sessions()() as s:
        counts, pool = label_counts(s, spec), pool_size(s, spec.name)
    state = _refits.get((home, spec.name)) or {}
    thread = state.get("thread")
    return TaskStatus(spec, counts, pool, load_heads(home, version, {spec.name}).get(spec.name),
                      bool(thread is not None and thread.is_alive()), state.get("report"))


def labelled(spec: TaskSpec) -> list[tuple[str, str]]:
    """(text, label shown as text) per labelled text of the task."""
    with get_sessions()() as s:
        return [(t, ", ".join(v) if isinstance(v, list) else str(v)) for t, v in task_labels(s, spec.name)]


def next_to_label(spec: TaskSpec, n: int = 1) -> list[NextText]:
    home = services.workspace_home()
    predictor, _ = services.current_predictor()
    with services.MODEL_LOCK, get_sessions()() as s:
        return next_texts(s, home, predictor, spec, n)
