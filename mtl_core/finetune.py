"""Fine-tuning rounds: learn from the corrections in the store without forgetting the rest.

A round loads a base version, trains on corrections + replay of the original training data
(`round_data`), evaluates old and new on the frozen test splits and on the corrections (`compare`),
and registers the result as a new, *inactive* version whose parent is the base. Promotion is the
user's call (Registry.activate); a round never activates anything.

Runs in the background worker as job kind "train_round" (params: RoundConfig fields + base_version),
or in-process through `run_round` (benchmarks, tests).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, fields

from .checkpoint import load_checkpoint, save_checkpoint
from .compare import answers_for, cached_answers, compare_answers, store_answers
from .data import prepare_all
from .edit_memory import attach_round_memory
from .inference import pick_device
from .pipeline import data_cache_dir
from .registry import Registry
from .round_data import build_round_data, load_corrections
from .training import Cancelled, TrainConfig, train
from .weighting import SAMPLINGS, WEIGHTINGS
from .worker import JobCancelled, handler, open_store

STRATEGIES = ("full", "freeze", "lora")


@dataclass
class RoundConfig:
    """How a round trains. The defaults fit a 200-correction round in ~2 minutes on a 2-core CPU."""

    tasks: list[str] | None = None  # tasks whose corrections are used; None = every task with corrections
    strategy: str = "full"  # "full": whole encoder; "freeze": lower `freeze_layers` fixed; "lora": adapters
    freeze_layers: int = 3  # "freeze": embeddings + lower K encoder layers stay as they are
    lora_r: int = 8  # "lora": adapter rank on the attention query/value projections
    lora_alpha: int = 16  # "lora": adapter scale (alpha / r)
    lora_dense: bool = False  # "lora": adapt the feed-forward/output dense layers too
    loss_weighting: str = "equal"  # one of weighting.WEIGHTINGS
    sampling: str = "proportional"  # one of weighting.SAMPLINGS; proportional = tasks by round data size
    steps: int = 100  # optimizer steps (fewer, larger batches lost topic points: docs/FINETUNE.md)
    batch_size: int = 16  # small batches: the same number of steps at half the cost of 32
    encoder_lr: float = 3e-5  # encoder rate for "full" / "freeze" (a gentle nudge, not a retrain)
    lora_lr: float = 1e-3  # adapter rate for "lora" (adapters start at zero: they need a higher rate)
    head_lr: float = 3e-4
    replay_ratio: float = 4.0  # original training examples mixed in per correction, so nothing is forgotten
    correction_upsample: int = 1  # each correction appears this many times in the round's data
    distill: float = 1.0  # replay targets: this share of the base model's own answer, the rest gold (0..1)
    edit_memory: bool = True  # keep corrections the new weights still get wrong in an edit memory (edit_memory.py)
    memory_radius: float = 0.1  # largest cosine distance at which a remembered correction applies
    memory_refs: int = 100  # replayed originals (and as many dev examples) per task bounding each key's radius
    min_replay: int = 32  # at least this many replayed originals per task
    replay_all_tasks: bool = True  # replay tasks without corrections too (the encoder is shared)
    dev_size: int = 100  # dev examples per task for the evaluation during training
    eval_every: int | None = None  # steps between dev evaluations; None = once, at the end
    log_every: int = 10  # steps between logged training losses
    seed: int = 0
    device: str | None = None  # None = CUDA when present, else CPU

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"RoundConfig.strategy: {self.strategy!r} not in {STRATEGIES}")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"RoundConfig.sampling: {self.sampling!r} not in {SAMPLINGS}")
        if self.loss_weighting not in WEIGHTINGS:
            raise ValueError(f"RoundConfig.loss_weighting: {self.loss_weighting!r} not in {WEIGHTINGS}")
        if self.tasks is not None:
            if isinstance(self.tasks, str) or not all(isinstance(t, str) for t in self.tasks):
                raise ValueError("RoundConfig.tasks: a list of task names (or None)")
            self.tasks = list(self.tasks)
        for name in ("steps", "batch_size", "lora_r", "lora_alpha", "correction_upsample", "dev_size", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"RoundConfig.{name}: must be >= 1")
        if not 0 < self.memory_radius <= 1:
            raise ValueError("RoundConfig.memory_radius: must be in (0, 1]")
        if self.freeze_layers < 0 or self.min_replay < 0 or self.memory_refs < 0:
            raise ValueError("RoundConfig.freeze_layers/min_replay/memory_refs: must be >= 0")
        if self.eval_every is not None and self.eval_every < 1:
            raise ValueError("RoundConfig.eval_every: must be >= 1 (or None)")
        if not 0 <= self.distill <= 1:
            raise ValueError("RoundConfig.distill: must be in [0, 1]")
        if not 0 <= self.replay_ratio <= 100:
            raise ValueError("RoundConfig.replay_ratio: must be in [0, 100]")
        for name in ("encoder_lr", "lora_lr", "head_lr"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"RoundConfig.{name}: must be in (0, 1)")

    @classmethod
    def from_params(cls, params: dict) -> RoundConfig:
        """From job params (JSON); unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = set(params) - known
        if unknown:
            raise ValueError(f"RoundConfig: unknown setting(s) {sorted(unknown)}")
        return cls(**params)

    def train_config(self) -> TrainConfig:
        lora = self.strategy == "lora"
        return TrainConfig(
            steps=self.steps, batch_size=self.batch_size, encoder_lr=self.lora_lr if lora else self.encoder_lr,
            head_lr=self.head_lr, warmup_ratio=0.1, sampling=self.sampling, loss_weighting=self.loss_weighting,
            eval_every=self.eval_every or self.steps, max_dev=self.dev_size, freeze_embeddings=True,
            freeze_layers=self.freeze_layers if self.strategy == "freeze" else 0, tasks=None, seed=self.seed,
            device=self.device, log_every=self.log_every, distill=self.distill,
        )


