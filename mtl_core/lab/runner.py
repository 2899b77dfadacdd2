"""One lab run: a strategy (or a single-task baseline) trained from the pretrained encoder at the lab's budget,
then scored on the (capped) test splits."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace

from mtl_core.eval.metrics import PRIMARY, evaluate
from mtl_core.lab.config import Budget, Strategy
from mtl_core.lab.probe import GradientProbe, ProbeRecord
from mtl_core.lab.results import RunResult, metric_name
from mtl_core.model.device import pick_device
from mtl_core.model.features import featurize
from mtl_core.model.modeling import ModelConfig, build_model
from mtl_core.model.runner import ModelRunner
from mtl_core.progress import Reporter
from mtl_core.tasks import TaskFile
from mtl_core.train.loop import TrainConfig, set_seed, train
from mtl_core.train.step import collate_task

PROBE_ROWS = 8  # examples per task in the probe batch (fixed for the whole run)


@dataclass
class LabData:
    task_file: TaskFile  # only the experiment's tasks
    prepared: dict  # task -> split -> examples, capped by the budget
    tokenizer: object
    fingerprint: str  # what the single-task baseline cache is keyed by (data sizes, encoder)


def cap_splits(prepared: dict, names: list[str], budget: Budget) -> dict:
    """A fixed random subset of each split (seed 0: every run of an experiment sees the same data)."""
    caps = {"train": budget.train_cap, "dev": budget.dev_cap, "test": budget.test_cap}
    out = {}
    for name in names:
        out[name] = {}
        for split, rows in prepared[name].items():
            cap = caps.get(split)
            out[name][split] = rows if cap is None or len(rows) <= cap else random.Random(0).sample(rows, cap)
    return out


class RunReporter:
    """A run's events into the experiment's reporter: metrics under the run's name, progress on the lab's bar."""

    def __init__(self, outer: Reporter, run: str, done_before: int, total: int, label: str):
        self.outer, self.run, self.done_before, self.total, self.label = outer, run, done_before, total, label

    def progress(self, step: int, total: int | None = None, message: str | None = None) -> None:
        self.outer.progress(self.done_before + step, self.total, f"{self.label} · step {step}/{total}")
        # the loop itself checks only at logged steps (every steps/15): Cancel must not wait minutes for one
        self.outer.check_cancelled()

    def log(self, line: str) -> None:
        self.outer.log(f"{self.run}: {line}")

    def metric(self, step: int, name: str, value: float, task: str | None = None) -> None:
        if ":" in name:  # already a run metric (the probe's)
            self.outer.metric(step, name, value, task)
        else:
            self.outer.metric(step, metric_name(self.run, name), value, task)

    def check_cancelled(self) -> None:
        self.outer.check_cancelled()


def run_one(strategy: Strategy, seed: int, budget: Budget, data: LabData, reporter: RunReporter,
            tasks: list[str] | None = None, probe: str = "none", device: str | None = None, encoder: str = ""
            ) -> tuple[RunResult, ProbeRecord | None, list[dict]]:
    """Train and test one configuration. `tasks`: a subset (single-task baselines); `probe`: "none",
    "conflict" or "full" (conflict + affinity). -> (result, probe record, the training history)."""
    t0 = time.perf_counter()
    names = tasks or [t.name for t in data.task_file.tasks]
    specs = [data.task_file.by_name(n) for n in names]
    tf = type(data.task_file)(tasks=specs)
    cfg = TrainConfig(**{"steps": budget.steps, "batch_size": budget.batch_size,
                         "eval_every": budget.dev_every or budget.steps,
                         "max_dev": budget.dev_cap, "log_every": max(1, budget.steps // 15), "seed": seed,
                         "freeze_layers": budget.freeze_layers,
                         "device": device, **strategy.train})
    if len(names) == 1:  # a single-task baseline sees what its task gets in a joint step: the same steps, each
        # with batch / n_tasks of its rows (the same examples and updates; LibMTL's convention)
        share = max(1, budget.batch_size // len(data.task_file.tasks))
        cfg = replace(cfg, batching="per_task", aggregator="none", loss_weighting="equal", batch_size=share)
    set_seed(seed)
    model = build_model(specs, ModelConfig(**{"max_length": budget.max_length, "encoder": encoder, **strategy.model}))
    if strategy.adapters:
        from mtl_core.lab.adapters import with_task_adapters

        model = with_task_adapters(model, strategy.adapters)
    dev = pick_device(device)
    model.to(dev)
    hook = None
    if probe != "none" and len(names) > 1 and budget.probe_every > 0 and not strategy.adapters:  # adapters: no
        # shared trainable parameter to compare gradients on
        hook = GradientProbe(model, _probe_batches(specs, data, budget), {s.name: s.kind for s in specs}, dev,
                             budget.probe_every, reporter, reporter.run, affinity=probe == "full")
    result = train(model, data.tokenizer, tf, data.prepared, cfg, reporter=reporter, progress=False, on_step=hook)
    train_s = result.timings.get("train", 0.0)
    test = evaluate(ModelRunner(model, data.tokenizer, dev, budget.max_length), tf, data.prepared, "test", names)
    steps = max(1, max((r["step"] for r in result.history if "loss" in r), default=1))
    rows = steps * cfg.batch_size
    return RunResult(
        strategy=strategy.name, family=strategy.family, seed=seed,
        test={n: float(m["primary"]) for n, m in test["tasks"].items()},
        metric={n: PRIMARY[tf.by_name(n).kind] for n in test["tasks"]},
        dev_average=float(result.dev.get("average", 0.0)) if result.dev else 0.0, best_step=result.best_step,
        wall_s=time.perf_counter() - t0, samples_per_s=rows / max(train_s, 1e-9),
        step_s=train_s / steps,  # the probe runs outside the loop's timed step
        status="cancelled" if result.stopped == "cancelled" else "done",
    ), (hook.record if hook else None), result.history


def _probe_batches(specs: list, data: LabData, budget: Budget) -> dict[str, dict]:
    pad = data.tokenizer.pad_token_id or 0
    out = {}
    for spec in specs:
        rows = data.prepared[spec.name]["train"]
        rows = random.Random(1).sample(rows, min(PROBE_ROWS, len(rows)))
        feats = featurize(spec, rows, data.tokenizer, budget.max_length)
        n_out = len(spec.tag_names) if spec.kind == "token_classification" else len(spec.labels)
        out[spec.name] = collate_task(feats, spec.kind, pad, n_out)
    return out
