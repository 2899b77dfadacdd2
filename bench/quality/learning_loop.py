"""Learning loop: does one default fine-tuning round fix the model's mistakes without forgetting?

On the real active model of ./workspace (or $MTL_STUDIO_HOME): take N dev-split examples (test-like, kept
apart from the test split) the model gets wrong — round-robin over tasks, dev order; regression counts as
wrong when |error| > 1.0, NER when any word's tag is wrong — add their true labels as corrections in a
scratch copy of the workspace (a temp MTL_STUDIO_HOME holding a copy of the active checkpoint and the data
cache; the real workspace and its database are never written), run one default round per strategy from
that same base, and report:

- fixed: share of the corrections the new version gets right (target >= 90%)
- test: per-task change of the primary test metric, in points (target: no drop > 1 point)
- time: wall time of the whole round: load, evaluations old and new, training, save (target <= 120 s)

The base version's test answers are computed once up front, as `python -m mtl_core train` stores them in
the answer cache when it registers a version; a round then evaluates only its new model on the test splits.
Prints a markdown table and writes it into docs/RESULTS.md under "## Learning loop" (only that section).

    nice -n 19 python bench/quality/learning_loop.py            # final figures: 200 corrections, all strategies
    nice -n 19 python bench/quality/learning_loop.py --quick    # development: 60 corrections
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repo root: `mtl_core` importable
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from bench.common import round_overrides  # noqa: E402
from bench.results_doc import replace_section  # noqa: E402
from mtl_core.data import prepare_all  # noqa: E402
from mtl_core.eval.compare import is_right, predict_answers  # noqa: E402
from mtl_core.eval.flips import MAX_NFR, flip_rates  # noqa: E402
from mtl_core.model.checkpoint import load_checkpoint  # noqa: E402
from mtl_core.model.registry import Registry  # noqa: E402
from mtl_core.model.runner import ModelRunner  # noqa: E402
from mtl_core.progress import PrintReporter  # noqa: E402
from mtl_core.rounds.finetune import STRATEGIES, RoundConfig, run_round  # noqa: E402
from mtl_core.rounds.round_data import example_spans  # noqa: E402

RESULTS = ROOT / "docs" / "RESULTS.md"
HEADING = "## Learning loop"
TARGET_FIXED, TARGET_DROP, TARGET_SECONDS, TARGET_WEIGHTS, TARGET_ETA = 0.90, 1.0, 120.0, 0.70, 0.30


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="development run: 60 corrections, dev search capped")
    p.add_argument("--n", type=int, default=None, help="corrections (default 200; 60 with --quick)")
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    p.add_argument("--home", default=None, help="source workspace (default: $MTL_STUDIO_HOME or ./workspace)")
    p.add_argument("--steps", type=int, default=None, help="override RoundConfig.steps (default: its default)")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="override RoundConfig fields for every round, e.g. --set encoder_lr=1e-5 distill=1")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--keep", action="store_true", help="keep the scratch workspace (its path is printed)")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/RESULTS.md alone")
    return p.parse_args()


def source_home(arg: str | None) -> Path:
    return Path(arg or os.environ.get("MTL_STUDIO_HOME") or ROOT / "workspace").resolve()


def scratch_workspace(src: Path) -> tuple[Path, str]:
    """A temp workspace with a copy of src's active checkpoint (as its v0001) and src's data cache."""
    reg_src = Registry(src)
    active = reg_src.active
    if active is None:
        sys.exit(f"learning_loop: no trained model in {src}: run `python -m mtl_core train` first "
                 "(or point --home / MTL_STUDIO_HOME at a workspace that has one)")
    home = Path(tempfile.mkdtemp(prefix="mtl-learning-loop-"))
    if (src / "data_cache").is_dir():
        shutil.copytree(src / "data_cache", home / "data_cache")
    reg = Registry(home)
    staging = reg.staging_dir("bench")
    shutil.copytree(reg_src.path_of(active), staging, dirs_exist_ok=True)
    info = reg_src.get(active)
    reg.register(staging, note=f"copy of {active} from {src}", metrics=info.metrics, activate=True)
    return home, active


def wrong_dev_examples(home: Path, n: int, dev_cap: int | None) -> list[tuple[str, object]]:
    """(task, Example) pairs the active model gets wrong on the dev splits, round-robin over tasks."""
    reg = Registry(home)
    model, tok, task_file, meta = load_checkpoint(reg.path_of(reg.active))
    model.set_attention(eager=False)  # SDPA: faster, and no attention weights are needed
    runner = ModelRunner.of(model, tok, "cpu")
    seed = int(meta["train_config"].get("data_seed", meta["train_config"].get("seed", 0)))
    prepared = prepare_all(task_file, home / "data_cache", seed=seed)
    pools = {}
    for spec in task_file.tasks:
        dev = prepared.get(spec.name, {}).get("dev", [])[:dev_cap]
        answers = predict_answers(runner, spec, dev)
        gold = [list(ex.tags) if spec.kind == "token_classification" else ex.label for ex in dev]
        pools[spec.name] = [ex for ex, g, a in zip(dev, gold, answers) if not is_right(spec.kind, g, a)]
        print(f"  {spec.name}: {len(pools[spec.name])}/{len(dev)} dev examples wrong", flush=True)
    out, i, names = [], 0, [t for t in pools if pools[t]]
    while len(out) < n and any(pools[t] for t in names):
        task = names[i % len(names)]
        if pools[task]:
            out.append((task, pools[task].pop(0)))
        i += 1
    return out


def add_corrections(home: Path, picked: list) -> int:
    from mtl_core.store import add_annotation, add_texts
    from mtl_core.store.db import open_store

    _, sessions = open_store(home)
    with sessions() as s:
        for task, ex in picked:
            (text_id,) = add_texts(s, [ex.text], source=f"bench:{task}")
            value = example_spans(ex) if ex.tags is not None else ex.label
            add_annotation(s, text_id, task, value, "bench")
    return len(picked)


def warm_base_answers(home: Path) -> float:
    """The base version's test answers into the answer cache (what training stores at registration)."""
    from mtl_core.eval.compare import cached_answers
    from mtl_core.workspace import data_cache_dir

    t0 = time.perf_counter()
    reg = Registry(home)
    model, tok, task_file, meta = load_checkpoint(reg.path_of(reg.active))
    model.set_attention(eager=False)
    seed = int(meta["train_config"].get("data_seed", meta["train_config"].get("seed", 0)))
    prepared = prepare_all(task_file, data_cache_dir(home), seed=seed)
    sets = {n: prepared[n]["test"] for n in model.tasks if prepared.get(n, {}).get("test")}
    cached_answers(home, reg.active, ModelRunner.of(model, tok, "cpu"), sets)
    return time.perf_counter() - t0