class Reporter:
    """Where a round reports to; the worker's JobContext has the same methods. This one prints."""

    def __init__(self, verbose: bool = False):
        self.verbose = verbose

    def progress(self, step: int, total: int | None = None, message: str | None = None) -> None:
        if self.verbose and message:
            print(f"[{step}/{total}] {message}", flush=True)

    def log(self, line: str) -> None:
        if self.verbose:
            print(line, flush=True)

    def metric(self, step: int, name: str, value: float, task: str | None = None) -> None:
        pass

    def check_cancelled(self) -> None:
        pass


@dataclass
class RoundTimer:
    started: float = field(default_factory=time.perf_counter)
    phases: dict[str, float] = field(default_factory=dict)

    def mark(self, phase: str, since: float) -> float:
        now = time.perf_counter()
        self.phases[phase] = round(self.phases.get(phase, 0.0) + now - since, 3)
        return now


def run_round(home=None, base_version: str | None = None, cfg: RoundConfig | None = None, sessions=None,
              reporter=None, note: str = "", data_dir: str | None = None) -> dict:
    """One fine-tuning round; registers the new version (inactive) and returns the result dict."""
    cfg = cfg or RoundConfig()
    reporter = reporter or Reporter()
    timer = RoundTimer()
    reg = Registry(home)
    base = base_version or reg.active
    if base is None:
        raise ValueError("no model version to fine-tune: train a model first")
    reg.get(base)  # KeyError naming an unknown version
    reporter.check_cancelled()
    reporter.progress(0, cfg.steps, f"loading {base} and the data")
    t = time.perf_counter()
    model, tokenizer, task_file, meta = load_checkpoint(reg.path_of(base))
    data_seed = int(meta["train_config"].get("data_seed", meta["train_config"].get("seed", 0)))
    prepared = prepare_all(task_file, data_cache_dir(reg.home), seed=data_seed, base_dir=data_dir)
    sessions = sessions or open_store(reg.home)[1]
    with sessions() as s:
        corrections = load_corrections(s, cfg.tasks)
    data = build_round_data(task_file, prepared, corrections, tasks=cfg.tasks, replay_ratio=cfg.replay_ratio,
                            upsample=cfg.correction_upsample, min_replay=cfg.min_replay,
                            replay_all_tasks=cfg.replay_all_tasks, stream_size=cfg.steps * cfg.batch_size,
                            seed=cfg.seed)
    if not data.correction_ids:
        raise ValueError(f"no usable corrections (found {len(corrections)}; skipped: {data.skipped})")
    reporter.log(f"round data: {json.dumps(data.counts)}; skipped {json.dumps(data.skipped)}")
    t = timer.mark("load", t)

    specs = {name: spec for name, spec in model.tasks.items()}
    test_sets = {n: prepared[n]["test"] for n in specs if prepared.get(n, {}).get("test")}
    device = pick_device(cfg.device)
    max_len = model.config.max_length
    model.to(device).set_attention(eager=False)  # SDPA: no attention weights needed, faster
    reporter.progress(0, cfg.steps, f"evaluating {base} on the test splits")
    old_test = cached_answers(reg.home, base, model, tokenizer, specs, test_sets, device)
    old_corr = answers_for(model, tokenizer, specs, data.corrections, device, max_len)
    model.memory.clear()  # the base's edits: the round trains the network itself, and rebuilds them after
    t = timer.mark("evaluate_old", t)

    reporter.check_cancelled()
    tcfg = cfg.train_config()
    if cfg.strategy == "lora":
        _add_lora(model, cfg)
    result = train(model, tokenizer, task_file, data.prepared, tcfg, callback=_callback(reporter, cfg.steps),
                   progress=False)
    if result.stopped == "cancelled":
        raise JobCancelled()
    if cfg.strategy == "lora":
        model.encoder = model.encoder.merge_and_unload()
    t = timer.mark("train", t)

    weights_corr = answers_for(model, tokenizer, specs, data.corrections, device, max_len)
    memory = (attach_round_memory(model, tokenizer, data.corrections, data.prepared, device, max_len,
                                  cfg.memory_radius, cfg.memory_refs) if cfg.edit_memory else {})
    t = timer.mark("edit_memory", t)

    reporter.progress(cfg.steps, cfg.steps, "evaluating the new model")
    new_test = answers_for(model, tokenizer, specs, test_sets, device, max_len)
    # the weights' answers already are the new ones unless an edit memory was attached
    new_corr = weights_corr
    if len(model.memory):
        new_corr = answers_for(model, tokenizer, specs, data.corrections, device, max_len)
    comparison = {
        "test": compare_answers(specs, test_sets, old_test, new_test, "test"),
        "corrections": compare_answers(specs, data.corrections, old_corr, new_corr, "corrections"),
        "corrections_weights_only": compare_answers(specs, data.corrections, old_corr, weights_corr,
                                                    "corrections")["counts"],
        "edit_memory": memory,
    }
    comparison["regressions"] = comparison["test"]["regressions"]
    t = timer.mark("evaluate_new", t)

    reporter.check_cancelled()
    reporter.progress(cfg.steps, cfg.steps, "saving the new version")
    summary = {task: round(row["new"], 4) for task, row in comparison["test"]["tasks"].items()}
    n_corr = len(data.correction_ids)
    extra = {
        "kind": "round",
        "corrections": data.correction_ids,
        "correction_counts": {task: c["corrections"] for task, c in data.counts.items() if c["corrections"]},
        "data_counts": data.counts,
        "skipped": data.skipped,
        "round_config": asdict(cfg),
        "edit_memory": {task: st.get("keys", 0) for task, st in memory.items()},
        "base_metrics": {task: round(row["old"], 4) for task, row in comparison["test"]["tasks"].items()},
    }
    metrics = {"test": {"tasks": {k: {"primary": v} for k, v in summary.items()}},
               "corrections": comparison["corrections"]["counts"], "history": result.history}
    staging = reg.staging_dir("round")
    try:
        save_checkpoint(model.cpu(), tokenizer, task_file, staging,
                        train_config={**asdict(tcfg), "data_seed": data_seed, "round_config": asdict(cfg),
                                      "parent": base},
                        metrics=metrics)
        info = reg.register(staging, note=note or f"round from {base}: {n_corr} corrections ({cfg.strategy})",
                            parent=base, metrics=summary, extra=extra, activate=False)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone after register moved it; cleans up on failure
    store_answers(reg.home, info.id, test_sets, new_test)
    timer.mark("save", t)
    timings = {**timer.phases, "total": round(time.perf_counter() - timer.started, 3)}
    reporter.log(f"registered {info.id} (inactive) in {timings['total']:.0f}s")
    return {"version": info.id, "base_version": base, "strategy": cfg.strategy, "n_corrections": n_corr,
            "counts": data.counts, "skipped": data.skipped, "best_step": result.best_step,
            "stopped": result.stopped, "timings": timings, "comparison": comparison}


