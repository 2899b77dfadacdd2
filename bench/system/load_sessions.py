"""Load: N concurrent app sessions predicting and annotating, each an AppTest in its own thread.

Usage: python bench/system/load_sessions.py [--sessions 20] [--seconds 120] [--home ./workspace | --tiny] [--write-docs]

One process holds every session, as one `streamlit run` server does: the sessions share the cached
predictor (forwards take turns on services.MODEL_LOCK) and the database engine. Each session loops:
Predict page -> type a text (mostly an example plus a random variant, so the prediction cache misses)
-> Predict (every 3rd time also "Send to review") -> Review page -> label or accept its current queue
item as its own annotator. Latency = wall time of one `AppTest.run()` (one script rerun, what a
browser waits for). Errors: exceptions, `at.exception`, `st.error` elements, unconfirmed annotations.
At the end every reported annotation must be stored exactly once. The database is a scratch SQLite
file (a copy of the workspace's, if it has one), so the real workspace is not written to.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repo root: `bench`, `mtl_core` and `app` importable
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench import common  # noqa: E402
from bench.system.apptest_threads import concurrent_apptest  # noqa: E402

RUN_TIMEOUT_S = 600  # one rerun may wait behind many others; a timeout is reported as an error
OPENERS = ["", "Honestly, ", "Update: ", "FYI: ", "Breaking: ", "So ", "Well, "]
CLOSERS = ["", " Thoughts?", " Really.", " #news", " :)", " Call me later.", " Not sure."]
SECTION = "## 10. Load: concurrent sessions"
BEGIN, END = "<!-- bench/system/load_sessions.py: begin -->", "<!-- bench/system/load_sessions.py: end -->"


# ---------------------------------------------------------------- one session


@dataclass
class SessionLog:
    name: str
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    annotations: list[tuple[str, int, str, str]] = field(default_factory=list)  # (annotator, item id, task, kind)
    exhausted: int = 0  # Review visits with nothing left to label


def _problems(at) -> list[str]:
    return ([f"exception: {e.value}" for e in at.exception]
            + [f"st.error: {e.value}" for e in at.error])


def _step(at, log: SessionLog, action: str, prepare=None) -> bool:
    """Prepare widgets, time one rerun, record errors; True when the rerun was clean."""
    try:
        if prepare is not None:
            prepare()
        start = time.perf_counter()
        at.run()
        log.latencies[action].append(time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - anything a session hits is a finding
        log.errors.append(f"{action}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}")
        return False
    problems = _problems(at)
    log.errors += [f"{action}: {p}" for p in problems]
    return not problems


def variant(rng: random.Random, texts: list[str]) -> str:
    """Mostly a fresh text (a forward); 1 in 5 a plain example, which other sessions send to review too."""
    if rng.random() < 0.2:
        return rng.choice(texts)
    return f"{rng.choice(OPENERS)}{rng.choice(texts)}{rng.choice(CLOSERS)} (#{rng.randrange(10**6)})"


def _item_button(at, name: str):
    """The shown item's `name` button (review_accept, review_save, ...)."""
    return next(b for b in at.button if b.key == name)


def _annotate(at, log: SessionLog, rng: random.Random) -> None:
    item = at.session_state.get("review_item")
    try:
        _item_button(at, "review_accept")
    except StopIteration:  # "Nothing left for you": this annotator has labelled the whole queue
        log.exhausted += 1
        return
    task = at.selectbox(key="review_task_choice").value
    kind = rng.choice(["label", "accept"])

    def prepare():
        if kind == "accept":
            _item_button(at, "review_accept").click()
            return
        classes = [b for b in at.button if (b.key or "").startswith("review_class_")]
        if classes:  # classification: a random class is one click
            rng.choice(classes).click()
            return
        with contextlib.suppress(KeyError):  # regression: a random value
            slider = at.slider(key=f"review_value_{task}")
            slider.set_value(round(rng.uniform(slider.min, slider.max), 1))
        _item_button(at, "review_save").click()

    if _step(at, log, "annotate", prepare):
        if any(m.value.startswith(("Saved", "Accepted")) for m in at.success):
            log.annotations.append((log.name, item, task, kind))
        else:
            log.errors.append(f"annotate: no confirmation for item {item} ({kind} {task})")


