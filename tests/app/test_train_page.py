"""The Train page through AppTest: settings and start, running job found again, outcome, promote/discard."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from app.train import service as train_service
from mtl_core.model.registry import Registry
from mtl_core.model.version_marks import discarded_versions
from mtl_core.ops import worker
from mtl_core.store import create_job, top_queue
from mtl_core.store.db import open_store
from tests.helpers import ROOT
from tests.helpers.apptest import open_page, page_texts
from tests.helpers.rounds import (
    add_corrections,
    add_round_version,
    finished_round,
    flipped_comparison,
    frame,
    running_round,
)


def _train_page() -> AppTest:
    return open_page("app_pages/train.py")


def _texts(at: AppTest) -> str:
    return page_texts(at)


def test_no_corrections_says_so(workspace):
    at = _train_page()
    assert not at.exception
    assert any("No corrections yet" in i.value for i in at.info)


def test_start_launches_a_round_with_the_form_settings(workspace, monkeypatch):
    add_corrections(workspace, 3)
    launched = []

    def fake_launch(params):
        launched.append(params)
        return running_round(workspace)

    monkeypatch.setattr(train_service, "launch", fake_launch)
    at = _train_page()
    assert not at.exception
    assert frame(at, "corrections")["corrections"].tolist() == [3]
    at.radio(key="round_strategy").set_value("lora")
    at.number_input(key="round_steps").set_value(40)
    at.slider(key="round_distill_focal").set_value(5.0)
    at.button(key="round_start").click().run()
    assert not at.exception
    (params,) = launched
    assert params["strategy"] == "lora" and params["steps"] == 40 and params["tasks"] == ["sentiment"]
    assert params["distill_focal"] == 5.0
    assert params["base_version"] == "v0001" and params["replay_ratio"] == 4.0
    # the page now follows the running job, with a cancel button
    assert "running" in _texts(at)
    at.button(key="round_cancel").click().run()
    job_id = train_service.current_job(open_store(workspace)[1]).id
    assert worker.cancel_flag(workspace, job_id).exists()


def test_busy_worker_gives_a_clear_message(workspace, monkeypatch):
    add_corrections(workspace, 2)

    def busy(params):
        raise worker.JobBusy("a train_round job is already running")

    monkeypatch.setattr(train_service, "launch", busy)
    at = _train_page()
    at.button(key="round_start").click().run()
    assert not at.exception
    assert any("already running" in w.value for w in at.warning)


def test_running_job_is_found_again_after_reload(workspace):
    job_id = running_round(workspace)
    at = _train_page()  # a fresh session: nothing in session_state points at the job
    assert not at.exception
    assert f"Round {job_id}" in _texts(at)
    assert at.button(key="round_cancel")


def test_failed_round_shows_message_and_log(workspace):
    finished_round(workspace, "v0002", status="failed", message="RuntimeError: boom",
                   log="Traceback: something went wrong")
    at = _train_page()
    assert not at.exception
    assert any("boom" in e.value for e in at.error)
    assert any("something went wrong" in c.value for c in at.code)


def _predict_outputs(at: AppTest) -> tuple[str, list[str]]:
    at.switch_page("app_pages/predict.py").run()
    at.text_area(key="predict_text").input("Tom Hanks loved the film in London.")
    at.button(key="predict_button").click().run()
    captions = [c.value for c in at.caption]
    version = next(c for c in captions if c.startswith("version"))
    answers = [m.value for m in at.markdown if m.value.startswith("### ")] + [c for c in captions if "confidence" in c]
    return version, answers


def test_promote_swaps_the_active_model_and_its_predictions(workspace):
    version = add_round_version(workspace)
    finished_round(workspace, version)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    before, answers_before = _predict_outputs(at)
    at.switch_page("app_pages/train.py").run()
    assert not at.exception
    deltas = frame(at, "delta (points)")
    assert deltas["task"].tolist() == ["Sentiment"] and deltas["delta (points)"][0] > 0
    assert not at.warning  # no regression: no confirmation needed
    at.button(key="round_promote").click().run()
    assert Registry(workspace).active == version
    assert any(version in s.value for s in at.success)
    after, answers_after = _predict_outputs(at)
    assert "v0001" in before and version in after
    assert answers_after != answers_before  # the cached predictor followed the active version


def test_drop_over_one_point_needs_confirmation(workspace):
    version = add_round_version(workspace)
    finished_round(workspace, version, drop=True)
    at = _train_page()
    assert any("more than 1 point" in w.value for w in at.warning)
    assert at.button(key="round_promote").disabled
    at.checkbox(key=f"round_confirm_{version}").check().run()
    assert not at.button(key="round_promote").disabled
    at.button(key="round_promote").click().run()
    assert Registry(workspace).active == version


def test_negative_flips_need_confirmation_even_without_a_metric_drop(workspace):
    version = add_round_version(workspace)
    finished_round(workspace, version, comparison=flipped_comparison())
    at = _train_page()
    deltas = frame(at, "NFR %")
    assert deltas["delta (points)"][0] == 0 and deltas["NFR %"][0] == 50.0
    assert deltas["test fixed / broken"][0] == "4 / 4"
    (warning,) = at.warning
    assert "negative flip rate above 1% on sentiment (50.0%)" in warning.value.replace("\\", "")
    promote = at.button(key="round_promote")
    assert promote.disabled and promote.proto.type == "secondary"  # not the obvious next step
    at.checkbox(key=f"round_confirm_{version}").check().run()
    at.button(key="round_promote").click().run()
    assert Registry(workspace).active == version


def test_rounds_are_numbered_among_rounds_only(workspace):
    with open_store(workspace)[1]() as s:  # a pool-scoring job takes id 1
        create_job(s, "score_pool", params={})
    job_id = running_round(workspace)
    at = _train_page()
    assert job_id == 2 and "Round 1" in _texts(at) and "Round 2" not in _texts(at)


def test_form_shows_only_the_chosen_strategys_settings(workspace):
    add_corrections(workspace, 3)
    at = _train_page()
    keys = {w.key for w in at.number_input} | {w.key for w in at.selectbox} | {w.key for w in at.select_slider}
    assert "round_lr" in keys and not {"round_freeze_layers", "round_lora_r", "round_lora_lr"} & keys
    at.radio(key="round_strategy").set_value("freeze").run()
    assert at.number_input(key="round_freeze_layers").value == 3 and at.select_slider(key="round_lr")
    at.radio(key="round_strategy").set_value("lora").run()
    keys = {w.key for w in at.number_input} | {w.key for w in at.select_slider}
    assert "round_lora_lr" in keys and "round_lr" not in keys and "round_freeze_layers" not in keys


def test_a_finished_round_keeps_its_curves(workspace):
    from mtl_core.store import add_job_metric

    version = add_round_version(workspace)
    job_id = finished_round(workspace, version)
    with open_store(workspace)[1]() as s:
        add_job_metric(s, job_id, 5, "train_loss", 0.7, task="sentiment")  # one point: still drawn (markers)
        add_job_metric(s, job_id, 10, "dev", 0.8, task="sentiment")
    at = _train_page()
    assert not at.exception
    assert any(t.label == "Training curves" for t in at.tabs)
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("Training loss per task" in t for t in titles) and any("Dev metric per task" in t for t in titles)


def test_discard_keeps_the_version_inactive(workspace):
    version = add_round_version(workspace)
    finished_round(workspace, version)
    at = _train_page()
    at.button(key="round_discard").click().run()
    assert not at.exception
    assert version in discarded_versions(workspace) and Registry(workspace).active == "v0001"
    assert version in [v.id for v in Registry(workspace).versions()]
    assert at.button(key="round_discard").disabled


def test_send_broken_to_review_queues_them(workspace):
    version = add_round_version(workspace)
    finished_round(workspace, version, drop=True)
    at = _train_page()
    assert any(t.label == "Broken (4)" for t in at.tabs)
    at.button(key="round_send_broken").click().run()
    assert not at.exception
    with open_store(workspace)[1]() as s:
        items = top_queue(s, reason="version_vs_version")
    assert len(items) == 4 and all(i.model_version == version for i in items)
    assert "<b>was</b>" in items[0].text and "v0001 -> " + version in items[0].detail
    # user text is shown in dataframes (never as HTML)
    assert not [m for m in at.markdown if m.proto.allow_html and "<b>was</b>" in m.value]


def test_comparison_confusion_heatmap_has_a_task_selector(workspace):
    version = add_round_version(workspace)
    finished_round(workspace, version)
    at = _train_page()
    assert at.selectbox(key="round_confusion_task").value == "sentiment"
    assert at.get("plotly_chart")


def test_gpu_count_input_only_with_several_gpus(workspace, monkeypatch):
    add_corrections(workspace, 3)
    launched = []
    monkeypatch.setattr(train_service, "launch", lambda params: launched.append(params) or running_round(workspace))
    at = _train_page()
    assert "round_nproc" not in {w.key for w in at.number_input}  # no GPU or one: nothing to choose
    monkeypatch.setattr(train_service, "gpu_count", lambda: 4)
    at = _train_page()
    at.number_input(key="round_nproc").set_value(4)
    at.button(key="round_start").click().run()
    assert not at.exception
    assert launched[-1]["nproc"] == 4 and launched[-1]["base_version"] == "v0001"
