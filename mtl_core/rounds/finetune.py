"""Fine-tuning rounds: learn from the corrections in the store without forgetting the rest.

A round runs in phases: load (base version, data, corrections), answer old (the base on the frozen
test splits and on the corrections), train (corrections + replay, `round_data`), edit memory,
answer new, save. It registers the result as a new, *inactive* version whose parent is the base.
Promotion is the user's call (Registry.activate); a round never activates anything. A round may also join
workspace tasks the base has no head for (`RoundConfig.new_tasks`, `join.py`): the new version has a head for each.

Runs in the background worker as job kind "train_round" (params: RoundConfig fields + base_version),
or in-process through `run_round` (benchmarks, tests).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mtl_core.data import prepare_all
from mtl_core.eval.compare import answers_cached, answers_for, cached_answers, compare_answers, store_answers
from mtl_core.model.applicability_fit import fit_applicability, train_texts
from mtl_core.model.checkpoint import load_checkpoint, save_checkpoint
from mtl_core.model.edit_memory import attach_round_memory
from mtl_core.model.new_heads import add_heads
from mtl_core.model.registry import Registry
from mtl_core.model.runner import ModelRunner
from mtl_core.progress import Cancelled, JobRun, PrintReporter, Reporter
from mtl_core.rounds.blend import blend_towards, snapshot
from mtl_core.rounds.config import STRATEGIES, RoundConfig
from mtl_core.rounds.join import applicability_texts, check_round_data, extend_task_file, with_test_sets
from mtl_core.rounds.pace import SAVE_UNITS, STATE_UNITS, TRAIN_UNITS, RoundPace
from mtl_core.rounds.round_data import RoundData, build_round_data, load_corrections
from mtl_core.rounds.warm_start import warm_start_heads
from mtl_core.store.db import Sessions, open_store
from mtl_core.tasks import TaskFile, TaskSpec
from mtl_core.train.loop import TrainResult, train
from mtl_core.workspace import data_cache_dir

if TYPE_CHECKING:  # annotations only: no import cost or cycle at run time
    from mtl_core.model.modeling import MultiTaskModel

ROUND_FIT_TEXTS = 200  # training texts per task for refitting applicability after a round

__all__ = ["STRATEGIES", "RoundConfig", "RoundResult", "run_round", "train_round_job"]


@dataclass
class RoundResult:
    """What a round did; `to_dict()` is the job's JSON result (the Train page reads it)."""

    version: str  # the new, inactive version
    base_version: str
    strategy: str
    n_corrections: int
    counts: dict  # task -> {"corrections", "replay", ...} examples in the round's data
    skipped: dict  # reason -> corrections that could not be used
    best_step: int
    stopped: str  # TrainResult.stopped
    timings: dict[str, float]  # seconds per phase + "total"
    comparison: dict  # "test", "corrections", "corrections_weights_only", "edit_memory", "regressions"
    joined: list[str] = field(default_factory=list)  # new tasks the round gave a head (RoundConfig.new_tasks)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Round:
    """State handed from phase to phase."""

    cfg: RoundConfig
    reg: Registry
    base: str
    runner: ModelRunner
    task_file: TaskFile
    data_seed: int
    data: RoundData
    test_sets: dict[str, list]
    train_texts: dict[str, list[str]] = field(default_factory=dict)  # refits applicability after training
    answers: dict[str, dict] = field(default_factory=dict)  # "old_test", "old_corr", "weights_corr", ...
    memory: dict = field(default_factory=dict)  # task -> edit-memory stats
    result: TrainResult | None = None
    phases: dict[str, float] = field(default_factory=dict)
    joined: list[TaskSpec] = field(default_factory=list)  # new tasks: their heads are added before training


