"""`python -m mtl_core users add | list | set-role | passwd | remove | unlock`: team-mode accounts.

Passwords come from a prompt (typed twice) or, for scripts, one line of stdin (`--password-stdin`).
Hashes are never printed.
"""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING

from mtl_core.store.models import ROLES

if TYPE_CHECKING:  # annotations only: no import cost or cycle at run time
    from sqlalchemy.orm import Session

ROLE_HELP = f"one of {', '.join(ROLES)}"


def add_parser(sub) -> None:
    """Register the `users` subcommand on the main parser's subparsers."""
    users = sub.add_parser("users", help="team-mode accounts (MTL_STUDIO_TEAM_MODE=1): add, list, set roles")
    cmds = users.add_subparsers(dest="users_command", required=True)
    add = cmds.add_parser("add", help="create an account")
    add.add_argument("username")
    add.add_argument("--role", default="annotator", help=f"{ROLE_HELP} (default annotator)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    cmds.add_parser("list", help="usernames and roles")
    role = cmds.add_parser("set-role", help="change an account's role")
    role.add_argument("username")
    role.add_argument("role", help=ROLE_HELP)
    pw = cmds.add_parser("passwd", help="set a new password")
    pw.add_argument("username")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    rm = cmds.add_parser("remove", help="delete an account (its annotations keep its name)")
    rm.add_argument("username")
    unlock = cmds.add_parser("unlock", help="clear failed sign-ins: lift a name's wait (or every wait: --all)")
    unlock.add_argument("username", nargs="?")
    unlock.add_argument("--all", action="store_true", help="every account and client, not one name")


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise ValueError("password: the two entries differ")
    return first


def cmd_users(args) -> int:
    from mtl_core.ops import auth
    from mtl_core.store.db import open_store

    engine, sessions = open_store(args.home)
    try:
        with sessions() as s:
            _run(auth, s, args)
    finally:
        engine.dispose()
    return 0


def _run(auth, s: Session, args) -> None:
    command = args.users_command
    if command == "list":
        users = auth.list_users(s)
        if not users:
            print("no users yet: python -m mtl_core users add NAME --role admin")
        for user in users:
            print(f"{user.username:<24} {user.role:<10} created {user.created_at:%Y-%m-%d %H:%M} UTC")
        return
    if command == "add":
        # checked before the prompt: a typo should not cost typing a password twice
        auth.check_role(args.role)
        if auth.get_user(s, auth.normalize_username(args.username)) is not None:
            raise ValueError(f"username: {args.username.strip()!r} is already taken")
        user = auth.create_user(s, args.username, read_password(args.password_stdin), args.role)
        print(f"created {user.username} ({user.role})")
        if not auth.team_mode_enabled():
            print(f"note: team mode is off; set {auth.ENV_TEAM_MODE}=1 to require sign-in", file=sys.stderr)
    elif command == "set-role":
        user = auth.set_role(s, args.username, args.role)
        print(f"{user.username} is now {user.role}")
    elif command == "passwd":
        if auth.get_user(s, args.username) is None:
            raise ValueError(f"username: no user named {args.username.strip()!r}")
        user = auth.set_password(s, args.username, read_password(args.password_stdin))
        print(f"password of {user.username} changed")
    elif command == "remove":
        auth.delete_user(s, args.username)
        print(f"removed {args.username.strip()}")
    elif command == "unlock":
        _unlock(s, args)


def _unlock(s: Session, args) -> None:
    from mtl_core.ops import signin

    if args.all == bool(args.username):
        raise ValueError("unlock: give a username or --all (not both)")
    if args.all:
        print(f"cleared {signin.unlock_all(s)} failed sign-in record(s)")
    elif signin.unlock_account(s, args.username):
        print(f"unlocked {args.username.strip()}: failed sign-ins cleared")
    else:
        print(f"{args.username.strip()} had no failed sign-ins")
