"""Cold start: process start -> first prediction, for the CLI and the app; wall time and peak RSS.

    nice -n 19 python bench/system/cold_start.py [--quick] [--threads N] [--repeats R] [--no-app]

Every measurement is a fresh child process (the OS file cache stays warm after the first run: the
"first" column shows the very first run of each, the median the rest). Peak RSS is the child's
ru_maxrss from os.wait4 (its own, not its children's), or VmHWM from /proc for the server; "CPU s" is
the process's user + system CPU time (on a busy machine wall time inflates, CPU time much less).
  cli predict        `python -m mtl_core predict --json "hello"`: start -> JSON printed -> exit
  cli phases         the same steps in one child, timed one by one (imports, load, first predict)
  app server         `streamlit run streamlit_app.py --server.headless true`: start -> /_stcore/health
                     answers "ok" -> the page HTML is served (no browser, so no script run yet)
  app first predict  one child: import app.shared.services, load the predictor, first predict with attention
                     (what the Predict page runs for a first text), timed by phase
  app script run     streamlit's AppTest runs the real Predict page and clicks Predict once: the first
                     prediction rendered, as a browser session would trigger it (info; no browser)
Model: the active workspace model; without one, an untrained real-size checkpoint in a temporary
workspace (same files and sizes). Targets: <= 10 s and <= 1 GB RSS.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `bench` and `mtl_core` importable

from bench import common

TARGET_S = 10.0
TARGET_MB = 1024.0

PHASES = r"""
import json, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
import transformers  # noqa
from transformers import AutoModel  # noqa: triggers the lazy import of the model classes
t2 = time.perf_counter()
from mtl_core.serve.predictor import load_active_predictor
t3 = time.perf_counter()
pred = load_active_predictor()
t4 = time.perf_counter()
pred.predict(["hello"])
t5 = time.perf_counter()
print(json.dumps({"import torch": t1 - t0, "import transformers (+AutoModel)": t2 - t1,
                  "import mtl_core.serve.predictor": t3 - t2, "load predictor": t4 - t3, "first predict": t5 - t4}))
"""

APP_PREDICT = r"""
import json, time
t0 = time.perf_counter()
import streamlit  # noqa
t1 = time.perf_counter()
from app.shared import services  # noqa
from mtl_core.serve.predictor import load_active_predictor
t2 = time.perf_counter()
pred = load_active_predictor()
t3 = time.perf_counter()
pred.predict(["hello"], with_attention=True)
t4 = time.perf_counter()
print(json.dumps({"import streamlit": t1 - t0, "import app.shared.services": t2 - t1, "load predictor": t3 - t2,
                  "first predict (with attention)": t4 - t3}))
"""

APP_SCRIPT = r"""
import json, time
t0 = time.perf_counter()
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("streamlit_app.py", default_timeout=120).run()
t1 = time.perf_counter()
at.text_area(key="predict_text").input("hello")
at.button(key="predict_button").click()
at.run()
t2 = time.perf_counter()
print(json.dumps({"first page run (model loaded)": t1 - t0, "first prediction rendered": t2 - t1,
                  "exception": [str(e.value)[:200] for e in at.exception]}))
"""


@dataclass
class Run:
    wall: float  # seconds, process start -> exit (or -> the event measured)
    cpu: float  # user + system CPU seconds of that process
    rss: float  # peak RSS, MiB
    rc: int = 0
    out: str = ""


def run_child(cmd: list[str], env: dict, timeout: float = 300) -> Run:
    """Run one fresh child; its own rusage (os.wait4), not that of any grandchildren."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=common.ROOT, env=env, stdout=out, stderr=subprocess.DEVNULL)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode,
                   out.read().decode(errors="replace"))


def prepare_home(tmp: Path) -> tuple[str, str]:
    """(workspace home, description): the real workspace if it has an active model, else a temporary one."""
    from mtl_core.model.registry import Registry
    from mtl_core.serve.predictor import load_active_predictor  # noqa: F401  (fails early if imports break)

    home = common.workspace_home()
    if (home / "models" / "registry.json").exists() and Registry(home).active:
        return str(home), f"trained workspace model {Registry(home).active} ({home})"
    from mtl_core.model.checkpoint import save_checkpoint

    loaded = common.load_predictor()
    pred = loaded.predictor
    reg = Registry(tmp / "ws")
    staging = reg.staging_dir()
    save_checkpoint(pred.model, pred.tokenizer, pred.task_file, staging, train_config={"untrained": True}, metrics={})
    reg.register(staging, note="untrained, for cold-start timing", activate=True)
    return str(reg.home), "UNTRAINED real-size checkpoint in a temporary workspace (no active workspace model)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_usage(pid: int) -> tuple[float, float]:
    """(peak RSS MiB from VmHWM, user + system CPU seconds) of a running process."""
    rss = cpu = float("nan")
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 1024
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    return rss, cpu


