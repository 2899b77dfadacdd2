"""Model registry: registering is atomic and a version id is never given out twice, even after a crash
between moving the checkpoint in and writing registry.json."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from mtl_core.cli.main import main
from mtl_core.model.registry import Registry
from mtl_core.model.testing import make_tiny_checkpoint
from tests.helpers.workspace import register_copy


def weights_hash(checkpoint: Path) -> str:
    return hashlib.sha256((checkpoint / "heads.safetensors").read_bytes()).hexdigest()


def staged_checkpoint(reg: Registry, seed: int) -> tuple[Path, str]:
    path = make_tiny_checkpoint(reg.staging_dir(), seed=seed)
    return path, weights_hash(path)


def die(self, data) -> None:
    raise KeyboardInterrupt  # stands in for kill -9: nothing after the move runs


def test_a_crash_after_the_move_leaves_an_orphan_that_is_never_reused(tmp_path, tiny_checkpoint, monkeypatch,
                                                                       capsys):
    home = tmp_path / "ws"
    register_copy(home, tiny_checkpoint)
    reg = Registry(home)
    killed, killed_hash = staged_checkpoint(reg, seed=1)
    with monkeypatch.context() as m:  # the process dies between the move and the registry write
        m.setattr(Registry, "_write", die)
        with pytest.raises(KeyboardInterrupt):
            reg.register(killed, note="killed round")
    assert reg.orphans() == ["v0002"] and [v.id for v in reg.versions()] == ["v0001"]

    staging, own_hash = staged_checkpoint(reg, seed=2)
    info = reg.register(staging, note="next round", activate=True)
    assert info.id == "v0003" and reg.active == "v0003"
    assert weights_hash(reg.path_of("v0003")) == own_hash != killed_hash  # its own weights, not the orphan's
    assert weights_hash(reg.path_of("v0002")) == killed_hash  # the orphan is left as it was
    assert [v.id for v in reg.versions()] == ["v0001", "v0003"] and reg.orphans() == ["v0002"]
    assert main(["--home", str(home), "versions"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line[2:].split()[0] for line in listed[:-1]] == ["v0001", "v0003"] and "orphan dirs" in listed[-1]


def test_an_id_is_one_past_every_registered_version_and_dir(tmp_path):
    reg = Registry(tmp_path / "ws")
    assert reg.next_id() == "v0001"
    (reg.models_dir / "v0007").mkdir()
    (reg.models_dir / "notes").mkdir()  # not a version dir: ignored
    assert reg.next_id() == "v0008" and reg.orphans() == ["v0007"]


def test_concurrent_registrations_get_distinct_ids_and_all_are_listed(tmp_path, tiny_checkpoint):
    home = tmp_path / "ws"
    Registry(home)
    errors: list[BaseException] = []

    def register(n: int) -> None:
        try:
            register_copy(home, tiny_checkpoint, note=f"thread {n}", activate=False)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reg = Registry(home)
    assert errors == [] and sorted(v.id for v in reg.versions()) == ["v0001", "v0002", "v0003", "v0004"]
    assert reg.orphans() == [] and not list(reg.models_dir.glob(".incoming-*"))
