"""Team-mode accounts: argon2id hashes, validation, roles and permissions, and the `users` CLI."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher

from mtl_core.cli.main import main
from mtl_core.ops import auth, signin
from mtl_core.store.db import open_store
from mtl_core.store.models import ROLES, SignInThrottle, User
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
    for action in ("score_pool", "send_broken"):  # worker time and everyone's queue: not for annotators
        assert table[action] == ["reviewer", "admin"]
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


# ---------------------------------------------------------------- sign-in throttle (no sleeps: time is passed in)

T0 = datetime(2026, 1, 1, 12, 0, 0)
WRONG = "not the password"


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _try(session, name: str, password: str, seconds: float, client: str | None = "session:a"):
    return signin.sign_in(session, name, password, client, now=_at(seconds))


def _fail_until_locked(session, name: str, start: float, client: str | None = "session:a") -> signin.SignInResult:
    result = _try(session, name, WRONG, start, client)
    while result.retry_after_s == 0:
        start += 1
        result = _try(session, name, WRONG, start, client)
    return result


def test_account_locks_after_five_failures_even_for_the_right_password(session):
    auth.create_user(session, "alice", PASSWORD)
    results = [_try(session, "alice", WRONG, i, client=f"c{i}") for i in range(5)]  # a new client each time
    assert [r.retry_after_s for r in results] == [0, 0, 0, 0, 30]
    assert results[0].message == "Wrong username or password."
    assert results[4].message == "Wrong username or password. Too many failed sign-ins: try again in 30 s."
    refused = _try(session, "alice", PASSWORD, 10, client="fresh")
    assert refused.user is None and refused.retry_after_s == 24 and not refused.wrong  # locked at 4 s until 34 s
    assert refused.message == "Too many failed sign-ins: try again in 24 s."  # says nothing of the password
    assert _try(session, "alice", WRONG, 20, client="fresh").retry_after_s == 14  # refused tries do not count
    assert _try(session, "alice", PASSWORD, 34.5, client="fresh").user.username == "alice"


def test_backoff_doubles_up_to_the_cap_and_success_resets_it(session):
    auth.create_user(session, "alice", PASSWORD)
    policy = signin.DEFAULT_POLICY
    now, waits = 0.0, []
    for _ in range(5):
        waits.append(_fail_until_locked(session, "alice", now, client=None).retry_after_s)
        now += 1000 + waits[-1]  # after the wait, less than forget_s later
    assert waits == [30, 60, 120, 240, 480]
    assert [policy.wait_s(n, 5) for n in (4, 5, 11, 12, 99)] == [0, 30, 1920, 3600, 3600]
    assert _try(session, "alice", PASSWORD, now, client=None).user is not None
    assert [_try(session, "alice", WRONG, now + i, client=None).retry_after_s for i in range(5)] == [0, 0, 0, 0, 30]


def test_unknown_names_are_throttled_exactly_like_accounts(session):
    auth.create_user(session, "alice", PASSWORD)
    answers = {}
    for name in ("alice", "nobody"):
        runs = [_try(session, name, WRONG, i, client=name) for i in range(6)]
        runs.append(_try(session, name, PASSWORD, 10, client=name))  # alice's own password, still refused
        answers[name] = [(r.user, r.retry_after_s, r.message) for r in runs]
    assert answers["alice"] == answers["nobody"]
    assert answers["nobody"][4] == (None, 30, "Wrong username or password. Too many failed sign-ins: "
                                              "try again in 30 s.")
    assert answers["nobody"][6] == (None, 24, "Too many failed sign-ins: try again in 24 s.")


def test_one_client_is_limited_across_accounts(session):
    auth.create_user(session, "alice", PASSWORD)
    spray = [_try(session, f"user{i}", WRONG, i, client="ip:203.0.113.9") for i in range(10)]
    assert [r.retry_after_s for r in spray] == [0] * 9 + [30]  # one try per name: only the client count grows
    assert _try(session, "alice", PASSWORD, 12, client="ip:203.0.113.9").retry_after_s == 27
    assert _try(session, "alice", PASSWORD, 12, client="ip:198.51.100.1").user is not None  # others unaffected
    assert _try(session, "alice", PASSWORD, 41, client="ip:203.0.113.9").user is not None
    assert _try(session, "user1", WRONG, 42, client="ip:203.0.113.9").retry_after_s == 60  # success kept the count


def test_counts_are_shared_through_the_database_and_forgotten_later(tmp_path):
    _, first = open_store(tmp_path)
    with first() as s:
        auth.create_user(s, "alice", PASSWORD)
        _fail_until_locked(s, "alice", 0, client=None)
    _, second = open_store(tmp_path)  # another app process, or the same one after a restart
    with second() as s:
        assert _try(s, "alice", PASSWORD, 10, client=None).retry_after_s > 0
        forget = signin.DEFAULT_POLICY.forget_s
        assert _try(s, "alice", WRONG, forget + 100, client=None).retry_after_s == 0  # a fresh count
        signin.prune(s, _at(2 * forget + 200))
        assert s.query(SignInThrottle).count() == 0


def test_policy_is_validated():
    with pytest.raises(ValueError, match="account_free"):
        signin.ThrottlePolicy(account_free=0)
    with pytest.raises(ValueError, match="base_s"):
        signin.ThrottlePolicy(base_s=10, max_s=5)
    with pytest.raises(ValueError, match="forget_s"):
        signin.ThrottlePolicy(forget_s=60)


def test_cli_unlock(tmp_path, monkeypatch, capsys):
    _, sessions = open_store(tmp_path)
    with sessions() as s:
        auth.create_user(s, "alice", PASSWORD)
        _fail_until_locked(s, "alice", 0, client="ip:203.0.113.9")
    assert _cli(tmp_path, monkeypatch, "unlock", "alice") == 0
    assert "unlocked alice" in capsys.readouterr().out
    with sessions() as s:
        assert signin.sign_in(s, "alice", PASSWORD, None).user is not None  # now, not after the wait
    assert _cli(tmp_path, monkeypatch, "unlock", "alice") == 0
    assert "had no failed sign-ins" in capsys.readouterr().out
    assert _cli(tmp_path, monkeypatch, "unlock", "--all") == 0
    assert "cleared 1 failed sign-in record(s)" in capsys.readouterr().out  # the client's count
    assert _cli(tmp_path, monkeypatch, "unlock") == 2
    assert "give a username or --all" in capsys.readouterr().err
