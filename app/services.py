"""Model access for the pages: cached predictor, cached per-text predictions, batch prediction.

The only app module that runs the model. Pages read `Registry().active` on every run, so promoting
another version swaps the model on the next rerun without a restart.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import streamlit as st

from mtl_core.explain import Saliency, saliency
from mtl_core.inference import NoModelError, Predictor, load_active_predictor
from mtl_core.registry import Registry, workspace_dir
from mtl_core.types import Prediction

# Sessions share one model object; `set_attention` flips shared config, so forwards take turns.
MODEL_LOCK = threading.RLock()
PREDICTION_CACHE_SIZE = 16  # per session; each entry holds the attention tensor (~5 MB for MiniLM)
BATCH_SIZE = 64


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
    return load_active_predictor(home)


def current_predictor() -> tuple[Predictor, str]:
    """(predictor, active version id) for the workspace; raises NoModelError when there is none."""
    home = workspace_home()
    version = active_version(home)
    return get_predictor(version, home), version


def _session_cache(name: str) -> OrderedDict:
    if name not in st.session_state:
        st.session_state[name] = OrderedDict()
    return st.session_state[name]


def _remember(cache: OrderedDict, key, value) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > PREDICTION_CACHE_SIZE:
        cache.popitem(last=False)


def predict_one(predictor: Predictor, version: str, text: str) -> tuple[Prediction, bool]:
    """(prediction with attentions, fresh?) for one text; cached per (version, text) in the session,
    so a rerun caused by an explain selector never repeats the forward."""
    cache = _session_cache("_mtl_predictions")
    key = (version, text)
    if key in cache:
        cache.move_to_end(key)
        return cache[key], False
    with MODEL_LOCK:
        pred = predictor.predict([text], with_attention=True)[0]
        st.session_state["last_latency_ms"] = predictor.last_latency_ms
    _remember(cache, key, pred)
    return pred, True


def explain_saliency(predictor: Predictor, version: str, text: str, task: str, method: str) -> Saliency:
    """Saliency for one task, cached per (version, text, task, method) in the session."""
    cache = _session_cache("_mtl_saliency")
    key = (version, text, task, method)
    if key not in cache:
        with MODEL_LOCK:
            _remember(cache, key, saliency(predictor, text, task, method=method))
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
