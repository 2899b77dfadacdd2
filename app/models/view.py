"""Models page: every registered version (lineage, training data, config, metrics); roll back to any."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from app.components.results import md_title, task_title
from app.components.text import md_literal
from app.shared import auth_view
from app.train import service as train_service
from app.train.compare_view import flash, guarded_action, show_flash
from mtl_core.model.registry import Registry, VersionInfo
from mtl_core.model.version_marks import discarded_versions

ACTIVE_STYLE = "background-color: rgba(37, 99, 235, 0.15); font-weight: 600"


def versions_frame(versions: list[VersionInfo], active: str | None, discarded: dict) -> pd.DataFrame:
    tasks = list(dict.fromkeys(t for v in versions for t in v.metrics))
    rows = []
    for v in reversed(versions):  # newest first
        extra = v.extra or {}
        status = "active" if v.id == active else ("discarded" if v.id in discarded else "")
        row = {"version": v.id, "status": status, "parent": v.parent or "", "note": v.note,
               "created": train_service.created(v.created_at),
               "corrections": len(extra.get("corrections", [])) if extra.get("corrections") else None,
               "strategy": (extra.get("round_config") or {}).get("strategy", "")}
        for t in tasks:
            row[task_title(t)] = v.metrics.get(t)
        rows.append(row)
    return pd.DataFrame(rows)


def _highlight_active(row: pd.Series) -> list[str]:
    return [ACTIVE_STYLE if row["status"] == "active" else "" for _ in row]


def _activate(version: str) -> None:
    if guarded_action("rollback", train_service.promote, version, "Could not activate"):
        flash("success", f"{version} is now the active model.")


def _read_json(path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def render_page() -> None:
    reg = Registry(train_service.home())
    show_flash()
    try:
        versions, active = reg.versions(), reg.active
    except Exception as exc:  # a corrupted registry.json
        st.error(f"The model registry could not be read: {md_literal(exc)}")
        return
    if not versions:
        st.info("No model versions yet: the Predict page trains the first one in the background and shows its "
                "progress (or run `python -m mtl_core train --quick`).")
        return
    discarded = discarded_versions(reg.home)
    frame = versions_frame(versions, active, discarded)
    st.caption(f"{len(versions)} version(s); the active one (highlighted) answers on every page. "
               "Metric columns: each task's primary test metric.")
    st.dataframe(frame.style.apply(_highlight_active, axis=1).format(precision=4, na_rep=""), hide_index=True,
                 key="models_table")
    ids = [v.id for v in reversed(versions)]
    chosen = st.selectbox("Version details", ids, index=ids.index(active) if active in ids else 0,
                          key="models_version")
    info = reg.get(chosen)
    _details(reg, info, active, discarded)


def _details(reg: Registry, info: VersionInfo, active: str | None, discarded: dict) -> None:
    extra = info.extra or {}
    a, b, c = st.columns(3)
    a.markdown(f"**Version** {md_literal(info.id)}" + (" · active" if info.id == active else "")
               + (" · discarded" if info.id in discarded else ""))
    b.markdown(f"**Parent** {md_literal(info.parent)}" if info.parent else "**Parent** — (trained from scratch)")
    c.markdown(f"**Created** {md_literal(train_service.created(info.created_at))}")
    st.text(f"Note: {info.note}")  # user text: st.text never interprets markup
    path = reg.path_of(info.id)
    tabs = st.tabs(["Metrics", "Training data", "Config"], key="models_detail_tabs")
    with tabs[0]:
        metrics = _read_json(path / "metrics.json")
        test = (metrics.get("test") or {}).get("tasks") or {}
        if test:
            st.dataframe(pd.DataFrame(test).T.rename(index=task_title), key="models_metrics")
        elif info.metrics:
            st.dataframe(pd.DataFrame({"primary": info.metrics}).rename(index=task_title), key="models_metrics")
        if extra.get("base_metrics"):
            base = extra["base_metrics"]  # a task the round joined has no parent metric: no delta either
            deltas = {t: {"parent": base.get(t), "this": v,
                          "delta (points)": 100 * (v - base[t]) if t in base else None}
                      for t, v in info.metrics.items()}
            st.caption("Compared with the parent on the test splits:")
            st.dataframe(pd.DataFrame(deltas).T.rename(index=task_title), key="models_parent_deltas")
    with tabs[1]:
        if extra.get("corrections"):
            st.markdown(f"**{len(extra['corrections'])} corrections** (annotation event ids "
                        f"{md_literal(', '.join(map(str, extra['corrections'][:20])))}"
                        f"{' …' if len(extra['corrections']) > 20 else ''})")
            counts = extra.get("data_counts") or {}
            if counts:
                st.dataframe(pd.DataFrame(counts).T.rename(index=task_title), key="models_data_counts")
            if any((extra.get("edit_memory") or {}).values()):
                st.caption("Edit memory (corrections the weights still got wrong, answered from memory): "
                           + ", ".join(f"{md_title(t)} {n:,}" for t, n in extra["edit_memory"].items() if n))
            if extra.get("skipped"):
                st.caption("Left out: " + md_literal(", ".join(f"{k.replace('_', ' ')} {v}"
                                                               for k, v in extra["skipped"].items())))
        else:
            st.caption("Trained on the task file's original training splits (no corrections).")
    with tabs[2]:
        st.json(extra.get("round_config") or _read_json(path / "train_config.json"), expanded=False)
    if info.id != active:
        _rollback(info.id)


def _rollback(version: str) -> None:
    st.divider()
    if not auth_view.allowed("rollback"):
        auth_view.denied_note("rollback")
        return
    confirm = st.checkbox(f"Yes, make {md_literal(version)} the active model (every page will use it)",
                          key=f"models_confirm_{version}")
    st.button(f"Activate {md_literal(version)}", key="models_activate", type="primary", disabled=not confirm,
              on_click=_activate, args=(version,))
