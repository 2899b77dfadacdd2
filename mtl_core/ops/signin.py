"""Throttled sign-in for team mode (OWASP ASVS 2.2.1): backoff per account name and per client.

After `account_free` consecutive failures for one name, that name is refused until a time that doubles
with each further failure (`base_s`, 2x, 4x ... up to `max_s`), even with the right password; a success
clears the name's count. The same holds per client (a remote address or browser session) across every
name it tries, after `client_free` failures; a success does not clear it (else signing in to one's own
account between guesses would reset it), but counts older than `forget_s` start again from zero.
Names are counted whether or not an account exists, so the answers never tell which accounts exist.
The counts live in the database: they survive restarts and are shared by every app process.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.orm import Session

from mtl_core.ops import auth
from mtl_core.store.db import dialect_insert, retry_locked
from mtl_core.store.models import SignInThrottle, User, utcnow


@dataclass(frozen=True)
class ThrottlePolicy:
    account_free: int = 5  # failures of one name before the first wait
    client_free: int = 10  # failures of one client (over all names) before its first wait
    base_s: float = 30.0  # the first wait; each further failure doubles it
    max_s: float = 3600.0  # the longest wait
    forget_s: float = 86400.0  # a count untouched this long starts again from zero

    def __post_init__(self) -> None:
        if self.account_free < 1 or self.client_free < 1:
            raise ValueError("account_free and client_free: at least 1")
        if not 0 < self.base_s <= self.max_s:
            raise ValueError("base_s and max_s: 0 < base_s <= max_s")
        if self.forget_s < self.max_s:
            raise ValueError("forget_s: at least max_s (a count must outlive its wait)")

    def wait_s(self, failures: int, free: int) -> float:
        """Seconds refused after the `failures`-th consecutive failure; 0 while under `free`."""
        if failures < free:
            return 0.0
        return min(self.max_s, self.base_s * 2.0 ** min(failures - free, 32))


DEFAULT_POLICY = ThrottlePolicy()
WRONG_PASSWORD = "Wrong username or password."  # the same words whether or not the account exists
TOO_MANY = "Too many failed sign-ins: try again in"  # + " 30 s."


@dataclass(frozen=True)
class SignInResult:
    user: User | None  # the signed-in account; None when refused
    retry_after_s: int = 0  # > 0: the next try is refused for that long, whatever the password
    wrong: bool = False  # the password was checked and did not match (or no such account)

    @property
    def message(self) -> str:
        """What the form says on a refusal: the same words whether or not the account exists."""
        parts = [WRONG_PASSWORD] if self.wrong else []
        if self.retry_after_s > 0:
            parts.append(f"{TOO_MANY} {self.retry_after_s} s.")
        return " ".join(parts)


def _key(scope: str, name: str) -> str:
    return hashlib.sha256(f"{scope}\0{name}".encode()).hexdigest()


def account_key(username: str) -> str:
    return _key("account", str(username or "").strip())


def client_key(client: str) -> str:
    return _key("client", str(client or ""))


def retry_after(session: Session, keys: list[str], now: datetime) -> int:
    """Whole seconds until every one of `keys` may try again (0: now)."""
    until = session.scalars(select(SignInThrottle.locked_until).where(
        SignInThrottle.key.in_(keys), SignInThrottle.locked_until > now)).all()
    return max((math.ceil((u - now).total_seconds()) for u in until), default=0)


@retry_locked
def _record_failure(session: Session, key: str, scope: str, free: int, now: datetime,
                    policy: ThrottlePolicy) -> None:
    """One more failure for `key`, counted in one statement so concurrent processes never lose one."""
    session.execute(dialect_insert(session, SignInThrottle).values(
        key=key, scope=scope, failures=0, last_failure_at=now).on_conflict_do_nothing(index_elements=["key"]))
    stale = SignInThrottle.last_failure_at < now - timedelta(seconds=policy.forget_s)
    session.execute(update(SignInThrottle).where(SignInThrottle.key == key).values(
        failures=case((stale, 1), else_=SignInThrottle.failures + 1), last_failure_at=now))
    row = session.get(SignInThrottle, key, populate_existing=True)
    wait = policy.wait_s(row.failures, free)
    until = now + timedelta(seconds=wait)
    if wait and (row.locked_until is None or row.locked_until < until):  # never shorten a longer wait
        row.locked_until = until


@retry_locked
def _forget(session: Session, keys: list[str]) -> int:
    return session.execute(delete(SignInThrottle).where(SignInThrottle.key.in_(keys))).rowcount or 0


@retry_locked
def prune(session: Session, now: datetime, policy: ThrottlePolicy = DEFAULT_POLICY) -> int:
    """Drop counts nobody touched for `forget_s` whose wait is over (junk names typed at the form)."""
    old = now - timedelta(seconds=policy.forget_s)
    return session.execute(delete(SignInThrottle).where(
        SignInThrottle.last_failure_at < old,
        or_(SignInThrottle.locked_until.is_(None), SignInThrottle.locked_until < now))).rowcount or 0


def sign_in(session: Session, username: str, password: str, client: str | None, *,
            now: datetime | None = None, policy: ThrottlePolicy = DEFAULT_POLICY) -> SignInResult:
    """`auth.authenticate` behind the throttle. `client` names the remote address or browser session
    (None: no per-client count); `now` is naive UTC, given by tests. A refused try does not count."""
    now = now or utcnow()
    account = account_key(username)
    keys = [account] + ([client_key(client)] if client else [])
    wait = retry_after(session, keys, now)
    if wait:  # refused before the password is even looked at: its answer cannot leak through
        return SignInResult(None, wait)
    user = auth.authenticate(session, username, password)
    if user is not None:
        _forget(session, [account])
        return SignInResult(user)
    _record_failure(session, account, "account", policy.account_free, now, policy)
    if client:
        _record_failure(session, keys[1], "client", policy.client_free, now, policy)
    prune(session, now, policy)
    return SignInResult(None, retry_after(session, keys, now), wrong=True)


def unlock_account(session: Session, username: str) -> bool:
    """Clear a name's failures and wait (`users unlock NAME`); True when there was something to clear."""
    return _forget(session, [account_key(username)]) > 0


@retry_locked
def unlock_all(session: Session) -> int:
    """Clear every account's and client's failures (`users unlock --all`); returns how many were cleared."""
    return session.execute(delete(SignInThrottle)).rowcount or 0