class EtaRecorder(PrintReporter):
    """Keeps every progress report with its time: what the Train page showed, to check its time left."""

    def __init__(self):
        super().__init__(verbose=False)
        self.reports: list[tuple[float, int, str]] = []

    def progress(self, step: int, total: int | None = None, message: str | None = None) -> None:
        self.reports.append((time.perf_counter(), step, message or ""))

    def eta_check(self, end: float, at_permille: int = 100) -> tuple[float, float] | None:
        """(time left the page said, time it took) at the first report past `at_permille` of the work."""
        for t, step, message in self.reports:
            m = re.search(r"about (?:(\d+)m )?(\d+)s left", message)
            if step >= at_permille and m:
                return 60 * int(m.group(1) or 0) + int(m.group(2)), end - t
        return None


def one_round(home: Path, strategy: str, settings: dict) -> dict:
    cfg = replace(RoundConfig(strategy=strategy), **settings)
    t0 = time.perf_counter()
    recorder = EtaRecorder()
    out = run_round(home, "v0001", cfg, reporter=recorder)
    wall = time.perf_counter() - t0
    eta = recorder.eta_check(time.perf_counter())
    corr = out.comparison["corrections"]["counts"]
    n = sum(c["n"] for c in corr.values())
    wrong_before = sum(c["n"] - c["right_old"] for c in corr.values())
    fixed = sum(c["fixed"] for c in corr.values())
    weights = out.comparison.get("corrections_weights_only", {})
    test = out.comparison["test"]
    deltas = {t: 100 * row["delta"] for t, row in test["tasks"].items()}
    memory_keys = {t: m.get("keys", 0) for t, m in out.comparison.get("edit_memory", {}).items()}
    return {"version": out.version, "strategy": strategy, "n": n, "wrong_before": wrong_before, "fixed": fixed,
            "right_after": sum(c["right_new"] for c in corr.values()),
            "weights_only": sum(c["right_new"] for c in weights.values()),
            "memory_keys": memory_keys, "deltas": deltas, "wall": wall,
            "timings": out.timings, "config": asdict(cfg), "per_task_fixed": corr,
            "test_fixed": test["n_fixed"], "test_broken": test["n_broken"], "nfr": flip_rates(test), "eta": eta,
            "first_report": recorder.reports[0][0] - t0 if recorder.reports else None}


