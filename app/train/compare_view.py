"""A finished round: old vs new (deltas, per-label, confusion difference, fixed/broken), promote/discard.

All st.* calls happen in the script thread (button callbacks included). Version ids and task names reach
Markdown through `md_literal`.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.components import curves
from app.components.html import esc
from app.components.results import md_title, task_title
from app.components.text import md_literal
from app.shared import auth_view
from app.shared.flash import one_shot
from app.train import service as train_service
from mtl_core.eval.compare import REGRESSION_THRESHOLD
from mtl_core.eval.flips import MAX_NFR, negative_flip_rate, promotion_concerns
from mtl_core.rounds.join import HOLDOUT_MIN, HOLDOUT_SHARE

NFR_HELP = (f"Negative flip rate: share of the task's test examples the old model got right and the new one gets "
            f"wrong. Above {MAX_NFR:.0%}, promotion asks for a confirmation.")
FLASH = "_round_flash"  # (level, message) shown once after a callback; the Models page uses it too
flash, show_flash = one_shot(FLASH)


def deltas_frame(comparison: dict) -> pd.DataFrame:
    test = comparison.get("test", {})
    corr = comparison.get("corrections", {}).get("counts", {})
    weights = comparison.get("corrections_weights_only", {})
    memory = comparison.get("edit_memory", {})
    flips = test.get("counts", {})
    rows = []
    for task, row in test.get("tasks", {}).items():
        c, w = corr.get(task, {}), weights.get(task, {})
        new_task = row.get("old") is None  # joined in this round: no old metric, no delta
        rows.append({
            "task": task_title(task) + (" (new task)" if new_task else ""), "metric": row["metric"],
            "old": row["old"], "new": row["new"], "delta (points)": None if new_task else 100 * row["delta"],
            "test fixed / broken": f"{flips[task]['fixed']} / {flips[task]['broken']}" if task in flips else "",
            "NFR %": 100 * negative_flip_rate(flips[task]) if task in flips else None,
            "corrections right (old → new)": f"{c['right_old']} → {c['right_new']} / {c['n']}" if c else "",
            "by the weights alone": f"{w['right_new']} / {w['n']}" if w else "",
            "edit memory keys": memory.get(task, {}).get("keys", 0) if c else "",
            "regressed": not new_task and row["delta"] < -REGRESSION_THRESHOLD,
        })
    return pd.DataFrame(rows)


def confusion_figure(entry: dict) -> go.Figure:
    labels = [esc(label) for label in entry["labels"]]
    diff = entry["diff"]
    peak = max((abs(v) for row in diff for v in row), default=1) or 1
    fig = go.Figure(go.Heatmap(
        z=diff, x=labels, y=labels, colorscale="RdBu", zmid=0, zmin=-peak, zmax=peak,
        text=[[f"{v:+d}" if v else "" for v in row] for row in diff], texttemplate="%{text}",
        hovertemplate="gold %{y} → predicted %{x}: %{z:+d}<extra></extra>",
    ))
    fig.update_layout(height=120 + 32 * len(labels), xaxis_title="predicted", yaxis_title="gold",
                      yaxis_autorange="reversed", margin=dict(l=10, r=10, t=10, b=10))
    return fig


def _examples_frame(rows: list[dict]) -> pd.DataFrame:
    cols = ["split", "task", "text", "gold", "old", "new"]
    return pd.DataFrame([{k: r.get(k, "") for k in cols} for r in rows], columns=cols)


def guarded_action(action: str, fn, version: str, failed: str) -> bool:
    """Button callback body: check the role for `action`, run `fn(version)`; any error becomes a flash
    message starting with `failed` (a checkpoint deleted by hand etc.). -> whether it ran."""
    if not auth_view.allowed(action):
        flash("error", auth_view.denied_message(action))
        return False
    try:
        fn(version)
    except Exception as exc:
        flash("error", f"{failed} {version}: {exc}")
        return False
    return True


def _promote(version: str) -> None:
    if guarded_action("promote", train_service.promote, version, "Could not promote"):
        flash("success", f"{version} is now the active model: predictions use it from now on.")


def _discard(version: str) -> None:
    if not auth_view.allowed("discard"):
        flash("error", auth_view.denied_message("discard"))
        return
    try:
        train_service.discard(version)
    except ValueError as exc:
        flash("error", str(exc))
        return
    flash("info", f"{version} was discarded: it stays registered (see Models) but is not used.")


def _send_broken(rows: list[dict], version: str, base: str) -> None:
    from app.shared.store_service import get_sessions

    if not auth_view.allowed("send_broken"):  # a disabled button can still be clicked by a forged message
        flash("error", auth_view.denied_message("send_broken"))
        return
    n = train_service.send_to_review(get_sessions(), rows, version, base)
    flash("success", f"{n} broken example(s) sent to the review queue.")


def render_round_result(job, number: int) -> None:
    result = job.result or {}
    comparison = result.get("comparison") or {}
    version, base = result.get("version"), result.get("base_version")
    if not version or not comparison:
        st.warning(f"Round {number:d} finished without a comparison.")
        return
    test, corr = comparison.get("test", {}), comparison.get("corrections", {})
    st.subheader(f"Round {number:d}: {md_literal(base)} → {md_literal(version)}")
    n_corr = sum(c["n"] for c in corr.get("counts", {}).values())
    right = sum(c["right_new"] for c in corr.get("counts", {}).values())
    right_old = sum(c["right_old"] for c in corr.get("counts", {}).values())
    a, b, c, d = st.columns(4)
    a.metric("Corrections right", f"{right:,}/{n_corr:,}", delta=right - right_old)
    b.metric("Test examples fixed", f"{test.get('n_fixed', 0):,}")
    c.metric("Test examples broken", f"{test.get('n_broken', 0):,}", delta=-test.get("n_broken", 0))
    d.metric("Round time", f"{result.get('timings', {}).get('total', 0):.0f} s")
    st.dataframe(deltas_frame(comparison), hide_index=True, key="round_deltas", column_config={
        "old": st.column_config.NumberColumn(format="%.4f"), "new": st.column_config.NumberColumn(format="%.4f"),
        "delta (points)": st.column_config.NumberColumn(format="%+.2f"),
        "NFR %": st.column_config.NumberColumn(format="%.2f", help=NFR_HELP)})
    _joined(result.get("joined") or [], test.get("tasks", {}))
    concerns = round_concerns(comparison)
    if concerns:
        st.warning(md_literal("Check the broken examples before promoting: " + "; ".join(concerns) + "."),
                   icon=":material/warning:")
    tabs = st.tabs(["Per label", "Confusion difference", f"Fixed ({test.get('n_fixed', 0):,})",
                    f"Broken ({test.get('n_broken', 0):,})", "Corrections", "Training curves"], key="round_tabs")
    with tabs[0]:
        st.dataframe(pd.DataFrame(test.get("labels", [])), hide_index=True, key="round_labels")
    with tabs[1]:
        confusion = test.get("confusion", {})
        if confusion:
            task = st.selectbox("Task", list(confusion), key="round_confusion_task", format_func=task_title)
            st.caption("New minus old counts (rows: gold, columns: predicted). More on the diagonal is better.")
            st.plotly_chart(confusion_figure(confusion[task]), key="round_confusion_chart")
        else:
            st.caption("No classification task in this comparison.")
    with tabs[2]:
        st.dataframe(_examples_frame(test.get("fixed", [])), hide_index=True, key="round_fixed")
    with tabs[3]:
        st.dataframe(_examples_frame(test.get("broken", [])), hide_index=True, key="round_broken")
    with tabs[4]:
        st.dataframe(_examples_frame(corr.get("fixed", []) + corr.get("broken", [])), hide_index=True,
                     key="round_corr_changes")
    with tabs[5]:
        _curves(job.id)
    _actions(version, base, concerns, test.get("broken", []) + corr.get("broken", []))


def _curves(job_id: int) -> None:
    """The round's training loss and dev curves, kept with its outcome (the job's metrics in the store)."""
    from app.shared.store_service import get_sessions

    points = train_service.curves(get_sessions(), job_id)
    if points.empty:
        st.caption("This round logged no curves.")
        return
    left, right = st.columns(2)
    if curves.has_points(points, curves.LOSS):
        left.plotly_chart(curves.loss_figure(points), key="round_done_loss_chart")
    if curves.has_points(points, curves.DEV):
        right.plotly_chart(curves.dev_figure(points), key="round_done_dev_chart")


def _joined(joined: list[str], tested: dict) -> None:
    """Say which tasks the round joined, and why one has no test metric (too few labels to hold some out)."""
    if not joined:
        return
    untested = [t for t in joined if t not in tested]
    st.info("Joined the shared model: " + ", ".join(md_title(t) for t in joined) + ".", icon=":material/add_task:")
    if untested:
        st.caption("No test metric for " + ", ".join(md_title(t) for t in untested) + md_literal(
            f": a task without a data set keeps {HOLDOUT_SHARE:.0%} of its labels as its test set once it has "
            f"{HOLDOUT_MIN} labels."))


def round_concerns(comparison: dict) -> list[str]:
    """Why promoting this round's model needs a confirmation (plain sentences; empty: nothing to confirm)."""
    regs = comparison.get("regressions", [])
    dropped = [f"the test metric dropped by more than 1 point on {', '.join(map(task_title, regs))}"] if regs else []
    return dropped + promotion_concerns(comparison.get("test", {}))