def app_server(env: dict, timeout: float = 120) -> tuple[Run, Run, int]:
    """(start -> healthy, start -> page served, page bytes); RSS and CPU read when the page was served."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=common.ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    healthy = page = float("nan")
    size = 0
    try:
        while time.perf_counter() - t0 < timeout and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
                    if r.status == 200 and r.read().strip() == b"ok":
                        healthy = time.perf_counter() - t0
                        break
            except OSError:
                time.sleep(0.02)
        cpu_healthy = proc_usage(proc.pid)[1]
        if healthy == healthy:  # not NaN
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
                size = len(r.read())
            page = time.perf_counter() - t0
        rss, cpu = proc_usage(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return Run(healthy, cpu_healthy, rss), Run(page, cpu, rss), size


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], repeats=5, quick_repeats=2)
    p.add_argument("--no-app", action="store_true", help="CLI only")
    args = p.parse_args()
    common.setup(args)
    tmp = Path(tempfile.mkdtemp(prefix="mtl-cold-"))
    try:
        home, what = prepare_home(tmp)
        env = {**os.environ, "MTL_STUDIO_HOME": home, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(common.ROOT)}
        if args.threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
        print(f"# model: {what}")
        print(f"# {args.repeats} runs each (fresh processes); threads in children: "
              f"{env.get('OMP_NUM_THREADS', 'torch default')}")
        rows, worst = [], {"s": 0.0, "mb": 0.0}

        def record(name: str, runs: list[Run], note: str = "", target: bool = True) -> None:
            rest = runs[1:] or runs
            wall = statistics.median(r.wall for r in rest)
            rows.append([name, f"{runs[0].wall:.2f}", f"{wall:.2f}", f"{statistics.median(r.cpu for r in rest):.2f}",
                         f"{max(r.rss for r in runs):.0f}", note])
            if target:
                worst["s"] = max(worst["s"], wall)
                worst["mb"] = max(worst["mb"], max(r.rss for r in runs))

        cli = [run_child([sys.executable, "-m", "mtl_core", "predict", "--json", "hello"], env)
               for _ in range(args.repeats)]
        bad = [r for r in cli if r.rc != 0]
        record("cli predict", cli, f"exit {bad[0].rc}" if bad else "")
        phases = run_child([sys.executable, "-c", PHASES], env)
        phase_rows = [["cli phases", k, f"{v:.2f}"] for k, v in _json(phases.out).items()]
        if not args.no_app:
            server = [app_server(env) for _ in range(args.repeats)]
            record("app server: start -> healthy", [h for h, _, _ in server])
            record("app server: start -> page served", [pg for _, pg, _ in server], f"{server[0][2]:,} bytes of HTML")
            app = [run_child([sys.executable, "-c", APP_PREDICT], env) for _ in range(args.repeats)]
            record("app: services + load + first predict", app)
            phase_rows += [["app first predict", k, f"{v:.2f}"] for k, v in _json(app[-1].out).items()]
            script = run_child([sys.executable, "-c", APP_SCRIPT], env)
            info = _json(script.out)
            note = "info (AppTest, no browser)" + (f"; exception: {info['exception']}" if info.get("exception") else "")
            record("app: script run + first prediction rendered", [script], note, target=False)
            phase_rows += [["app script run", k, f"{v:.2f}"] for k, v in info.items() if k != "exception"]
        print(common.table(["what", "first run s", "median s (later runs)", "median CPU s", "peak RSS MiB", "note"], rows,
                           "Cold start: process start -> first prediction"))
        print(common.table(["process", "phase", "seconds"], phase_rows, "Where the time goes (last run)"))
        print()
        print(f"slowest median {worst['s']:.2f} s (target <= {TARGET_S:g} s): {common.verdict(worst['s'] <= TARGET_S)}; "
              f"largest peak RSS {worst['mb']:.0f} MiB (target <= {TARGET_MB:g} MiB): "
              f"{common.verdict(worst['mb'] <= TARGET_MB)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _json(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    return {"(no output)": float("nan")}


if __name__ == "__main__":
    main()
