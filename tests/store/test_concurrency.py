"""Many processes writing one SQLite file: every event lands, nobody sees "database is locked"."""

from __future__ import annotations

from tests.helpers.store import SHARED_TEXTS, run_concurrent_annotations


def test_eight_processes_into_one_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"  # not migrated yet: the 8 workers race to do it
    events, texts = run_concurrent_annotations(url, workers=8, per_worker=500)
    assert events == 4000
    assert texts == len(SHARED_TEXTS)  # concurrent add_texts deduplicated too