@handler("train_round")
def train_round_job(ctx) -> dict:
    """Worker entry point: params = RoundConfig fields + base_version (+ note, data_dir)."""
    params = dict(ctx.params)
    base = params.pop("base_version", None)
    note = params.pop("note", "") or ""
    data_dir = params.pop("data_dir", None)
    cfg = RoundConfig.from_params(params)
    ctx.log(f"round config: {json.dumps(asdict(cfg))}")
    return run_round(ctx.home, base, cfg, sessions=ctx.sessions, reporter=ctx, note=note, data_dir=data_dir)


def _callback(reporter, total: int):
    def callback(event: dict) -> None:
        try:
            reporter.check_cancelled()
        except JobCancelled:
            raise Cancelled() from None
        step = int(event.get("step", 0))
        if event.get("phase") == "train":
            reporter.progress(step, total, f"training: step {step}/{total}")
            for task, value in (event.get("loss") or {}).items():
                reporter.metric(step, "train_loss", value, task)
        elif event.get("phase") == "eval":
            for task, value in (event.get("dev") or {}).items():
                reporter.metric(step, "dev", value, task)
            reporter.metric(step, "dev_average", event.get("dev_average", 0.0))

    return callback


def _add_lora(model, cfg: RoundConfig) -> None:
    """Wrap the encoder with peft LoRA adapters (merged back before saving: the checkpoint stays plain)."""
    from peft import LoraConfig, get_peft_model

    targets = ["query", "value"] + (["dense"] if cfg.lora_dense else [])
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules=targets,
                      bias="none")
    model.encoder = get_peft_model(model.encoder, lora)