def run_round(home: str | Path | None = None, base_version: str | None = None, cfg: RoundConfig | None = None,
              sessions: Sessions | None = None, reporter: Reporter | None = None, note: str = "",
              data_dir: str | None = None) -> RoundResult:
    """One fine-tuning round; registers the new version (inactive). `Cancelled` if the user cancels."""
    cfg = cfg or RoundConfig()
    reporter = RoundPace(reporter or PrintReporter())  # one bar over every phase, with an ETA (pace.py)
    started = time.perf_counter()
    r = _load(home, base_version, cfg, sessions, reporter, data_dir)
    r.phases["load"] = round(time.perf_counter() - started, 3)
    _plan(r, reporter)
    _timed("evaluate_old", r, lambda: _answer_old(r, reporter))
    _timed("train", r, lambda: _train(r, reporter))
    _timed("edit_memory", r, lambda: _edit_memory(r, reporter))
    comparison = _timed("evaluate_new", r, lambda: _answer_new(r, reporter))
    version = _timed("save", r, lambda: _save(r, comparison, note, reporter))
    timings = {**r.phases, "total": round(time.perf_counter() - started, 3)}
    reporter.log(f"registered {version} (inactive) in {timings['total']:.0f}s")
    assert r.result is not None
    return RoundResult(version=version, base_version=r.base, strategy=cfg.strategy,
                       n_corrections=len(r.data.correction_ids), counts=r.data.counts, skipped=r.data.skipped,
                       best_step=r.result.best_step, stopped=r.result.stopped, timings=timings,
                       comparison=comparison, joined=[t.name for t in r.joined])


def _plan(r: _Round, pace: RoundPace) -> None:
    """Each phase's work in forward units (pace.py), from the round's size: the ETA's basis."""
    cfg, n_corr = r.cfg, sum(len(v) for v in r.data.corrections.values())
    n_tasks = len(r.task_file.tasks)
    old_sets = {t: exs for t, exs in r.test_sets.items() if t in r.runner.model.tasks}
    cached = answers_cached(r.reg.home, r.base, old_sets)
    n_train = sum(c.get("train", 0) for c in r.data.counts.values())
    pace.plan(evaluate_old=n_corr + (0 if cached else sum(map(len, old_sets.values()))),
              prepare=n_train * (2.0 if cfg.distill > 0 else 0.5),  # tokenising, the old model's replay targets
              train=cfg.steps * cfg.batch_size * TRAIN_UNITS + cfg.dev_size * n_tasks,
              edit_memory=STATE_UNITS * (n_corr + (2 * cfg.memory_refs * n_tasks if cfg.edit_memory else 0)),
              evaluate_new=sum(map(len, r.test_sets.values())) + (n_corr if cfg.edit_memory else 0),
              save=STATE_UNITS * ROUND_FIT_TEXTS * n_tasks + SAVE_UNITS)


def _timed(phase: str, r: _Round, fn):
    t = time.perf_counter()
    out = fn()
    r.phases[phase] = round(time.perf_counter() - t, 3)
    return out


def _load(home, base_version: str | None, cfg: RoundConfig, sessions: Sessions | None, reporter: Reporter,
          data_dir: str | None) -> _Round:
    """The base version, its data splits and the store's corrections, as the round's data."""
    reg = Registry(home)
    base = base_version or reg.active
    if base is None:
        raise ValueError("no model version to fine-tune: train a model first")
    reg.get(base)  # KeyError naming an unknown version
    reporter.check_cancelled()
    reporter.progress(0, 1000, f"loading {base} and the data")
    model, tokenizer, base_tasks, meta = load_checkpoint(reg.path_of(base))
    task_file, joined = extend_task_file(reg.home, base_tasks, cfg.new_tasks)
    data_seed = int(meta["train_config"].get("data_seed", meta["train_config"].get("seed", 0)))
    prepared = prepare_all(task_file, data_cache_dir(reg.home), seed=data_seed, base_dir=data_dir)
    sessions = sessions or open_store(reg.home)[1]
    with sessions() as s:
        corrections = load_corrections(s)  # every task's: held-out test sets (join.py) need them
    prepared, test_sets = with_test_sets(task_file, prepared, corrections)
    names = [t.name for t in joined]
    tasks = None if cfg.tasks is None else cfg.tasks + names  # a joined task's labels are always used
    data = build_round_data(task_file, prepared, corrections, tasks=tasks, replay_ratio=cfg.replay_ratio,
                            upsample=cfg.correction_upsample, min_replay=cfg.min_replay,
                            replay_all_tasks=cfg.replay_all_tasks, stream_size=cfg.steps * cfg.batch_size,
                            seed=cfg.seed, joined=tuple(names))
    check_round_data(data, joined, len(corrections))
    reporter.log(f"round data: {json.dumps(data.counts)}; skipped {json.dumps(data.skipped)}"
                 + (f"; joining {names}" if names else ""))
    runner = ModelRunner.of(model, tokenizer, cfg.device)
    model.set_attention(eager=False)  # SDPA: no attention weights needed, faster
    return _Round(cfg, reg, base, runner, task_file, data_seed, data, test_sets,
                  applicability_texts(train_texts(prepared), data), joined=joined)


