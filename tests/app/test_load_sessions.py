"""Concurrent app sessions (bench/system/load_sessions.py) on the tiny model: no errors, every annotation stored once.

No timing assertions: the latency figures live in docs/PERFORMANCE.md ("Load: concurrent sessions").
"""

from __future__ import annotations

import importlib.util
import sys

from tests.helpers import ROOT


def _load_sessions():
    spec = importlib.util.spec_from_file_location("load_sessions", ROOT / "bench" / "system" / "load_sessions.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_four_sessions_predict_and_annotate_without_errors(workspace, tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_STUDIO_DATABASE_URL", f"sqlite:///{tmp_path / 'load.db'}")
    monkeypatch.delenv("MTL_STUDIO_TEAM_MODE", raising=False)  # single-user mode: annotators by name
    result = _load_sessions().run_load(sessions=4, seconds=15, seed_texts=12)
    assert result.errors == []
    assert result.annotations > 0
    assert result.verified, (result.missing, result.extra, result.duplicated)
    for log in result.logs:  # every session predicted and annotated
        assert log.latencies["predict"] and log.annotations, log.name


def test_sessions_asking_for_the_same_text_share_one_forward(tiny_predictor):
    """What the load run found: N annotators on the same queue item queued N identical forwards."""
    import threading
    import time

    from app.shared import services

    calls: list[int] = []

    def slow_forward():
        calls.append(1)
        time.sleep(0.2)
        return tiny_predictor.predict(["the same item"])[0]

    results: list = []
    threads = [threading.Thread(target=lambda: results.append(
        services._computed_once(tiny_predictor, ("test", "the same item"), slow_forward))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 8
    assert len({id(value) for value, _fresh in results}) == 1
    assert sorted(fresh for _value, fresh in results) == [False] * 7 + [True]
