"""Team mode through AppTest: sign-in gate, roles on Train/Models/Review, annotations under the signed-in user."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from app.review import pool_service
from app.train import service as train_service
from mtl_core.model.registry import Registry
from mtl_core.ops import auth, worker
from mtl_core.store import add_annotation, add_texts, create_job, history, top_queue, upsert_queue_items
from tests.helpers import ROOT
from tests.helpers.rounds import add_corrections, add_round_version, finished_round

PASSWORD = "correct horse battery"
ROLE_OF = {"root": "admin", "rita": "reviewer", "anna": "annotator"}


@pytest.fixture
def team(sessions, monkeypatch):
    monkeypatch.setenv(auth.ENV_TEAM_MODE, "1")
    with sessions() as s:
        for name, role in ROLE_OF.items():
            auth.create_user(s, name, PASSWORD, role)
    return sessions


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=90).run()


def _sign_in(at: AppTest, name: str, password: str = PASSWORD) -> AppTest:
    at.text_input(key="auth_login_username").input(name)
    at.text_input(key="auth_login_password").input(password)
    at.button(key="auth_login_submit").click().run()
    assert not at.exception
    return at


def _as(name: str, page: str) -> AppTest:
    """Signed in as `name` (through the form) and on `page`."""
    at = _sign_in(_app(), name)
    return at.switch_page(page).run()


def _infos(at: AppTest) -> str:
    """Every alert's text as the reader sees it (md_literal's backslash escapes removed)."""
    text = "\n".join(str(e.value) for kind in ("info", "error", "warning") for e in getattr(at, kind))
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)


def test_single_user_mode_has_no_sign_in(workspace, monkeypatch):
    monkeypatch.delenv(auth.ENV_TEAM_MODE, raising=False)
    at = _app()
    assert not at.exception
    assert at.text_area(key="predict_text")  # the Predict page runs straight away
    with pytest.raises(KeyError):
        at.text_input(key="auth_login_username")


def test_sign_in_required_and_wrong_password(team):
    at = _app()
    assert not at.exception
    assert at.text_input(key="auth_login_password")
    with pytest.raises(KeyError):
        at.text_area(key="predict_text")  # no page runs before sign-in
    with pytest.raises(ValueError, match="Known pages: \\['Sign in'\\]"):
        at.switch_page("app_pages/train.py")  # the sign-in form is the only page registered
    _sign_in(at, "root", "wrong password")
    assert [e.value for e in at.error] == ["Wrong username or password."]
    at.text_input(key="auth_login_username").input("nobody")
    at.button(key="auth_login_submit").click().run()
    assert [e.value for e in at.error] == ["Wrong username or password."]  # same words for unknown users
    assert "auth_user" not in at.session_state
    _sign_in(at, "root")
    assert at.session_state["auth_user"] == "root"
    assert at.text_area(key="predict_text")
    assert any(t.value == "Signed in as root (admin)" for t in at.sidebar.text)
    at.button(key="auth_logout").click().run()
    assert "auth_user" not in at.session_state and at.text_input(key="auth_login_password")


@pytest.mark.parametrize("page", ["predict", "review", "train", "models", "data"])
def test_page_script_run_directly_still_asks_to_sign_in(team, page):
    """Streamlit may run a script of app_pages/ without the entry point: each page guards itself."""
    at = AppTest.from_file(str(ROOT / "app_pages" / f"{page}.py"), default_timeout=90).run()
    assert not at.exception
    assert at.text_input(key="auth_login_password")
    assert [t.value for t in at.title] == ["MTL Studio"]  # nothing of the page itself
    assert not at.dataframe and not at.tabs


def test_no_auto_listed_pages_folder():
    """Streamlit lists a `pages/` folder beside the entry script as a sidebar menu before the script runs,
    so team mode's sign-in page would name every page (the browser test watches the live page)."""
    assert not (ROOT / "pages").exists() and (ROOT / "app_pages").is_dir()


