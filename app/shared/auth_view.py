"""Team mode in the app: sign-in form, the signed-in user in the sidebar, and role checks for the pages.

Off unless `MTL_STUDIO_TEAM_MODE=1` (see mtl_core.ops.auth); while off, every check here says yes and nothing is shown.
The signed-in username lives in `st.session_state[USER]`; the role is read from the database on every
check, so a role change or a removed account takes effect on the next click.
"""

from __future__ import annotations

import os

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from app.components.text import md_literal
from mtl_core.ops import auth, signin
from mtl_core.ops.signin import TOO_MANY, WRONG_PASSWORD

USER = "auth_user"  # the signed-in username (not a widget key)
FAILED = "auth_failed"  # (password wrong?, seconds to wait) set by the sign-in callback, shown once
ENV_CLIENT_HEADER = "MTL_STUDIO_CLIENT_IP_HEADER"  # e.g. X-Real-IP, set by your reverse proxy
ACTION_TEXT = {
    "annotate": "label",
    "adjudicate": "record final labels",
    "import_annotations": "import annotations",
    "score_pool": "score pools or cancel scoring",
    "send_broken": "send a round's broken examples to review",
    "train": "start or cancel fine-tuning rounds",
    "promote": "promote models",
    "discard": "discard models",
    "rollback": "activate or roll back models",
    "manage_users": "manage users",
}
FIRST_ADMIN = "python -m mtl_core users add NAME --role admin"


def _sessions():
    from app.shared.store_service import (
        get_sessions,  # lazily: it loads torch, which single-user mode never needs here
    )

    return get_sessions()


def team_mode() -> bool:
    return auth.team_mode_enabled()


def current_user() -> tuple[str, str] | None:
    """(username, role) of the signed-in user, or None (also when the account was removed meanwhile)."""
    name = st.session_state.get(USER)
    if not name:
        return None
    with _sessions()() as s:
        user = auth.get_user(s, name)
        found = (user.username, user.role) if user is not None else None
    if found is None:
        st.session_state.pop(USER, None)
    return found


def allowed(action: str) -> bool:
    """May the person at the keyboard do `action`? Always yes in single-user mode."""
    if not team_mode():
        auth.roles_for(action)  # an unknown action fails loudly in both modes
        return True
    user = current_user()
    return user is not None and auth.can(user[1], action)


def acting_as(annotator: str | None, action: str = "annotate") -> bool:
    """For callbacks: the name a widget was drawn for is still the signed-in user, with the right role."""
    if not team_mode():
        return True
    user = current_user()
    return user is not None and user[0] == annotator and auth.can(user[1], action)


def denied_message(action: str) -> str:
    roles = " or ".join(f"{r}s" for r in auth.roles_for(action))
    user = current_user()
    who = f" You are signed in as {user[0]} ({user[1]})." if user else " You are not signed in."
    return f"Only {roles} can {ACTION_TEXT.get(action, action)}.{who}"


def denied_note(action: str) -> None:
    """The info line shown where a button is hidden for this role (it names the user: shown literally)."""
    st.info(md_literal(denied_message(action)), icon=":material/lock:")


def team_annotator() -> str | None:
    """Team mode's annotator: the signed-in user when they may annotate (no name prompt)."""
    user = current_user()
    if user is None or not auth.can(user[1], "annotate"):
        st.info("Sign in to label.", icon=":material/lock:")
        return None
    return user[0]


# ---------------------------------------------------------------- sign-in, sidebar, sign-out


def gate() -> bool:
    """True when the pages may run: single-user mode, or a signed-in user (the entry point's check)."""
    return not team_mode() or current_user() is not None


def page_guard() -> None:
    """First call of every page: the account in the sidebar, or the sign-in form and nothing else.

    The pages check for themselves because Streamlit can run a script of `app_pages/` directly, without
    the entry point (e.g. the very first request after a server start asking for /review).
    """
    if not team_mode():
        return
    user = current_user()
    if user is None:
        render_login()
        st.stop()
    render_account(*user)


def render_account(name: str, role: str) -> None:
    st.sidebar.text(f"Signed in as {name} ({role})")  # plain text: names are user input
    st.sidebar.button("Log out", key="auth_logout", icon=":material/logout:", on_click=log_out)


def log_out() -> None:
    """Forget everything of this browser session (labels in progress, caches, the user)."""
    for key in list(st.session_state):
        del st.session_state[key]


def render_login() -> None:
    """The only page while nobody is signed in."""
    st.title("MTL Studio")
    with _sessions()() as s:
        has_users = auth.count_users(s) > 0
    if not has_users:
        st.info("Team mode is on but no account exists yet. Create the first admin on the server:",
                icon=":material/person_add:")
        st.code(FIRST_ADMIN, language="bash")
        st.caption("Then reload this page and sign in.")
        return
    with st.form("auth_login_form"):
        st.subheader("Sign in")
        st.text_input("Username", key="auth_login_username", max_chars=auth.MAX_USERNAME)
        st.text_input("Password", type="password", key="auth_login_password", max_chars=auth.MAX_PASSWORD)
        st.form_submit_button("Sign in", type="primary", key="auth_login_submit", on_click=_sign_in)
    failed = st.session_state.pop(FAILED, None)
    if failed:  # signin.SignInResult.message, from our constants and a number only
        wrong, wait = failed
        st.error((WRONG_PASSWORD if wrong else "") + (" " if wrong and wait else "")
                 + (f"{TOO_MANY} {wait:d} s." if wait else ""), icon=":material/error:")


def _sign_in() -> None:
    """Form callback: runs before the script, so the pages open in this very run."""
    username = str(st.session_state.get("auth_login_username", ""))
    password = str(st.session_state.get("auth_login_password", ""))
    with _sessions()() as s:
        result = signin.sign_in(s, username, password, client_id())
        name = result.user.username if result.user is not None else None
    if name is None:
        st.session_state[FAILED] = (result.wrong, result.retry_after_s)
        return
    log_out()  # nothing of a previous session carries over to the new user
    st.session_state[USER] = name


def client_id() -> str | None:
    """Who is signing in, for the per-client limit: the address your reverse proxy puts in the header named
    by MTL_STUDIO_CLIENT_IP_HEADER (its last value: the one the proxy added), else the remote address,
    else this browser session (behind a local proxy every remote address is the proxy's)."""
    header = os.environ.get(ENV_CLIENT_HEADER, "").strip()
    forwarded = st.context.headers.get(header) if header else None
    if forwarded and forwarded.split(",")[-1].strip():
        return "ip:" + forwarded.split(",")[-1].strip()
    if st.context.ip_address:
        return "ip:" + st.context.ip_address
    ctx = get_script_run_ctx()
    return f"session:{ctx.session_id}" if ctx is not None else None
