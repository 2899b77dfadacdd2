"""Lab page: a new experiment's form, the running lab's live curves, a finished lab's table and figures.

The running lab is found again from the jobs table after a reload; its progress refreshes in a fragment.
Figures come from app/lab/charts.py; nothing here loads a model.
"""

from __future__ import annotations

import shlex

import pandas as pd
import streamlit as st

from app.components.results import task_title
from app.components.text import md_literal
from app.lab import charts
from app.lab import service as lab_service
from app.shared import auth_view, job_view
from app.shared.flash import one_shot
from app.shared.store_service import get_sessions
from mtl_core.lab.config import BUDGETS, FAMILIES, STRATEGIES, LabConfig
from mtl_core.ops.worker import JobBusy
from mtl_core.store.db import Sessions

flash, show_flash = one_shot("_lab_flash")
DEFAULT_STRATEGIES = ["equal", "pcgrad", "upgrad"]
STRATEGY_ORDER = [s.name for f in FAMILIES for s in STRATEGIES.values() if s.family == f]
BUDGET_CHOICES = ("quick", "default", "custom")
# measured on a quiet 2-core CPU (docs/LAB.md): the whole quick lab (25 runs) in 22 min; a default-budget run
# ~25 min (MMoE 24.7 min, probes and evaluations included)
CPU_TIME = {"quick": "about a minute a run on 2 CPU cores", "default": "about 25 min a run on 2 CPU cores"}
BUDGET_CAPTIONS = [f"{b.steps:,} steps per run, batch {b.batch_size:d}, texts cut at {b.max_length:d} tokens; "
                   f"{CPU_TIME[name]}" for name, b in BUDGETS.items()] + [
    "your number of steps per run on the quick budget's data"]
BASELINE_NOTE = ("Single-task baselines (one model per task) are always included: Δm% is measured against them. "
                 "They are computed once and cached, so later experiments on the same tasks and budget reuse them.")
RUNNING = lab_service.ACTIVE_STATUSES


def render_page() -> None:
    may_run = auth_view.allowed("train")
    if not may_run:
        auth_view.denied_note("train")
    sessions = get_sessions()
    show_flash()
    job = lab_service.current_job(sessions)
    if job is not None and job.status in RUNNING:
        _progress_panel(job.id)
        return
    if job is not None:
        _finished(sessions, job)
        st.divider()
    if may_run:
        _form(sessions)


def _strategy_label(name: str) -> str:
    s = STRATEGIES[name]
    return f"{s.family} · {name} — {s.about}"


def _form(sessions: Sessions) -> None:
    st.subheader("New experiment")
    all_tasks = lab_service.default_tasks()
    with st.expander("The strategies, by family", expanded=False, key="lab_strategy_help"):
        st.dataframe(pd.DataFrame([{"family": STRATEGIES[n].family, "strategy": n, "what it does": STRATEGIES[n].about}
                                   for n in STRATEGY_ORDER]), hide_index=True, key="lab_strategy_table")
    # outside the form: choosing "custom" reruns the page, so the form shows its steps input
    budget = st.radio("Budget", BUDGET_CHOICES, index=0, horizontal=True, key="lab_budget",
                      format_func=str.capitalize, captions=BUDGET_CAPTIONS)
    with st.form("lab_form"):
        strategies = st.multiselect("Strategies", STRATEGY_ORDER, default=DEFAULT_STRATEGIES, key="lab_strategies",
                                    format_func=_strategy_label)
        a, b = st.columns(2)
        seeds = a.number_input("Seeds per strategy", 1, 3, 1, key="lab_seeds",
                               help="Runs per strategy (seeds 0, 1, 2): with two or more the table shows ± std")
        steps = b.number_input("Steps per run", 0, 100_000, 300, step=50, key="lab_steps") \
            if budget == "custom" else None
        tasks = st.multiselect("Tasks", all_tasks, default=all_tasks, key="lab_tasks", format_func=task_title)
        st.caption(BASELINE_NOTE)
        start = st.form_submit_button("Start experiment", type="primary", key="lab_start")
    if not start:
        return
    if not auth_view.allowed("train"):  # checked again at the click: the role may have changed since
        st.error(md_literal(auth_view.denied_message("train")))
        return
    try:
        cfg = LabConfig(strategies=list(strategies), seeds=int(seeds), budget=budget,
                        steps=None if steps is None else int(steps), tasks=list(tasks))
        lab_service.start_lab(cfg, sessions)
    except JobBusy:
        st.warning("A lab experiment is already running: wait for it to finish or cancel it first.")
        return
    except (ValueError, KeyError) as exc:  # LabConfig's checks; KeyError: no "lab" handler in this install
        st.error(f"Invalid settings: {md_literal(exc)}")
        return
    runs = lab_service.run_count(cfg.strategies, cfg.seeds, len(cfg.tasks or all_tasks))
    flash("info", f"A lab experiment started: up to {runs} training runs ({cfg.budget} budget; cached "
                  "baselines are reused).")
    st.rerun()