def toggle_punctuation(text: str) -> str:
    return text.rstrip(" .!?") if text.rstrip()[-1:] in ".!?" else text + " ."


def drop_first_word(text: str) -> str:
    words = text.split()
    return " ".join(words[1:]) if len(words) > 2 else text


EDITS = {"punctuation toggled": toggle_punctuation, "first word dropped": drop_first_word}


def edited_corrections(home: Path, version: str, picked: list) -> dict[str, dict[str, float]]:
    """Share of lightly edited sentence-task corrections the new version gets right, with and without memory."""
    model, tok, _, _ = load_checkpoint(Registry(home).path_of(version))
    model.set_attention(eager=False)
    runner = ModelRunner.of(model, tok, "cpu")
    out = {}
    for name, edit in EDITS.items():
        shares = {}
        for label, memory in (("with memory", dict(model.memory)), ("weights only", {})):
            model.memory.clear()
            model.memory.update(memory)
            right = total = 0
            for task, ex in picked:
                spec = model.tasks[task]
                if spec.kind == "token_classification" or edit(ex.text) == ex.text:
                    continue
                variant = type(ex)(text=edit(ex.text), label=ex.label)
                answer = predict_answers(runner, spec, [variant])[0]
                right += is_right(spec.kind, ex.label, answer)
                total += 1
            shares[label] = right / max(1, total)
        out[name] = shares
    return out


def table(rows: list[dict], header: str) -> str:
    tasks = list(dict.fromkeys(t for r in rows for t in r["deltas"]))
    lines = [header, "",
             "| strategy | corrections right after | by the weights alone | edit memory keys | test fixed / broken | "
             "worst NFR | worst test change | " + " | ".join(f"{t} Δ (NFR)" for t in tasks)
             + " | wall time | train | evaluate | time left at 10 %: said / took | targets |",
             "|---|---|---|---|---|---|---|" + "---|" * len(tasks) + "---|---|---|---|---|"]
    for r in rows:
        worst_task = min(r["deltas"], key=r["deltas"].get)
        worst = r["deltas"][worst_task]
        share = r["right_after"] / r["n"] if r["n"] else 0.0
        nfr_task = max(r["nfr"], key=r["nfr"].get)
        weights = r["weights_only"] / r["n"] if r["n"] else 0.0
        ok = (share >= TARGET_FIXED and worst >= -TARGET_DROP and r["wall"] <= TARGET_SECONDS
              and weights >= TARGET_WEIGHTS and r["nfr"][nfr_task] <= MAX_NFR and r["test_broken"] <= r["test_fixed"]
              and r["eta"] is not None and abs(r["eta"][0] / r["eta"][1] - 1) <= TARGET_ETA)
        ev = r["timings"].get("evaluate_old", 0) + r["timings"].get("evaluate_new", 0)
        lines.append(
            f"| {r['strategy']} | {r['right_after']}/{r['n']} ({share:.0%}) | {r['weights_only']}/{r['n']} "
            f"({weights:.0%}) | {sum(r['memory_keys'].values())} | {r['test_fixed']} / {r['test_broken']} | "
            f"{r['nfr'][nfr_task]:.1%} ({nfr_task}) | "
            f"{worst:+.2f} ({worst_task}) | "
            + " | ".join(f"{r['deltas'].get(t, 0):+.2f} ({r['nfr'].get(t, 0):.1%})" for t in tasks)
            + f" | {r['wall']:.0f} s | {r['timings'].get('train', 0):.0f} s | {ev:.0f} s | "
            + (f"{r['eta'][0]:.0f} s / {r['eta'][1]:.0f} s ({r['eta'][0] / r['eta'][1] - 1:+.0%}) | " if r["eta"] else "— | ")
            + ("all met" if ok else "MISSED") + " |")
    fixed_by_task = rows[0]["per_task_fixed"] if rows else {}
    lines += ["", "Corrections per task: " + ", ".join(f"{t} {c['n']}" for t, c in fixed_by_task.items())
              + f". Targets: >= {TARGET_FIXED:.0%} of corrections right after the round and >= "
              f"{TARGET_WEIGHTS:.0%} by the weights alone, negative flip rate (NFR: test examples the base got right "
              f"and the round's model gets wrong, per task) <= {MAX_NFR:.0%} on every task and broken <= fixed, the "
              f"time left shown at 10 % of the round's work within {TARGET_ETA:.0%} of the time it then took, no "
              "task's primary "
              f"test metric down by more than {TARGET_DROP:g} point, <= {TARGET_SECONDS:.0f} s per round "
              "(load + evaluation of the corrections and the new model + training + save; the base version's "
              "test answers come from the answer cache, where training put them). NER memory keys are words."]
    lines += ["", "Lightly edited corrections (sentence tasks; the edit memory should carry over to near-duplicates, "
              "the weights alone show what was learnt):", "",
              "| strategy | " + " | ".join(f"{e}: with memory | {e}: weights only" for e in EDITS) + " |",
              "|---|" + "---|---|" * len(EDITS)]
    for r in rows:
        lines.append(f"| {r['strategy']} | " + " | ".join(
            f"{r['edited'][e]['with memory']:.0%} | {r['edited'][e]['weights only']:.0%}" for e in EDITS) + " |")
    return "\n".join(lines)


