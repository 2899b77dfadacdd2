"""Train page: round settings, live progress of the running round, the last round's outcome.

A running round is found again from the jobs table after a reload; progress refreshes in a fragment.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.components import curves
from app.components.results import task_title
from app.components.text import md_literal
from app.shared import auth_view, job_view
from app.shared.store_service import get_sessions
from app.train import service as train_service
from app.train.compare_view import flash, render_round_result, show_flash
from mtl_core.model.registry import Registry
from mtl_core.ops.worker import JobBusy
from mtl_core.rounds.finetune import STRATEGIES, RoundConfig
from mtl_core.store.db import Sessions
from mtl_core.train.weighting import SAMPLINGS, WEIGHTINGS

STRATEGY_HELP = {
    "full": "Full: the whole encoder adapts (embeddings stay fixed).",
    "freeze": "Freeze: the lower K encoder layers stay fixed; the upper ones and the heads adapt.",
    "lora": "LoRA: small low-rank adapters on attention query/value, merged into the weights at the end.",
}
LEARNING_RATES = [1e-5, 2e-5, 3e-5, 5e-5, 1e-4, 2e-4, 3e-4, 5e-4, 1e-3, 2e-3, 5e-3]
LORA_RANKS = [2, 4, 8, 16, 32]


def render_page() -> None:
    may_train = auth_view.allowed("train")
    if not may_train:
        auth_view.denied_note("train")
    base = Registry(train_service.home()).active
    if base is None:
        st.info("No trained model in this workspace yet: the first one is training in the background (progress on "
                "the Predict page).")
        return
    sessions = get_sessions()
    show_flash()
    job = train_service.current_job(sessions)
    if job is not None and job.status in train_service.ACTIVE_STATUSES:
        _progress_panel(job.id)
        return
    if job is not None:
        _last_round(job)
        st.divider()
    if may_train:
        _settings(base, sessions)


def _last_round(job) -> None:
    number = train_service.round_number(get_sessions(), job)
    if job.status == "done":
        render_round_result(job, number)
    elif job.status == "failed":
        st.error(f"Round {number:d} failed: {md_literal(job.message or 'no message')}")
        with st.expander("Log", expanded=False, key="round_failed_log"):
            st.code(job.log or "(empty)", language="text")
    else:
        st.info(f"Round {number:d} was {md_literal(job.status)}: {md_literal(job.message or '')}")


def _settings(base: str, sessions: Sessions) -> None:
    st.subheader(f"New round from {md_literal(base)}")
    counts = train_service.counts(sessions)
    joinable = train_service.new_tasks(base)
    if not counts and not joinable:
        st.info("No corrections yet: label or correct predictions on the Review page, then come back.")
        return
    corrected = sorted(t for t in counts if t not in joinable)  # a new task's labels come with joining it
    if counts:
        st.dataframe(pd.DataFrame([{"task": task_title(t), "corrections": n} for t, n in sorted(counts.items())]),
                     hide_index=True, key="round_counts")
    d = RoundConfig()
    # outside the form: a choice here reruns the page, so the form shows only this strategy's settings
    strategy = st.radio("Strategy", STRATEGIES, index=STRATEGIES.index(d.strategy), horizontal=True,
                        key="round_strategy", format_func=str.capitalize,
                        captions=[STRATEGY_HELP[s] for s in STRATEGIES])
    with st.form("round_form"):
        tasks = st.multiselect("Learn from the corrections of", corrected, default=corrected,
                               key="round_tasks", format_func=lambda t: f"{task_title(t)} ({counts[t]})")
        join = st.multiselect("Join new tasks", joinable, default=[], key="round_new_tasks",
                              format_func=lambda t: f"{task_title(t)} ({counts.get(t, 0)} labels)",
                              help="Give each a head in the shared model, trained on its labels and dataset "
                                   "(docs/FINETUNE.md)") if joinable else []
        a, b = st.columns(2)
        weighting = a.selectbox("Loss weighting", WEIGHTINGS, index=WEIGHTINGS.index(d.loss_weighting),
                                key="round_loss_weighting")
        sampling = b.selectbox("Task sampling", SAMPLINGS, index=SAMPLINGS.index(d.sampling), key="round_sampling")
        steps = a.number_input("Steps", 10, 5000, d.steps, step=10, key="round_steps")
        replay = b.slider("Replay ratio (original examples per correction)", 0.0, 10.0, d.replay_ratio, 0.5,
                          key="round_replay")
        freeze, rank, lr, lora_lr = d.freeze_layers, d.lora_r, d.encoder_lr, d.lora_lr
        if strategy == "lora":
            rank = a.selectbox("LoRA rank r", LORA_RANKS, index=LORA_RANKS.index(d.lora_r), key="round_lora_r")
            lora_lr = b.select_slider("Adapter learning rate", LEARNING_RATES, value=d.lora_lr,
                                      key="round_lora_lr", format_func=lambda v: f"{v:.0e}")
        else:
            lr = a.select_slider("Encoder learning rate", LEARNING_RATES, value=d.encoder_lr,
                                 key="round_lr", format_func=lambda v: f"{v:.0e}")
        if strategy == "freeze":
            freeze = b.number_input("Frozen lower layers K", 0, 24, d.freeze_layers, key="round_freeze_layers")
        distill = a.slider("Replay keeps the old model's answers (1) … gold labels (0)", 0.0, 1.0, d.distill, 0.1,
                           key="round_distill")
        focal = b.slider("Extra weight on replay the old model got right (focal distillation)", 0.0, 10.0,
                         float(d.distill_focal), 1.0, key="round_distill_focal",
                         help="A replayed example the old model answered right weighs 1 + this in the loss: "
                              "the round holds on to the answers a negative flip would break. See docs/FINETUNE.md")
        blend = b.slider("Keep this share of the weight change", 0.1, 1.0, d.weight_blend, 0.05,
                         key="round_weight_blend",
                         help="Lower: fewer test examples broken, fewer corrections learnt by the weights (the "
                              "edit memory answers the rest). See docs/FINETUNE.md")
        memory = a.checkbox("Edit memory for corrections the new weights still get wrong", d.edit_memory,
                            key="round_edit_memory",
                            help="A remembered correction answers its own text and close paraphrases only; "
                                 "see docs/FINETUNE.md")
        gpus = train_service.gpu_count()
        nproc = a.number_input("GPUs to train on", 1, gpus, 1, key="round_nproc",
                               help="One process per local GPU (torchrun, data parallel): see docs/SCALING.md"
                               ) if gpus > 1 else 1
        start = st.form_submit_button("Start round", type="primary", key="round_start")
    if not start:
        return
    if not auth_view.allowed("train"):  # checked again at the click: the role may have changed since
        st.error(md_literal(auth_view.denied_message("train")))
        return
    if not tasks and not join:
        st.warning("Pick at least one task to learn from.")
        return
    try:
        cfg = RoundConfig(tasks=list(tasks), new_tasks=list(join) or None, strategy=strategy,
                          freeze_layers=int(freeze), lora_r=int(rank), lora_alpha=2 * int(rank),
                          loss_weighting=weighting, sampling=sampling, steps=int(steps),
                          replay_ratio=float(replay), encoder_lr=float(lr), lora_lr=float(lora_lr),
                          distill=float(distill), distill_focal=float(focal), weight_blend=float(blend),
                          edit_memory=bool(memory))
        train_service.start_round(cfg, base, sessions, nproc=int(nproc))
    except JobBusy:
        st.warning("A round is already running: wait for it to finish or cancel it first.")
        return
    except ValueError as exc:
        st.error(f"Invalid settings: {md_literal(exc)}")
        return
    flash("info", f"A round started from {base}.")
    st.rerun()


@st.fragment(run_every=2)
def _progress_panel(job_id: int) -> None:
    job = train_service.refresh(get_sessions(), job_id)
    if job is None or job.status not in train_service.ACTIVE_STATUSES:
        st.rerun()  # finished: the full page shows the outcome
        return
    st.subheader(f"Round {train_service.round_number(get_sessions(), job):d} — {md_literal(job.status)}")
    # the round's message says the phase, its step and the time left (rounds/pace.py)
    st.progress(min(1.0, job.progress or 0.0), text=md_literal(job.message or "starting…"))
    st.button("Cancel round", key="round_cancel", on_click=job_view.cancel_training_job, args=(job.id, flash),
              disabled=not auth_view.allowed("train"))
    points = train_service.curves(get_sessions(), job.id)
    loss = points[points["name"] == "train_loss"]
    dev = points[points["name"] == "dev"]
    left, right = st.columns(2)
    if not loss.empty:
        left.plotly_chart(curves.loss_figure(loss), key="round_loss_chart")
    if not dev.empty:
        right.plotly_chart(curves.dev_figure(dev), key="round_dev_chart")
    if loss.empty and dev.empty:
        st.caption("Curves appear after the first logged steps.")