def _answer_old(r: _Round, reporter: RoundPace) -> None:
    """The base's answers on the test splits (cached per version) and on the corrections."""
    reporter.phase("evaluate_old", f"answering the corrections with {r.base}")
    # the base's tasks only: the cache key stays the one of rounds without new tasks
    old_sets = {t: exs for t, exs in r.test_sets.items() if t in r.runner.model.tasks}
    r.answers["old_test"] = cached_answers(r.reg.home, r.base, r.runner, old_sets)
    r.answers["old_corr"] = answers_for(r.runner, r.data.corrections)
    r.runner.model.memory.clear()  # the base's edits: the round trains the network itself, and rebuilds them after


def _train(r: _Round, reporter: RoundPace) -> None:
    reporter.check_cancelled()
    reporter.phase("prepare", "preparing the training data")  # the loop's first step starts "train" (pace.py)
    model = r.runner.model
    base = snapshot(model) if r.cfg.weight_blend < 1 else {}  # before the joined heads: they are kept whole
    add_heads(model, r.joined, seed=r.cfg.seed)  # after the old answers: the base has no head for them
    if r.joined:  # linear probe first (warm_start.py): a random head would distort the encoder and learn little
        probes = warm_start_heads(r.runner, r.joined, {t.name: list(dict.fromkeys(r.data.prepared[t.name]["train"]))
                                                       for t in r.joined}, seed=r.cfg.seed)
        reporter.log(f"new heads fitted on the frozen encoder first: {json.dumps(probes)}")
    if r.cfg.strategy == "lora":
        _add_lora(model, r.cfg)
    r.result = train(model, r.runner.tokenizer, r.task_file, r.data.prepared, r.cfg.train_config(),
                     reporter=reporter, progress=False)
    if r.result.stopped == "cancelled":
        raise Cancelled()
    if r.cfg.strategy == "lora":
        model.encoder = model.encoder.merge_and_unload()
    blend_towards(model, base, r.cfg.weight_blend)


def _edit_memory(r: _Round, reporter: RoundPace) -> None:
    """Corrections the new weights still get wrong go into the edit memory (`edit_memory.py`)."""
    reporter.phase("edit_memory", "checking the corrections with the new weights")
    r.answers["weights_corr"] = answers_for(r.runner, r.data.corrections)
    if r.cfg.edit_memory:
        r.memory = attach_round_memory(r.runner, r.data.corrections, r.data.prepared, r.cfg.memory_radius,
                                       r.cfg.memory_refs)


