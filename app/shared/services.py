"""Model access for the pages: cached predictor, cached per-text predictions, batch prediction.

The only app module that runs the model. Pages read `Registry().active` on every run, so promoting
another version swaps the model on the next rerun without a restart.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable

import streamlit as st

from mtl_core.data.workspace_tasks import load_workspace_tasks, new_tasks, task_file_path
from mtl_core.eval.compare import cached_answers
from mtl_core.model.registry import Registry
from mtl_core.model.runner import ModelRunner
from mtl_core.serve.explain import Saliency, saliency
from mtl_core.serve.predictor import NoModelError, Predictor, load_active_predictor
from mtl_core.tasks import TaskFile, TaskFileError
from mtl_core.types import Prediction
from mtl_core.workspace import hold_workspace, workspace_dir

# Sessions share one model object; `set_attention` flips shared config, so forwards take turns.
MODEL_LOCK = threading.RLock()
PREDICTION_CACHE_SIZE = 16  # per session; each entry holds the attention tensor (~5 MB for MiniLM)
# Across sessions, per predictor: annotators reviewing the same queue item share one forward and one
# saliency instead of queueing N identical ones on MODEL_LOCK (bench/system/load_sessions.py).
SHARED_CACHE_SIZE = 32
BATCH_SIZE = 64
_shared: weakref.WeakKeyDictionary[Predictor, OrderedDict] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()  # not MODEL_LOCK: a cache hit never waits behind a forward


def workspace_home() -> str:
    return str(workspace_dir())


def active_version(home: str) -> str:
    version = Registry(home).active
    if version is None:
        raise NoModelError(f"no trained model in {home}")
    return version


@st.cache_resource(max_entries=2, show_spinner="Loading the model…")
def get_predictor(version: str, home: str) -> Predictor:
    """One Predictor per (active version, workspace); a new active version is a new cache key."""
    del version  # only part of the cache key: load_active_predictor reads the registry itself
    hold_workspace(home)  # for this server's lifetime: `restore` refuses while the app uses the workspace
    return load_active_predictor(home)


def current_predictor() -> tuple[Predictor, str]:
    """(predictor, active version id) for the workspace, with the few-shot heads of its new tasks as they are
    now (a refit in the background shows on the next rerun); raises NoModelError when there is none."""
    home = workspace_home()
    version = active_version(home)
    predictor = get_predictor(version, home)
    try:
        new = {t.name for t in new_tasks(workspace_tasks(home, predictor.task_file), predictor.task_file)}
    except TaskFileError:  # a hand-edited, broken tasks.yaml: the model's own tasks still answer
        new = set()
    with MODEL_LOCK:
        predictor.refresh_fewshot(home, new)
    return predictor, version


def workspace_tasks(home: str, model_tasks: TaskFile) -> TaskFile:
    """The workspace's task file (data/workspace_tasks.py), re-read only when the file changed."""
    path = task_file_path(home)
    stamp = path.stat().st_mtime_ns if path.is_file() else None
    return _workspace_tasks(home, stamp, model_tasks)


@st.cache_data(max_entries=8, show_spinner=False, hash_funcs={TaskFile: lambda tf: repr(tf.to_dict())})
def _workspace_tasks(home: str, stamp: int | None, model_tasks: TaskFile) -> TaskFile:
    del stamp  # cache key only
    return load_workspace_tasks(home, model_tasks)


def _session_cache(name: str) -> OrderedDict:
    if name not in st.session_state:
        st.session_state[name] = OrderedDict()
    return st.session_state[name]


def _remember(cache: OrderedDict, key, value, size: int = PREDICTION_CACHE_SIZE) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)


def _shared_get(predictor: Predictor, key):
    with _SHARED_LOCK:
        cache = _shared.get(predictor)
        if cache is None or key not in cache:
            return None
        cache.move_to_end(key)
        return cache[key]


def _shared_put(predictor: Predictor, key, value) -> None:
    with _SHARED_LOCK:
        _remember(_shared.setdefault(predictor, OrderedDict()), key, value, SHARED_CACHE_SIZE)


def _computed_once(predictor: Predictor, key, compute: Callable[[], object]) -> tuple[object, bool]:
    """(value, fresh?) from the cross-session cache, computing it under MODEL_LOCK only when no session has:
    sessions that waited on the lock for the same key take the first one's result."""
    value = _shared_get(predictor, key)
    if value is not None:
        return value, False
    with MODEL_LOCK:
        value = _shared_get(predictor, key)
        if value is not None:
            return value, False
        value = compute()
        _shared_put(predictor, key, value)  # before the lock goes to the next waiter
    return value, True