def write_section(text: str) -> None:
    replace_section(HEADING, text)


def main() -> int:
    args = _args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n = args.n or (60 if args.quick else 200)
    src = source_home(args.home)
    home, base = scratch_workspace(src)
    os.environ["MTL_STUDIO_HOME"] = str(home)
    os.environ.pop("MTL_STUDIO_DATABASE_URL", None)  # the scratch store is a SQLite file in the temp home
    print(f"# learning loop: base {base} from {src}; scratch workspace {home}; torch threads "
          f"{torch.get_num_threads()}; {os.cpu_count()} CPUs", flush=True)
    try:
        picked = wrong_dev_examples(home, n, 300 if args.quick else None)
        print(f"corrections: {add_corrections(home, picked)} wrong dev examples", flush=True)
        print(f"base test answers cached in {warm_base_answers(home):.0f} s (as training does)", flush=True)
        rows, settings = [], round_overrides(args.set, args.steps)
        for strategy in args.strategies:
            print(f"round: {strategy} …", flush=True)
            rows.append(one_round(home, strategy, settings))
            r = rows[-1]
            r["edited"] = edited_corrections(home, r["version"], picked)
            print(f"  {strategy}: {r['right_after']}/{r['n']} right after, {r['weights_only']} by the weights, "
                  f"test fixed {r['test_fixed']} / broken {r['test_broken']}, NFR "
                  + ", ".join(f"{t} {v:.1%}" for t, v in r["nfr"].items())
                  + f"; worst Δ {min(r['deltas'].values()):+.2f} pts, {r['wall']:.0f} s, timings {r['timings']}",
                  flush=True)
        cfg = replace(RoundConfig(), **settings)
        header = (f"`python bench/quality/learning_loop.py{' --quick' if args.quick else ''}` — base {base}, "
                  f"{len(picked)} corrections from wrong dev examples; default RoundConfig (steps {cfg.steps}, "
                  f"replay {cfg.replay_ratio:g}/correction, upsample {cfg.correction_upsample}); "
                  + (f"; overrides {' '.join(args.set)}" if args.set else "")
                  + f"; {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}"
                  + (" — QUICK dev run" if args.quick else ""))
        text = table(rows, header)
        print()
        print(text)
        if not args.no_write:
            write_section(text)
            print(f"\nwritten to {RESULTS.relative_to(ROOT)} ({HEADING})")
    finally:
        if args.keep:
            print(f"scratch workspace kept: {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
