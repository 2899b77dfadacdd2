"""The first-run job "train_default": a quick model to use at once, then the default model if it does better.

The app launches it when the workspace has no active model (app/shared/bootstrap_service.py). Phase 1 trains
the `--quick` recipe and activates it as soon as it is registered (~3 min on 2 CPU cores); phase 2 trains the
default recipe (~15 min), registers it inactive and activates it only if it beats the quick model on the same
dev examples. One progress bar spans both phases; phase 2's steps continue phase 1's on the job's curves. A
cancel or a failure leaves what is registered as it is: a quick model already active stays active.

Params (all optional; tests shrink the recipes): `task_file`, `model` (ModelConfig fields), `train` (TrainConfig
fields of both phases), `quick` and `default` (TrainConfig fields of one phase, over the recipe).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from mtl_core.eval.metrics import evaluate
from mtl_core.model.checkpoint import load_checkpoint
from mtl_core.model.device import pick_device
from mtl_core.model.modeling import ModelConfig
from mtl_core.model.registry import Registry, VersionInfo
from mtl_core.model.runner import ModelRunner
from mtl_core.progress import Cancelled, JobRun, fmt_seconds
from mtl_core.tasks import DEFAULT_TASK_FILE
from mtl_core.train.loop import TrainConfig
from mtl_core.train.pipeline import QUICK, prepare, train_new_version
from mtl_core.train.recipe import with_recipe

JOB_KIND = "train_default"
QUICK_NOTE = "quick model (first run)"
DEFAULT_NOTE = "default model"
PHASE_METRIC = "phase"  # a job metric at the first step of phase 2 (value 2): where the curves start over
# The bar counts training examples (steps x batch size), the work that dominates each phase. After its last
# step a phase still evaluates on test, fits applicability and saves; phase 2 also compares on dev: ~100 s on
# 2 CPU cores (docs/RESULTS.md, "where the time went"), as long as ~8,000 examples of training at ~12 ms each.
# Without it the quick phase would be 7 % of the bar for ~16 % of the time, and the first ETA far too long.
TAIL_UNITS = 8000
COMPARE_UNITS = 2000  # after phase 2: both models scored on dev, ~13 s each


class _Stopped(Exception):
    """Cancel inside a phase. Not `Cancelled`, which `train()` catches to go on and register the weights so far:
    this one leaves the phase at once, with nothing registered."""


@dataclass
class Phase:
    name: str  # "quick model" / "default model": the start of every progress message
    config: TrainConfig
    note: str  # the registered version's note (Models page)
    first_unit: int  # where on the job's bar it starts
    step_offset: int  # added to its steps on the job's curves

    @property
    def units(self) -> int:
        return self.config.steps * self.config.batch_size + TAIL_UNITS


class Pace:
    """Seconds per unit of the bar, measured from the first training step on: reading and tokenising the data
    before it has no units, and counted in, made the first estimates three times too long."""

    def __init__(self, clock=time.perf_counter):
        self.clock, self.first = clock, None

    def time_left(self, done: int, total: int) -> float | None:
        now = self.clock()
        if self.first is None:
            self.first = (now, done)
            return None
        t0, d0 = self.first
        if done <= d0 or now - t0 < 5:  # a few seconds of steps before a figure worth showing
            return None
        return (now - t0) / (done - d0) * max(0, total - done)


class _PhaseReporter:
    """The job's Reporter as one phase's training sees it: its steps mapped onto the whole job's bar and curves."""

    def __init__(self, ctx: JobRun, phase: Phase, total_units: int, pace: Pace):
        self.ctx, self.phase, self.total, self.pace = ctx, phase, total_units, pace

    def progress(self, step: int, total: int | None = None, message: str | None = None) -> None:
        steps = self.phase.config.steps
        done = self.phase.first_unit + min(step, steps) * self.phase.config.batch_size
        tail = " (evaluating and saving)" if step >= steps else ""
        left = self.pace.time_left(done, self.total)
        said = f" · about {fmt_seconds(left)} left" if left is not None else " · estimating the time left"
        self.ctx.progress(done, self.total, f"{self.phase.name}: step {step}/{steps}{tail}{said}")

    def log(self, line: str) -> None:
        self.ctx.log(f"{self.phase.name}: {line}")

    def metric(self, step: int, name: str, value: float, task: str | None = None) -> None:
        self.ctx.metric(self.phase.step_offset + step, name, value, task)

    def check_cancelled(self) -> None:
        try:
            self.ctx.check_cancelled()
        except Cancelled as exc:
            raise _Stopped() from exc


def recipes(params: dict) -> tuple[TrainConfig, TrainConfig]:
    """(quick, default) training configs: the `--quick` recipe (as `train_new_version(quick=True)` builds it)
    and TrainConfig's defaults, each with the job's overrides."""
    base = TrainConfig(**(params.get("train") or {}))
    quick = replace(base, **{**QUICK, **(params.get("quick") or {})})
    default = replace(base, **(params.get("default") or {}))
    return quick, default