def _actions(version: str, base: str, concerns: list[str], broken: list[dict]) -> None:
    state = train_service.version_state(version)
    if state == "missing":
        st.error(f"{md_literal(version)} is no longer registered.")
        return
    left, mid, right = st.columns([1, 1, 2])
    may_send = auth_view.allowed("send_broken")
    right.button("Send broken to review", key="round_send_broken", disabled=not broken or not may_send,
                 on_click=_send_broken, args=(broken, version, base))
    if not may_send:
        with right:
            auth_view.denied_note("send_broken")
    if state == "active":
        left.success(f"{md_literal(version)} is active.")
        return
    if not auth_view.allowed("promote"):
        auth_view.denied_note("promote")
        return
    confirmed = True
    if concerns:  # a model that breaks more than it fixes is not the obvious next step: ask first
        confirmed = st.checkbox(md_literal(f"Promote {version} anyway, although {'; '.join(concerns)}"),
                                key=f"round_confirm_{version}")
    left.button(f"Promote {md_literal(version)}", key="round_promote", type="secondary" if concerns else "primary",
                disabled=not confirmed, on_click=_promote, args=(version,))
    mid.button("Discard", key="round_discard", disabled=state == "discarded", on_click=_discard, args=(version,))
    if state == "discarded":
        st.caption(f"{md_literal(version)} is discarded; promoting it is still possible.")