def test_no_account_yet_says_how_to_create_the_first_admin(workspace, monkeypatch):
    monkeypatch.setenv(auth.ENV_TEAM_MODE, "1")
    at = _app()
    assert not at.exception
    assert any("users add NAME --role admin" in c.value for c in at.code)
    with pytest.raises(KeyError):
        at.text_input(key="auth_login_username")


def test_annotator_cannot_train_promote_or_activate_but_admin_can(team, workspace):
    add_corrections(workspace, 3)
    version = add_round_version(workspace)
    finished_round(workspace, version)
    anna = _as("anna", "app_pages/train.py")
    assert not anna.exception
    for key in ("round_start", "round_promote", "round_discard"):
        with pytest.raises(KeyError):
            anna.button(key=key)
    assert "Only admins can start or cancel fine-tuning rounds" in _infos(anna)
    assert "Only admins can promote models. You are signed in as anna (annotator)." in _infos(anna)
    anna.switch_page("app_pages/models.py").run()
    anna.selectbox(key="models_version").set_value(version).run()
    with pytest.raises(KeyError):
        anna.button(key="models_activate")
    assert "Only admins can activate or roll back models" in _infos(anna)

    root = _as("root", "app_pages/train.py")
    assert root.button(key="round_start") and root.button(key="round_promote")
    root.switch_page("app_pages/models.py").run()
    root.selectbox(key="models_version").set_value(version).run()
    assert root.button(key="models_activate")


def test_role_is_checked_again_at_the_click(team, workspace, monkeypatch):
    add_corrections(workspace, 3)
    version = add_round_version(workspace)
    finished_round(workspace, version)
    launched = []
    monkeypatch.setattr(train_service, "launch", lambda params: launched.append(params) or 1)
    with team() as s:
        auth.create_user(s, "temp", PASSWORD, "admin")
    for button in ("round_promote", "round_start"):
        with team() as s:
            auth.set_role(s, "temp", "admin")
        at = _as("temp", "app_pages/train.py")
        with team() as s:
            auth.set_role(s, "temp", "annotator")  # demoted while the page was open
        at.button(key=button).click().run()
        assert not at.exception
        assert "Only admins" in _infos(at)
    assert Registry(workspace).active == "v0001" and launched == []


def _seed_item(sessions, text: str) -> int:
    with sessions() as s:
        (text_id,) = add_texts(s, [text], source="predict")
        upsert_queue_items(s, [{"text_id": text_id, "task": "sentiment", "reason": "uncertain", "score": 0.9,
                                "detail": "seeded"}], pool="predict", model_version="v0001")
    return text_id


def test_annotation_records_the_signed_in_user(team):
    text_id = _seed_item(team, "A film I will not forget.")
    at = _as("anna", "app_pages/review.py")
    assert not at.exception
    with pytest.raises(KeyError):
        at.text_input(key="review_annotator_input")  # no name prompt in team mode
    with pytest.raises(KeyError):
        at.button(key="review_switch_annotator")
    at.button(key="review_class_1").click().run()  # sentiment's second class: positive
    assert not at.exception
    with team() as s:
        [event] = history(s, text_id)
    assert (event.kind, event.value, event.annotator) == ("label", "positive", "anna")


def _conflict(sessions) -> int:
    with sessions() as s:
        (text_id,) = add_texts(s, ["a disputed text"], source="predict")
        add_annotation(s, text_id, "sentiment", "negative", "alice")
        add_annotation(s, text_id, "sentiment", "positive", "bob")
    return text_id