@st.fragment(run_every=2)
def _progress_panel(job_id: int) -> None:
    sessions = get_sessions()
    job = lab_service.refresh(sessions, job_id)
    if job is None or job.status not in RUNNING:
        st.rerun()  # finished: the full page shows the outcome
        return
    st.subheader(f"Lab {lab_service.lab_number(sessions, job):d} — {md_literal(job.status)}")
    st.progress(min(1.0, job.progress or 0.0), text=md_literal(job.message or "starting…"))
    st.button("Cancel lab", key="lab_cancel", on_click=job_view.cancel_training_job, args=(job.id, flash),
              disabled=not auth_view.allowed("train"))
    points = lab_service.points(sessions, job.id)
    if points.empty:
        st.caption("Curves appear after the first logged steps.")
        return
    if charts.has(points, "conflict"):
        st.plotly_chart(charts.live_conflict_figure(points), key="lab_live_conflict")
    _dev_curves(points, "lab_live_dev")


def _dev_curves(points: pd.DataFrame, key: str) -> None:
    figures = charts.dev_figures(points)
    columns = st.columns(2)
    for i, (task, fig) in enumerate(figures.items()):
        columns[i % 2].plotly_chart(fig, key=f"{key}_{task}")


def _job_label(job) -> str:
    return f"Lab #{job.id} · {lab_service.created(job.created_at)} · {job.status}"


def _finished(sessions: Sessions, latest) -> None:
    jobs = [j for j in lab_service.recent_jobs(sessions) if j.status not in RUNNING] or [latest]
    job = latest
    if len(jobs) > 1:
        by_id = {j.id: j for j in jobs}
        picked = st.selectbox("Experiment", list(by_id), index=0, key="lab_pick",
                              format_func=lambda i: _job_label(by_id[i]))
        job = by_id.get(picked, latest)
    number = lab_service.lab_number(sessions, job)
    params = (job.params or {}).get("lab", {})
    st.subheader(f"Lab {number:d} — {md_literal(job.status)}")
    st.caption(f"{len(params.get('strategies', [])):d} strategies × {int(params.get('seeds', 1)):d} seed(s), "
               f"{md_literal(params.get('budget', '?'))} budget: "
               + ", ".join(map(md_literal, params.get("strategies", []))))
    result = lab_service.result_of(job)
    points = lab_service.points(sessions, job.id)
    if job.status == "done" and result is not None:
        _result(job, result, points)
        return
    if job.status == "failed":
        st.error(f"Lab {number:d} failed: {md_literal(job.message or 'no message')}")
        with st.expander("Log", expanded=False, key="lab_failed_log"):
            st.code(job.log or "(empty)", language="text")
    else:
        st.info(f"Lab {number:d} was {md_literal(job.status)}: {md_literal(job.message or '')}")
    done = [r for r in result.runs if r.status == "done"] if result is not None else []
    if done:
        st.markdown(f"**Runs that finished** ({len(done):d} of {len(result.runs):d})")
        st.dataframe(lab_service.runs_frame(result), hide_index=True, key="lab_runs_partial")
        if result.table:
            st.dataframe(lab_service.table_frame(result), hide_index=True, key="lab_table_partial")
    else:
        st.caption("No run finished before the experiment stopped.")
    if not points.empty:
        _dev_curves(points, "lab_partial_dev")