def run_session(index: int, deadline: float, texts: list[str], log: SessionLog, seed: int) -> None:
    from streamlit.testing.v1 import AppTest

    rng = random.Random(seed * 1000 + index)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=RUN_TIMEOUT_S)
    try:
        _step(at, log, "open app")
        _step(at, log, "open Review", lambda: at.switch_page("app_pages/review.py"))
        _step(at, log, "set annotator", lambda: at.text_input(key="review_annotator_input").input(log.name))
        n = 0
        while time.monotonic() < deadline:
            _step(at, log, "open Predict", lambda: at.switch_page("app_pages/predict.py"))
            text = variant(rng, texts)
            _step(at, log, "predict", lambda text=text: (at.text_area(key="predict_text").input(text),
                                               at.button(key="predict_button").click()))
            if n % 3 == 0:
                _step(at, log, "send to review", lambda: at.button(key="send_to_review").click())
            if n and time.monotonic() >= deadline:  # every session completes at least one round
                break
            _step(at, log, "open Review", lambda: at.switch_page("app_pages/review.py"))
            _annotate(at, log, rng)
            n += 1
    except Exception as exc:  # noqa: BLE001
        log.errors.append(f"session: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}")


# ---------------------------------------------------------------- the run


@dataclass
class LoadResult:
    sessions: int
    seconds: float  # wall time from start to the last session's end
    logs: list[SessionLog]
    missing: list  # reported annotations not stored
    extra: list  # stored annotations of these annotators that no session reported
    duplicated: list  # stored more than once
    queue_items: int = 0

    @property
    def errors(self) -> list[str]:
        return [e for log in self.logs for e in log.errors]

    @property
    def annotations(self) -> int:
        return sum(len(log.annotations) for log in self.logs)

    @property
    def verified(self) -> bool:
        return not self.missing and not self.extra and not self.duplicated


def seed_queue(n_texts: int, texts: list[str], seed: int) -> int:
    """Queue items through the Predict page's own service; returns the queue size."""
    from sqlalchemy import func, select

    from app.review import service as rs
    from app.shared import services
    from app.shared.store_service import get_sessions
    from mtl_core.store.models import QueueItem

    predictor, version = services.current_predictor()
    rng, sessions = random.Random(seed), get_sessions()
    seeds = [variant(rng, texts) for _ in range(n_texts)]
    for pred in services.predict_many(predictor, seeds):
        rs.send_to_review(sessions, pred, version, predictor.task_file)
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(QueueItem)))


def verify(logs: list[SessionLog]) -> tuple[list, list, list]:
    """Every reported (annotator, text, task, kind) stored exactly once; nothing unreported stored."""
    from sqlalchemy import select

    from app.shared.store_service import get_sessions
    from mtl_core.store.models import AnnotationEvent, QueueItem

    with get_sessions()() as s:
        text_of = dict(s.execute(select(QueueItem.id, QueueItem.text_id)).all())
        stored = Counter(tuple(r) for r in s.execute(
            select(AnnotationEvent.annotator, AnnotationEvent.text_id, AnnotationEvent.task, AnnotationEvent.kind)
            .where(AnnotationEvent.annotator.in_([log.name for log in logs]))).all())
    reported = Counter((who, text_of.get(item), task, kind) for log in logs for who, item, task, kind in log.annotations)
    duplicated = [key for key, n in stored.items() if n > 1]
    return list((reported - stored).elements()), list((stored - reported).elements()), duplicated