def test_adjudication_needs_reviewer_or_admin(team):
    text_id = _conflict(team)
    save = f"review_adj_save_sentiment_{text_id}"
    anna = _as("anna", "app_pages/review.py")
    anna.selectbox(key="review_adj_task").set_value("sentiment").run()
    assert anna.button(key=save).disabled
    assert "Only reviewers or admins can record final labels" in _infos(anna)
    rita = _as("rita", "app_pages/review.py")
    rita.selectbox(key="review_adj_task").set_value("sentiment").run()
    assert not rita.button(key=save).disabled
    rita.button(key=save).click().run()
    assert not rita.exception
    with team() as s:
        last = history(s, text_id)[-1]
    assert (last.annotator, last.reason) == ("rita", "adjudication")


def test_sign_in_form_says_when_to_try_again(team):
    """Five wrong passwords, then the right one is refused too, with a wait in seconds (no word on the account)."""
    at = _app()
    for _ in range(4):
        _sign_in(at, "root", "wrong password")
        assert [e.value for e in at.error] == ["Wrong username or password."]
    _sign_in(at, "root", "wrong password")
    assert [e.value for e in at.error] == [
        "Wrong username or password. Too many failed sign-ins: try again in 30 s."]
    _sign_in(at, "root")  # the right password
    assert "auth_user" not in at.session_state and at.text_input(key="auth_login_password")
    [message] = [e.value for e in at.error]
    assert re.fullmatch(r"Too many failed sign-ins: try again in (2\d|30) s\.", message), message


def _scoring_job(sessions) -> int:
    with sessions() as s:
        return create_job(s, pool_service.JOB_KIND, params={"pool": "predict"}).id  # queued: shown as running


def _demote(sessions, name: str) -> None:
    """The role changes while the page is open: the buttons were drawn enabled, so Streamlit (which drops
    clicks on widgets drawn disabled) lets the click through and only the callback's own check remains."""
    with sessions() as s:
        auth.set_role(s, name, "annotator")


def test_annotator_cannot_score_or_cancel_scoring(team, workspace, monkeypatch):
    _seed_item(team, "a text sent from Predict")
    job_id = _scoring_job(team)
    launched = []
    monkeypatch.setattr(pool_service, "start_scoring", lambda *a, **k: launched.append(a) or 99)
    anna = _as("anna", "app_pages/review.py")
    assert not anna.exception
    with pytest.raises(KeyError):
        anna.button(key="review_score_button")
    assert anna.button(key="review_cancel_job").disabled
    assert "Only reviewers or admins can score pools or cancel scoring. You are signed in as anna" in _infos(anna)

    with team() as s:
        auth.create_user(s, "temp", PASSWORD, "reviewer")
    for button in ("review_cancel_job", "review_score_button"):
        with team() as s:
            auth.set_role(s, "temp", "reviewer")
        at = _as("temp", "app_pages/review.py")
        assert not at.button(key=button).disabled
        _demote(team, "temp")
        at.button(key=button).click().run()
        assert not at.exception
        assert "Only reviewers or admins can score pools" in _infos(at)
    assert launched == [] and not worker.cancel_flag(workspace, job_id).exists()

    rita = _as("rita", "app_pages/review.py")
    rita.button(key="review_cancel_job").click().run()
    assert worker.cancel_flag(workspace, job_id).exists()


def test_annotator_cannot_send_broken_examples_to_review(team, workspace):
    version = add_round_version(workspace)
    finished_round(workspace, version, drop=True)
    anna = _as("anna", "app_pages/train.py")
    assert anna.button(key="round_send_broken").disabled
    assert "Only reviewers or admins can send a round's broken examples to review" in _infos(anna)
    rita = _as("rita", "app_pages/train.py")
    assert not rita.button(key="round_send_broken").disabled
    _demote(team, "rita")
    rita.button(key="round_send_broken").click().run()
    assert not rita.exception and "Only reviewers or admins can send" in _infos(rita)
    with team() as s:
        assert top_queue(s, reason="version_vs_version") == []
        auth.set_role(s, "rita", "reviewer")
    rita.run().button(key="round_send_broken").click().run()
    with team() as s:
        assert len(top_queue(s, reason="version_vs_version")) == 4
