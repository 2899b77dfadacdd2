"""Team mode: accounts with argon2id password hashes, three roles and what each role may do.

Plain functions taking a SQLAlchemy `Session` first (no streamlit here). Write functions commit.
Team mode is off unless `MTL_STUDIO_TEAM_MODE=1`: a single local user then needs no account.
"""

from __future__ import annotations

import os
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mtl_core.store.db import retry_locked
from mtl_core.store.limits import max_length
from mtl_core.store.models import ROLES, AnnotationEvent, User

ENV_TEAM_MODE = "MTL_STUDIO_TEAM_MODE"
# A user's name must fit the account column and the annotation log's annotator column.
MAX_USERNAME = min(max_length(User.username), max_length(AnnotationEvent.annotator))
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # hashing a megabyte-long "password" is a cheap way to burn the server's CPU

# action -> roles allowed to do it
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "annotate": ("annotator", "reviewer", "admin"),
    "adjudicate": ("reviewer", "admin"),
    "import_annotations": ("reviewer", "admin"),
    "score_pool": ("reviewer", "admin"),  # start or cancel a scoring job: up to 100,000 texts of worker time
    "send_broken": ("reviewer", "admin"),  # queue a round's broken examples: reshapes everyone's queue
    "train": ("admin",),
    "promote": ("admin",),
    "discard": ("admin",),
    "rollback": ("admin",),
    "manage_users": ("admin",),
}
ACTIONS = tuple(PERMISSIONS)


class AuthError(ValueError):
    """A refused account operation; `field` names the offending input."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def team_mode_enabled() -> bool:
    """True when `MTL_STUDIO_TEAM_MODE` is 1/true/yes/on: sign-in and roles are then enforced."""
    return os.environ.get(ENV_TEAM_MODE, "").strip().lower() in ("1", "true", "yes", "on")


def can(role: str | None, action: str) -> bool:
    """Whether `role` may do `action`; an unknown action is a programming error, not a silent 'no'."""
    if action not in PERMISSIONS:
        raise KeyError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    return role in PERMISSIONS[action]


def roles_for(action: str) -> tuple[str, ...]:
    if action not in PERMISSIONS:
        raise KeyError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    return PERMISSIONS[action]


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id with the library's current recommended parameters


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Verified against for unknown users, so they cost the same time as a wrong password."""
    return _hasher().hash("not a real password, only used for timing")


def normalize_username(username: str) -> str:
    """Trimmed; refused when empty, too long or holding control characters."""
    name = str(username or "").strip()
    if not name:
        raise AuthError("username", "must not be empty")
    if len(name) > MAX_USERNAME:
        raise AuthError("username", f"at most {MAX_USERNAME} characters (got {len(name)})")
    if any(not ch.isprintable() for ch in name):
        raise AuthError("username", "must not contain control characters")
    return name


def check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise AuthError("password", f"at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AuthError("password", f"at most {MAX_PASSWORD} characters")
    return password


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AuthError("role", f"must be one of {', '.join(ROLES)} (got {role!r})")
    return role


def get_user(session: Session, username: str) -> User | None:
    name = str(username or "").strip()
    if not name:
        return None
    return session.scalars(select(User).where(User.username == name)).one_or_none()


def _require(session: Session, username: str) -> User:
    user = get_user(session, username)
    if user is None:
        raise AuthError("username", f"no user named {str(username).strip()!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def count_users(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


def _admins(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User).where(User.role == "admin")) or 0)


@retry_locked
def _add(session: Session, user: User) -> User:
    session.add(user)
    session.flush()
    return user


def create_user(session: Session, username: str, password: str, role: str = "annotator") -> User:
    """A new account; the password is stored only as an argon2id hash."""
    name = normalize_username(username)
    check_password(password)
    check_role(role)
    if get_user(session, name) is not None:
        raise AuthError("username", f"{name!r} is already taken")
    try:
        return _add(session, User(username=name, password_hash=_hasher().hash(password), role=role))
    except IntegrityError as exc:  # created by someone else in the meantime
        session.rollback()
        raise AuthError("username", f"{name!r} is already taken") from exc


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The user when the password matches, else None (same answer and similar time for unknown users).

    A hash made with older argon2 parameters is replaced on a successful sign-in. Not throttled: sign-in
    forms go through `mtl_core.ops.signin.sign_in`, which adds the per-account and per-client backoff.
    """
    try:
        name = normalize_username(username)
    except AuthError:
        name = ""
    user = get_user(session, name) if name else None
    if not isinstance(password, str) or len(password) > MAX_PASSWORD:
        password = ""
    try:
        _hasher().verify(user.password_hash if user is not None else _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _hasher().check_needs_rehash(user.password_hash):
        _store_hash(session, user, password)
    return user


@retry_locked
def _update(session: Session, username: str, **values: str) -> User:
    """Set columns of one user and commit; re-read on each retry (a rollback discards pending changes)."""
    user = _require(session, username)
    for column, value in values.items():
        setattr(user, column, value)
    return user


def _store_hash(session: Session, user: User, password: str) -> None:
    _update(session, user.username, password_hash=_hasher().hash(password))


def set_password(session: Session, username: str, password: str) -> User:
    user = _require(session, username)
    check_password(password)
    return _update(session, user.username, password_hash=_hasher().hash(password))


def _refuse_last_admin(session: Session, user: User, field: str) -> None:
    if user.role == "admin" and _admins(session) <= 1:
        raise AuthError(field, f"{user.username!r} is the last admin; make someone else admin first")


def set_role(session: Session, username: str, role: str) -> User:
    """Change a role; demoting the last admin is refused (nobody could train or manage users after)."""
    check_role(role)
    user = _require(session, username)
    if role != "admin":
        _refuse_last_admin(session, user, "role")
    return _update(session, user.username, role=role)


@retry_locked
def _delete(session: Session, username: str) -> None:
    session.delete(_require(session, username))


def delete_user(session: Session, username: str) -> None:
    """Remove an account (their annotations stay, under their name); the last admin cannot be removed."""
    user = _require(session, username)
    _refuse_last_admin(session, user, "username")
    _delete(session, user.username)