def predict_one(predictor: Predictor, version: str, text: str) -> tuple[Prediction, bool]:
    """(prediction with attentions, fresh?) for one text; cached per (version, text) in the session,
    so a rerun caused by an explain selector never repeats the forward, and across sessions."""
    cache = _session_cache("_mtl_predictions")
    key = (version, predictor.fewshot_key, text)  # a refitted few-shot head is a new answer
    if key in cache:
        cache.move_to_end(key)
        return cache[key], False

    def forward() -> Prediction:
        pred = predictor.predict([text], with_attention=True)[0]
        st.session_state["last_latency_ms"] = predictor.last_latency_ms
        return pred

    pred, fresh = _computed_once(predictor, ("prediction", *key), forward)
    _remember(cache, key, pred)
    return pred, fresh


def explain_saliency(predictor: Predictor, version: str, text: str, task: str, method: str) -> Saliency:
    """Saliency for one task, cached per (version, text, task, method) in the session."""
    cache = _session_cache("_mtl_saliency")
    key = (version, text, task, method)
    if key not in cache:
        value, _ = _computed_once(predictor, ("saliency", *key), lambda: saliency(predictor, text, task, method=method))
        _remember(cache, key, value)
    return cache[key]


def predict_many(predictor: Predictor, texts: list[str],
                 on_progress: Callable[[int, int], None] | None = None) -> list[Prediction]:
    """Every task for many texts, in batches of BATCH_SIZE; `on_progress(done, total)` after each.

    Texts are sorted by length first so each batch pads to similar lengths; results keep input order.
    """
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    results: list[Prediction | None] = [None] * len(texts)
    for start in range(0, len(order), BATCH_SIZE):
        idx = order[start:start + BATCH_SIZE]
        with MODEL_LOCK:
            preds = predictor.predict([texts[i] for i in idx], batch_size=BATCH_SIZE)
        for i, pred in zip(idx, preds):
            results[i] = pred
        if on_progress is not None:
            on_progress(min(start + BATCH_SIZE, len(texts)), len(texts))
    return results  # type: ignore[return-value]


# ---------------------------------------------------------------- prefetch and embeddings (Review page)

EMBEDDING_CACHE_SIZE = 4096  # per predictor, across sessions: 384 floats each for MiniLM (~6 MB)
_embeddings: weakref.WeakKeyDictionary[Predictor, OrderedDict] = weakref.WeakKeyDictionary()


def prefetch(predictor: Predictor, version: str, text: str) -> threading.Thread | None:
    """Start the forward of `text` (the next queue item) in a background thread, into the cross-session cache
    that `predict_one` reads: the next item then shows without waiting for the model. None when cached."""
    key = ("prediction", version, text)
    if _shared_get(predictor, key) is not None:
        return None
    thread = threading.Thread(target=_computed_once, name="mtl-prefetch", daemon=True,
                              args=(predictor, key, lambda: predictor.predict([text], with_attention=True)[0]))
    thread.start()
    return thread


def embed_texts(predictor: Predictor, version: str, texts: list[str]):
    """(N, H) unit vectors of `texts` (`Predictor.embed`), each cached across sessions per (version, text)."""
    import numpy as np

    with _SHARED_LOCK:
        cache = _embeddings.setdefault(predictor, OrderedDict())
        missing = [t for t in dict.fromkeys(texts) if (version, t) not in cache]
    if missing:
        with MODEL_LOCK:
            vectors = predictor.embed(missing)
        with _SHARED_LOCK:
            for text, vector in zip(missing, vectors):
                _remember(cache, (version, text), vector, EMBEDDING_CACHE_SIZE)
    with _SHARED_LOCK:
        return np.stack([cache[(version, t)] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)


# ---------------------------------------------------------------- answers on a data split (Data page)


@st.cache_data(max_entries=16, show_spinner=False)
def split_answers(version: str, home: str, task: str, split: str, data_key: str, _predictor: Predictor,
                  _examples: list) -> list | None:
    """The model's answer per example of one task's split, in gold's form (class, value or BIO tags); None
    when the model has no head for the task. `compare.cached_answers` keeps them on disk per version, so only
    a version's first visit runs the model; this cache (version, workspace, task, split and `data_key`, the
    data's fingerprint) spares every rerun the file."""
    del split, data_key  # part of the cache key only
    if task not in _predictor.model.tasks:
        return None
    runner = ModelRunner.of(_predictor.model, _predictor.tokenizer, _predictor.device)
    with MODEL_LOCK:
        _predictor.model.set_attention(eager=False)  # no attention weights needed: the fast path
        return cached_answers(home, version, runner, {task: _examples}).get(task, [])
