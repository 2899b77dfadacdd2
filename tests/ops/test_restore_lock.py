"""`restore` refuses while the app or a worker uses the workspace (they hold its lock shared), and works once
they have gone."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from mtl_core.ops import worker
from mtl_core.ops.backup import BackupError, create_backup, restore_backup
from mtl_core.store import create_job
from mtl_core.store.db import open_store
from mtl_core.workspace import LOCK_FILE, lock_file, workspace_exclusive
from tests.helpers import ROOT

# What a Streamlit server process does on its first page: open the store through the app's cached service.
APP = ("from app.shared.store_service import get_sessions; get_sessions(); print('ready', flush=True); "
       "import sys; sys.stdin.read()")
BUSY = r"in use by the app or a worker \(pid ({pid}|unknown)\); stop them first"


@pytest.fixture
def restored(workspace, tmp_path, monkeypatch):
    """(backup zip, a workspace restored from it) with MTL_STUDIO_HOME pointing at that workspace."""
    monkeypatch.delenv("MTL_STUDIO_DATABASE_URL", raising=False)
    archive = create_backup(tmp_path / "b.zip", workspace).path
    target = tmp_path / "target"
    restore_backup(archive, target)
    monkeypatch.setenv("MTL_STUDIO_HOME", str(target))
    return archive, target


def test_restore_refuses_while_an_app_process_holds_the_workspace(restored, tmp_path):
    archive, target = restored
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    app = subprocess.Popen([sys.executable, "-c", APP], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True, cwd=ROOT, env=env)
    try:
        assert app.stdout.readline().strip() == "ready"
        with pytest.raises(BackupError, match=BUSY.format(pid=app.pid)):
            restore_backup(archive, target, force=True)
        assert not list(tmp_path.glob("target.before-restore-*"))  # nothing was moved aside
    finally:
        app.stdin.close()
        app.wait(timeout=60)
    report = restore_backup(archive, target, force=True)
    assert report.moved_aside is not None and (target / "models" / "registry.json").exists()


def test_restore_refuses_while_a_worker_runs_a_job(restored):
    archive, target = restored
    outcome = {}

    @worker.handler("test_restore_during_job")
    def restore_now(ctx):
        try:
            restore_backup(archive, target, force=True)
        except BackupError as exc:
            outcome["refused"] = str(exc)
        return {}

    _, sessions = open_store(target)
    with sessions() as s:
        job_id = create_job(s, "test_restore_during_job", params={}).id
    assert worker.run_job(job_id, target) == "done"
    assert "in use by the app or a worker" in outcome["refused"]
    restore_backup(archive, target, force=True)  # the job has finished: the lock is free again


def test_a_waiting_holder_follows_the_workspace_to_its_new_place(tmp_path):
    """An app starting during a restore waits, then locks the restored workspace, not the one moved aside."""
    home = tmp_path / "ws"
    home.mkdir()
    got: list[int] = []
    with workspace_exclusive(home):
        waiter = threading.Thread(target=lambda: got.append(lock_file(home / LOCK_FILE, exclusive=False, wait_s=30)))
        waiter.start()
        time.sleep(0.3)
        assert got == []  # still waiting for the restore
        os.rename(home, tmp_path / "aside")
        home.mkdir()
    waiter.join(timeout=30)
    try:
        assert os.fstat(got[0]).st_ino == os.stat(home / LOCK_FILE).st_ino
    finally:
        os.close(got[0])
