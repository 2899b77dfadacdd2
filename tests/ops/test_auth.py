"""Team-mode accounts: argon2id hashes, validation, roles and permissions, and the `users` CLI."""

from __future__ import annotations

import io

import pytest
from argon2 import PasswordHasher

from mtl_core.cli.main import main
from mtl_core.ops import auth
from mtl_core.store.db import open_store
from mtl_core.store.models import ROLES, User
from tests.helpers.store import fresh_session

PASSWORD = "correct horse battery"


@pytest.fixture
def session(tmp_path):
    yield from fresh_session(tmp_path)


def test_password_is_stored_as_argon2id_hash(session):
    user = auth.create_user(session, "  alice ", PASSWORD, "admin")
    assert user.username == "alice" and user.role == "admin"
    stored = session.get(User, user.id).password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_authenticate_right_and_wrong(session):
    auth.create_user(session, "alice", PASSWORD)
    assert auth.authenticate(session, "alice", PASSWORD).username == "alice"
    assert auth.authenticate(session, " alice ", PASSWORD).username == "alice"
    assert auth.authenticate(session, "alice", PASSWORD + "x") is None
    assert auth.authenticate(session, "alice", "") is None
    assert auth.authenticate(session, "nobody", PASSWORD) is None
    assert auth.authenticate(session, "", PASSWORD) is None


def test_outdated_hash_is_replaced_on_sign_in(session):
    user = auth.create_user(session, "alice", PASSWORD)
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    auth._update(session, "alice", password_hash=weak)
    assert auth.authenticate(session, "alice", PASSWORD) is not None
    assert session.get(User, user.id).password_hash != weak


def test_duplicate_username_refused(session):
    auth.create_user(session, "alice", PASSWORD)
    with pytest.raises(auth.AuthError) as err:
        auth.create_user(session, "alice ", PASSWORD + "2", "reviewer")
    assert err.value.field == "username" and "taken" in str(err.value)
    assert len(auth.list_users(session)) == 1


@pytest.mark.parametrize("username, password, role, field", [
    ("", PASSWORD, "annotator", "username"),
    ("   ", PASSWORD, "annotator", "username"),
    ("x" * 129, PASSWORD, "annotator", "username"),
    ("tab\there", PASSWORD, "annotator", "username"),
    ("bob", "short", "annotator", "password"),
    ("bob", "x" * 2000, "annotator", "password"),
    ("bob", PASSWORD, "boss", "role"),
])
def test_bad_input_names_the_field(session, username, password, role, field):
    with pytest.raises(auth.AuthError) as err:
        auth.create_user(session, username, password, role)
    assert err.value.field == field and str(err.value).startswith(f"{field}:")
    assert auth.list_users(session) == []


def test_set_role_password_delete_and_last_admin(session):
    auth.create_user(session, "root", PASSWORD, "admin")
    auth.create_user(session, "bob", PASSWORD)
    assert auth.set_role(session, "bob", "reviewer").role == "reviewer"
    with pytest.raises(auth.AuthError, match="role"):
        auth.set_role(session, "bob", "king")
    with pytest.raises(auth.AuthError, match="last admin"):
        auth.set_role(session, "root", "annotator")
    with pytest.raises(auth.AuthError, match="last admin"):
        auth.delete_user(session, "root")
    auth.set_password(session, "bob", "another password")
    assert auth.authenticate(session, "bob", PASSWORD) is None
    assert auth.authenticate(session, "bob", "another password") is not None
    with pytest.raises(auth.AuthError, match="password"):
        auth.set_password(session, "bob", "short")
    auth.delete_user(session, "bob")
    assert [u.username for u in auth.list_users(session)] == ["root"]
    with pytest.raises(auth.AuthError, match="no user named"):
        auth.delete_user(session, "bob")


def test_permission_table():
    table = {action: [r for r in ROLES if auth.can(r, action)] for action in auth.ACTIONS}
    assert table["annotate"] == ["annotator", "reviewer", "admin"]
    assert table["adjudicate"] == ["reviewer", "admin"]
    for action in ("train", "promote", "discard", "rollback", "manage_users"):
        assert table[action] == ["admin"]
    assert not auth.can(None, "annotate") and not auth.can("root", "train")
    with pytest.raises(KeyError):
        auth.can("admin", "launch_rockets")


def test_team_mode_is_off_by_default(monkeypatch):
    monkeypatch.delenv(auth.ENV_TEAM_MODE, raising=False)
    assert not auth.team_mode_enabled()
    monkeypatch.setenv(auth.ENV_TEAM_MODE, "1")
    assert auth.team_mode_enabled()
    monkeypatch.setenv(auth.ENV_TEAM_MODE, "0")
    assert not auth.team_mode_enabled()


# ---------------------------------------------------------------- CLI


def _cli(home, monkeypatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["--home", str(home), "users", *argv])


def test_cli_add_list_set_role_passwd_remove(tmp_path, monkeypatch, capsys):
    assert _cli(tmp_path, monkeypatch, "add", "root", "--role", "admin", "--password-stdin",
                stdin=PASSWORD + "\n") == 0
    assert "created root (admin)" in capsys.readouterr().out
    assert _cli(tmp_path, monkeypatch, "add", "bob", "--password-stdin", stdin=PASSWORD + "\n") == 0
    assert _cli(tmp_path, monkeypatch, "set-role", "bob", "reviewer") == 0
    capsys.readouterr()
    assert _cli(tmp_path, monkeypatch, "list") == 0
    out = capsys.readouterr().out
    assert "root" in out and "admin" in out and "reviewer" in out and "$argon2" not in out
    assert _cli(tmp_path, monkeypatch, "passwd", "bob", "--password-stdin", stdin="new password!\n") == 0
    _, sessions = open_store(tmp_path)
    with sessions() as s:
        assert auth.authenticate(s, "bob", "new password!") is not None
    assert _cli(tmp_path, monkeypatch, "remove", "bob") == 0
    with sessions() as s:
        assert [u.username for u in auth.list_users(s)] == ["root"]


def test_cli_prompts_twice_without_stdin_flag(tmp_path, monkeypatch, capsys):
    answers = iter([PASSWORD, PASSWORD + "typo"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert _cli(tmp_path, monkeypatch, "add", "root", "--role", "admin") == 2
    assert "differ" in capsys.readouterr().err
    answers = iter([PASSWORD, PASSWORD])
    assert _cli(tmp_path, monkeypatch, "add", "root", "--role", "admin") == 0


@pytest.mark.parametrize("argv, stdin, message", [
    (["add", "bob", "--role", "boss", "--password-stdin"], PASSWORD, "role"),
    (["add", "bob", "--password-stdin"], "short", "password"),
    (["set-role", "ghost", "admin"], "", "no user named"),
    (["remove", "ghost"], "", "no user named"),
])
def test_cli_errors_are_clear(tmp_path, monkeypatch, capsys, argv, stdin, message):
    assert _cli(tmp_path, monkeypatch, *argv, stdin=stdin) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