def train_default_job(ctx: JobRun) -> dict:
    """The worker's handler for JOB_KIND; -> the versions trained, both dev scores and the decision."""
    reg = Registry(ctx.home)
    if reg.active is not None:
        said = f"{reg.active} is already active: nothing to train"
        ctx.log(said)
        ctx.progress(1, 1, said)
        return {"skipped": said, "active": reg.active}
    params = ctx.params or {}
    task_file = params.get("task_file") or str(DEFAULT_TASK_FILE)
    train_over, model_over = with_recipe(ctx.home, params.get("train") or {}, params.get("model") or {})
    params = {**params, "train": train_over}
    model_config = ModelConfig(**model_over)
    quick_cfg, default_cfg = recipes(params)
    quick = Phase("quick model", quick_cfg, QUICK_NOTE, 0, 0)
    default = Phase("default model", default_cfg, DEFAULT_NOTE, quick.units, quick_cfg.steps)
    total = quick.units + default.units + COMPARE_UNITS

    pace = Pace()
    quick_v = _train(ctx, quick, total, task_file, model_config, pace, done_at=quick.units)
    if reg.active == quick_v.id:  # registering activates it when nothing is active; never over another choice
        ctx.log(f"{quick_v.id} ({QUICK_NOTE}) is active; training the default model next")
    ctx.check_cancelled()  # between the phases: Cancelled ends the job here, the quick model stays
    ctx.metric(default.step_offset, PHASE_METRIC, 2.0)
    default_v = _train(ctx, default, total, task_file, model_config, pace, done_at=total - COMPARE_UNITS)
    ctx.progress(total - COMPARE_UNITS, total, "comparing the two models on dev")
    _, prepared = prepare(task_file, ctx.home, seed=default_cfg.seed)
    cap = default_cfg.max_dev
    scores = {v.id: dev_average(ctx.home, v.id, prepared, cap, default_cfg.device) for v in (quick_v, default_v)}
    decision = _decide(reg, quick_v.id, default_v.id, scores)
    ctx.log(decision)
    ctx.progress(total, total, decision)
    return {"quick": quick_v.id, "default": default_v.id, "dev_average": scores, "dev_examples_per_task": cap,
            "active": reg.active, "decision": decision}


def _train(ctx: JobRun, phase: Phase, total: int, task_file: str, model_config: ModelConfig, pace: Pace,
           done_at: int) -> VersionInfo:
    ctx.progress(phase.first_unit, total, f"{phase.name}: preparing data")
    try:
        info, report = train_new_version(task_file, model_config, phase.config, home=ctx.home, note=phase.note,
                                         activate=False, reporter=_PhaseReporter(ctx, phase, total, pace), progress=False)
    except _Stopped:
        ctx.log(f"{phase.name}: cancelled, nothing registered")
        raise Cancelled() from None
    ctx.log(f"{phase.name}: registered {info.id} (best dev step {report['best_step']}, "
            f"test average {report['test']['average']:.4f})")
    ctx.progress(done_at, total, f"{phase.name}: {info.id} registered")
    return info


def dev_average(home, version: str, prepared: dict, cap: int | None, device: str | None = None) -> float:
    """Mean primary dev metric of a registered version on the first `cap` dev examples of every task.

    Both models are scored here from their saved checkpoints on exactly the same examples (the training loop's
    own dev scores are not comparable: the quick recipe caps dev at 300 examples, the default at 1000), with
    the first `cap` of each split as the loop takes them; ~13 s per model at cap 1000 on 2 CPU cores, against
    ~1 min for `evaluate_version(split="dev")` over whole splits."""
    dev = pick_device(device)
    model, tokenizer, task_file, _ = load_checkpoint(Registry(home).path_of(version), device=dev)
    examples = {t.name: {"dev": prepared.get(t.name, {}).get("dev", [])[:cap]} for t in task_file.tasks}
    runner = ModelRunner(model, tokenizer, dev, model.config.max_length)
    return float(evaluate(runner, task_file, examples, "dev")["average"])


def _decide(reg: Registry, quick: str, default: str, scores: dict[str, float]) -> str:
    """Activate the default model if it beats the quick one on dev; -> the decision, said in one line."""
    q, d = scores[quick], scores[default]
    if reg.active != quick:  # someone activated another version while this job ran: theirs stands
        return (f"{default} ({DEFAULT_NOTE}, dev {d:.4f}) registered inactive: {reg.active} was made active "
                f"while it trained (quick model {quick}: dev {q:.4f})")
    if d > q:
        reg.activate(default)
        return f"{default} ({DEFAULT_NOTE}) is active: dev {d:.4f} beats {q:.4f} of the quick model {quick}"
    return (f"{quick} (quick model) stays active: the default model {default} did not beat it on dev "
            f"({d:.4f} vs {q:.4f}); both are on the Models page")