def run_load(sessions: int = 20, seconds: float = 120, seed_texts: int = 40, seed: int = 0) -> LoadResult:
    """The load run on the workspace and database that MTL_STUDIO_HOME / MTL_STUDIO_DATABASE_URL name."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    with concurrent_apptest():
        from app.predict.view import load_examples  # its st.cache_data wants the runtime

        AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=RUN_TIMEOUT_S).run()  # load the model once
        texts = [ex["text"] for ex in load_examples()]
        queued = seed_queue(seed_texts, texts, seed)
        token = f"{random.Random().randrange(16**6):06x}"
        logs = [SessionLog(f"load-{i:02d}-{token}") for i in range(sessions)]
        start = time.monotonic()
        threads = [threading.Thread(target=run_session, args=(i, start + seconds, texts, logs[i], seed),
                                    name=f"session-{i}", daemon=True) for i in range(sessions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        checked = verify(logs)
    st.cache_resource.clear()  # drop this workspace's predictor and engine
    return LoadResult(sessions, elapsed, logs, *checked, queue_items=queued)


# ---------------------------------------------------------------- report


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def report(result: LoadResult) -> str:
    by_action: dict[str, list[float]] = defaultdict(list)
    for log in result.logs:
        for action, values in log.latencies.items():
            by_action[action] += values
    every = [v for values in by_action.values() for v in values]
    rows = [[a, len(v), pct(v, 50) * 1e3, pct(v, 95) * 1e3, max(v) * 1e3] for a, v in by_action.items()]
    if every:
        rows.append(["**all actions**", len(every), pct(every, 50) * 1e3, pct(every, 95) * 1e3, max(every) * 1e3])
    lines = [common.table(["action (one rerun)", "n", "p50 ms", "p95 ms", "max ms"], rows), ""]
    check = "every one stored exactly once" if result.verified else \
        f"MISMATCH: {len(result.missing)} missing, {len(result.extra)} unreported, {len(result.duplicated)} duplicated"
    lines += [f"- {result.sessions} sessions for {result.seconds:.0f} s: {len(every):,} reruns, "
              f"{len(every) / result.seconds:.2f} reruns/s; errors: **{len(result.errors)}**",
              f"- annotations: {result.annotations:,} reported, {check}; review queue seeded with "
              f"{result.queue_items:,} items; {sum(log.exhausted for log in result.logs)} visits found it exhausted"]
    return "\n".join(lines)


def write_docs(body: str, command: str, what: str, load: str) -> None:
    """Replace the generated part of the section (between the markers); notes around it stay."""
    doc = ROOT / "docs" / "PERFORMANCE.md"
    generated = (f"{BEGIN}\n`{command}` ({common.cpu_name()}, {os.cpu_count()} cores, "
                 f"{load}; {what}):\n\n{body}\n{END}")
    text = doc.read_text(encoding="utf-8")
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + generated + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n{generated}\n"
    doc.write_text(text, encoding="utf-8")


def _scratch_workspace(args: argparse.Namespace, scratch: Path) -> str:
    """Point MTL_STUDIO_HOME / MTL_STUDIO_DATABASE_URL at the model and a scratch database; say which."""
    from mtl_core.model.registry import Registry

    if args.tiny:
        from mtl_core.model.testing import make_tiny_checkpoint

        home = scratch / "ws"
        reg = Registry(home)
        reg.register(make_tiny_checkpoint(reg.staging_dir()), note="tiny", activate=True)
        what = "tiny random model"
    else:
        home = Path(args.home).resolve()
        db = home / "mtl_studio.db"
        if db.exists():  # a consistent copy, even while the app is writing to it
            with sqlite3.connect(db) as src, sqlite3.connect(scratch / "mtl_studio.db") as dst:
                src.backup(dst)
        shown = f"./{home.relative_to(ROOT)}" if home.is_relative_to(ROOT) else str(home)
        what = f"model {Registry(home).active} of {shown}"
    os.environ["MTL_STUDIO_HOME"] = str(home)
    os.environ.pop("MTL_STUDIO_TEAM_MODE", None)  # single-user mode: each session names its annotator
    os.environ["MTL_STUDIO_DATABASE_URL"] = f"sqlite:///{scratch / 'mtl_studio.db'}"
    return what


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--home", default=str(common.workspace_home()), help="workspace with the model (read only)")
    p.add_argument("--tiny", action="store_true", help="tiny random checkpoint in a temporary workspace")
    p.add_argument("--seed-texts", type=int, default=40, help="texts sent to review before the sessions start")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--write-docs", action="store_true", help=f"write the table into '{SECTION}' of docs/PERFORMANCE.md")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="mtl-load-") as tmp:
        what = _scratch_workspace(args, Path(tmp))
        print(f"# {common.cpu_name()}, {os.cpu_count()} cores; {what}; {args.sessions} sessions x {args.seconds:g} s",
              flush=True)
        before = os.getloadavg()[0]
        result = run_load(args.sessions, args.seconds, args.seed_texts, args.seed)
        load = f"load average {before:.1f} before, {os.getloadavg()[0]:.1f} at the end"
    body = report(result)
    print(body + f"\n- {load}")
    for error in result.errors[:10]:
        print("ERROR", error, file=sys.stderr)
    if args.write_docs:
        command = "python bench/system/load_sessions.py " + " ".join(sys.argv[1:])
        write_docs(body, command.strip(), what, load)
    return 0 if not result.errors and result.verified else 1


if __name__ == "__main__":
    sys.exit(main())