def _result(job, result, points: pd.DataFrame) -> None:
    st.dataframe(lab_service.table_frame(result), hide_index=True, key="lab_table")
    st.caption("Δm%: mean relative change over the single-task baselines (positive = better on average); "
               "task columns: the test metric, mean ± std over seeds; cost per step relative to equal weighting.")
    if result.excluded:
        st.caption(f"Δm% leaves out {md_literal(', '.join(result.excluded))}: the single-task baseline scored ~0 "
                   "at this budget, so a relative change means nothing.")
    if result.best:
        st.success(f"★ {md_literal(result.best)}: {md_literal(result.beats_equal or 'the best strategy')}")
    conflict_tab, affinity_tab, dev_tab, runs_tab = st.tabs(["Gradient conflict", "Task affinity", "Dev curves",
                                                              "Runs"])
    with conflict_tab:
        if result.conflict.get("steps"):
            st.plotly_chart(charts.conflict_figure(result.conflict), key="lab_conflict")
        else:
            st.caption("No gradient-conflict probes in this experiment.")
    with affinity_tab:
        _affinity(result.affinity)
    with dev_tab:
        if charts.has(points, "dev"):
            _dev_curves(points, "lab_dev")
        else:
            st.caption("No dev curves were logged.")
    with runs_tab:
        st.dataframe(lab_service.runs_frame(result), hide_index=True, key="lab_runs")
        if result.tensorboard:
            st.caption("TensorBoard event files of every run:")
            st.code(f"tensorboard --logdir {shlex.quote(result.tensorboard)}", language="bash")
    _actions(job, result)


def _affinity(affinity: dict) -> None:
    if not affinity.get("matrix"):
        st.caption("No task-affinity probes in this experiment.")
        return
    st.plotly_chart(charts.affinity_figure(affinity), key="lab_affinity")
    st.caption("Row: the task a step was taken on; column: the task whose loss changed. Positive (blue) = helps.")
    for n, split in sorted(affinity.get("groups", {}).items()):
        groups = split.get("groups", [])
        st.markdown(f"**Best split into {int(n):d} groups** (score {float(split.get('score', 0.0)):.3f}): "
                    + " · ".join("{" + ", ".join(map(md_literal, g)) + "}" for g in groups))


def _actions(job, result) -> None:
    names = lab_service.candidates(result.table)
    if not names:
        return
    st.subheader("Adopt a strategy")
    current = lab_service.current_recipe()
    if current:
        st.caption(f"Current default recipe: {md_literal(current)}")
    may = auth_view.allowed("train")
    a, b = st.columns(2)
    name = a.selectbox("Strategy", names, index=0, key="lab_adopt_strategy", format_func=_strategy_label)
    budget = b.selectbox("Budget for training it", list(BUDGETS), index=list(BUDGETS).index("default"),
                         key="lab_train_budget")
    left, right = st.columns(2)
    if left.button("Use as default recipe", key="lab_recipe", disabled=not may):
        try:
            lab_service.save_recipe(name)
        except (ValueError, KeyError, OSError) as exc:
            st.error(f"Could not save the recipe: {md_literal(exc)}")
        else:
            st.success(f"{md_literal(name)} is now the default recipe: later training uses its settings.")
    if right.button("Train this config", key="lab_train", disabled=not may):
        try:
            job_id = lab_service.train_config(name, budget)
        except JobBusy:
            st.warning("A training run of the lab is already running: wait for it or cancel it first.")
        except KeyError as exc:
            st.error(f"Could not start the training: {md_literal(exc)}")
        else:
            st.success(f"Training with {md_literal(name)} started in the background (job {job_id:d}).")
    _training_panel()


@st.fragment(run_every=3)
def _training_panel() -> None:
    """The latest "Train this config" run: progress and Cancel while it runs, then where its version is."""
    jobs = lab_service.recent_jobs(get_sessions(), kind=lab_service.TRAIN_KIND, limit=1)
    if not jobs:
        return
    job = jobs[0]
    strategy = str((job.params or {}).get("strategy", "?"))
    if job.status in RUNNING:
        st.progress(min(1.0, job.progress or 0.0),
                    text=f"Training {md_literal(strategy)}: {md_literal(job.message or 'starting…')}")
        st.button("Cancel training", key="lab_train_cancel", on_click=job_view.cancel_training_job, args=(job.id, flash),
                  disabled=not auth_view.allowed("train"))
    elif job.status == "done":
        st.info(f"Last trained config: {md_literal(_trained(job.result or {}, strategy))}")
    else:
        st.warning(f"Training {md_literal(strategy)} {md_literal(job.status)}: {md_literal(job.message or '')}")


def _trained(result: dict, strategy: str) -> str:
    """What a finished "Train this config" run made, as plain text (the worker's own message is only "finished")."""
    version, budget = result.get("version"), result.get("budget", "?")
    if not version:
        return strategy
    average = (result.get("test") or {}).get("average")
    score = "" if average is None else f", test average {float(average):.4f}"
    if result.get("stopped") == "cancelled":
        return (f"training {strategy} was cancelled; its best weights on dev so far (step {result.get('best_step', '?')})"
                f" are {version}, inactive ({budget} budget{score}): compare it on the Models page before activating it")
    return f"{version} trained with {strategy} ({budget} budget{score}); compare and activate it on the Models page"