def _answer_new(r: _Round, reporter: RoundPace) -> dict:
    """The new model's answers and the old-vs-new comparison (test splits, corrections)."""
    reporter.phase("evaluate_new", "evaluating the new model on the test splits")
    specs = r.runner.model.tasks
    a = r.answers
    a["new_test"] = answers_for(r.runner, r.test_sets)
    # the weights' answers already are the new ones unless an edit memory was attached
    a["new_corr"] = answers_for(r.runner, r.data.corrections) if len(r.runner.model.memory) else a["weights_corr"]
    corr = r.data.corrections
    comparison = {
        "test": compare_answers(specs, r.test_sets, a["old_test"], a["new_test"], "test"),
        "corrections": compare_answers(specs, corr, a["old_corr"], a["new_corr"], "corrections"),
        "corrections_weights_only": compare_answers(specs, corr, a["old_corr"], a["weights_corr"],
                                                    "corrections")["counts"],
        "edit_memory": r.memory,
    }
    comparison["regressions"] = comparison["test"]["regressions"]
    return comparison


def _save(r: _Round, comparison: dict, note: str, reporter: RoundPace) -> str:
    """Register the new version (inactive) and cache its test answers; -> its id."""
    reporter.check_cancelled()
    reporter.phase("save", "refitting applicability and saving the new version")
    cfg, data = r.cfg, r.data
    assert r.result is not None
    summary = {task: round(row["new"], 4) for task, row in comparison["test"]["tasks"].items()}
    extra = {
        "kind": "round",
        "corrections": data.correction_ids,
        "correction_counts": {task: c["corrections"] for task, c in data.counts.items() if c["corrections"]},
        "data_counts": data.counts,
        "skipped": data.skipped,
        "round_config": asdict(cfg),
        "edit_memory": {task: st.get("keys", 0) for task, st in r.memory.items()},
        "base_metrics": {task: round(row["old"], 4) for task, row in comparison["test"]["tasks"].items()
                         if row["old"] is not None},  # a joined task has no old metric
        "joined": [t.name for t in r.joined],
    }
    metrics = {"test": {"tasks": {k: {"primary": v} for k, v in summary.items()}},
               "corrections": comparison["corrections"]["counts"], "history": r.result.history}
    train_config = {**asdict(cfg.train_config()), "data_seed": r.data_seed, "round_config": asdict(cfg),
                    "parent": r.base}
    staging = r.reg.staging_dir("round")
    n_corr = len(data.correction_ids)
    joins = f", joins {', '.join(t.name for t in r.joined)}" if r.joined else ""
    note = note or f"round from {r.base}: {n_corr} corrections ({cfg.strategy}){joins}"
    # the encoder moved: the base's applicability no longer fits its representation (fewer texts than after
    # training: a round has a 120 s budget; ~10 s on 2 CPU cores)
    r.runner.model.applicability = fit_applicability(r.runner.model, r.runner.tokenizer, r.train_texts,
                                                     n=ROUND_FIT_TEXTS, seed=r.data_seed)
    try:
        save_checkpoint(r.runner.model.cpu(), r.runner.tokenizer, r.task_file, staging,
                        train_config=train_config, metrics=metrics)
        info = r.reg.register(staging, note=note,
                              parent=r.base, metrics=summary, extra=extra, activate=False)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone after register moved it; cleans up on failure
    store_answers(r.reg.home, info.id, r.test_sets, r.answers["new_test"])
    return info.id


def train_round_job(ctx: JobRun) -> dict:
    """Worker entry point (job kind "train_round"): params = RoundConfig fields + base_version (+ note, data_dir)."""
    params = dict(ctx.params)
    base = params.pop("base_version", None)
    note = params.pop("note", "") or ""
    data_dir = params.pop("data_dir", None)
    cfg = RoundConfig.from_params(params)
    ctx.log(f"round config: {json.dumps(asdict(cfg))}")
    return run_round(ctx.home, base, cfg, sessions=ctx.sessions, reporter=ctx, note=note,
                     data_dir=data_dir).to_dict()


def _add_lora(model: MultiTaskModel, cfg: RoundConfig) -> None:
    """Wrap the encoder with peft LoRA adapters (merged back before saving: the checkpoint stays plain)."""
    from peft import LoraConfig, get_peft_model

    targets = ["query", "value"] + (["dense"] if cfg.lora_dense else [])
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules=targets,
                      bias="none")
    model.encoder = get_peft_model(model.encoder, lora)
