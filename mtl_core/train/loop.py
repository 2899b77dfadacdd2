"""The multi-task training loop: task sampling, loss weighting, warmup/decay, best-on-dev."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from mtl_core.model.device import pick_device
from mtl_core.model.features import bucketed_batches, featurize
from mtl_core.model.modeling import MultiTaskModel
from mtl_core.model.runner import ModelRunner
from mtl_core.progress import Cancelled, PrintReporter, Reporter
from mtl_core.tasks import TaskFile
from mtl_core.train.aggregators import AGGREGATORS, JointCombiner
from mtl_core.train.distill import attach_teacher_targets, normalised_tolerance
from mtl_core.train.distributed import for_training, is_main
from mtl_core.train.keep_general import keep_general_for
from mtl_core.train.step import BATCHINGS, collate_task, draw
from mtl_core.train.step import step as optimizer_step
from mtl_core.train.weighting import SAMPLINGS, WEIGHTINGS, LossWeighting, TaskSampler


@dataclass
class TrainConfig:
    """Defaults are the recipe of the default model (fits ~15 min on a 2-core CPU)."""

    steps: int = 2000  # optimizer steps in total, across tasks (~10 min of training on a quiet 2-core CPU)
    batch_size: int = 32
    encoder_lr: float = 1e-4  # MiniLM is small: it tolerates a higher rate than BERT-base
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    grad_clip: float = 1.0
    batching: str = "per_task"  # "per_task": one task per batch; "mixed": tasks mixed inside a batch;
    # "all": every task in every step, batch_size / n_tasks rows each (needed by `aggregator`)
    sampling: str = "temperature"  # one of SAMPLINGS
    temperature: float = 3.0  # for sampling="temperature": p ∝ n^(1/T) × the task's sample_weight
    loss_weighting: str = "equal"  # one of WEIGHTINGS
    aggregator: str = "none"  # one of AGGREGATORS: combine the tasks' gradients on the shared encoder
    # (PCGrad, UPGrad, ...: train/aggregators.py); needs batching="all" and loss_weighting="equal"
    dwa_temperature: float = 2.0
    eval_every: int = 500  # steps between dev evaluations (the best one is kept)
    patience: int | None = None  # stop after this many evaluations without dev improvement
    freeze_embeddings: bool = True  # their dense gradient costs ~10% of a CPU step and buys little
    freeze_layers: int = 2  # freeze the lower K encoder layers too (~20% faster steps on CPU)
    tasks: list[str] | None = None  # train only these tasks (None = all)
    seed: int = 0
    device: str | None = None  # None = CUDA when present, else CPU
    max_dev: int | None = 1000  # cap dev examples per task for the periodic evaluation (speed)
    log_every: int = 50  # steps between logged training losses (callback "train" events)
    distill: float = 0.0  # examples flagged in prepared[task]["distill"] learn blend x the model's own
    # answer before training + (1 - blend) x gold (fine-tuning rounds: replay that does not move the model)
    distill_focal: float = 0.0  # focal distillation: a distilled example the model answered right before
    # training weighs 1 + this in the loss (train/distill.py); 0 = every example weighs 1
    keep_general: float = 0.0  # weight of a term keeping the pooled last layer's text-to-text similarities as
    # they were when training started (train/keep_general.py): new tasks' few-shot heads transfer better, the
    # trained tasks pay for it (docs/RESULTS.md, "Few-shot new tasks"); 0 = off; ~25 % slower steps when on

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"TrainConfig.sampling: {self.sampling!r} not in {SAMPLINGS}")
        if self.batching not in BATCHINGS:
            raise ValueError(f"TrainConfig.batching: {self.batching!r} not in {BATCHINGS}")
        if self.loss_weighting not in WEIGHTINGS:
            raise ValueError(f"TrainConfig.loss_weighting: {self.loss_weighting!r} not in {WEIGHTINGS}")
        if self.aggregator not in AGGREGATORS:
            raise ValueError(f"TrainConfig.aggregator: {self.aggregator!r} not in {AGGREGATORS}")
        if self.aggregator != "none" and (self.batching != "all" or self.loss_weighting != "equal"):
            raise ValueError("TrainConfig.aggregator: needs batching='all' (every task in every step) "
                             "and loss_weighting='equal' (the aggregator does the weighting)")
        for name in ("steps", "batch_size", "eval_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name}: must be >= 1")
        if self.temperature <= 0:
            raise ValueError("TrainConfig.temperature: must be > 0")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError("TrainConfig.warmup_ratio: must be in [0, 1)")
        if not 0 <= self.distill <= 1:
            raise ValueError("TrainConfig.distill: must be in [0, 1]")
        if not 0 <= self.distill_focal <= 100:
            raise ValueError("TrainConfig.distill_focal: must be in [0, 100]")
        if not 0 <= self.keep_general <= 1000:
            raise ValueError("TrainConfig.keep_general: must be in [0, 1000]")
        if self.keep_general and self.aggregator != "none":
            raise ValueError("TrainConfig.keep_general: not with an aggregator (it combines task gradients only)")


@dataclass
class TrainResult:
    best_step: int
    dev: dict  # evaluate() output of the kept model
    history: list[dict] = field(default_factory=list)  # one row per logged step / evaluation
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    stopped: str = "completed"  # "completed" | "early_stop" | "cancelled"


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _freeze(model: MultiTaskModel, embeddings: bool, k: int) -> None:
    enc = model.encoder
    if embeddings or k > 0:
        enc.get_input_embeddings().requires_grad_(False)
    for layer in enc.encoder.layer[:k]:
        layer.requires_grad_(False)


def _optimizer(model: MultiTaskModel, weighting: LossWeighting, cfg: TrainConfig):
    enc = [p for p in model.encoder.parameters() if p.requires_grad]
    rest = [p for n, p in model.named_parameters() if not n.startswith("encoder.") and p.requires_grad]
    groups = [{"params": enc, "lr": cfg.encoder_lr}, {"params": rest + list(weighting.parameters()), "lr": cfg.head_lr}]
    return torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=cfg.weight_decay)


class _BatchStream:
    """Endless length-bucketed batches per task, reshuffled every pass."""

    def __init__(self, feats: dict, cfg: TrainConfig, rng: random.Random):
        self.feats, self.cfg, self.rng = feats, cfg, rng
        self.queues: dict[str, list] = {n: [] for n in feats}
        self.epochs = defaultdict(int)

    def next(self, name: str) -> list:
        if not self.queues[name]:
            self.queues[name] = bucketed_batches(self.feats[name], self.cfg.batch_size, self.rng)
            self.epochs[name] += 1
        return [self.feats[name][i] for i in self.queues[name].pop()]


def train(model: MultiTaskModel, tokenizer: PreTrainedTokenizerBase, task_file: TaskFile, prepared: dict,
          cfg: TrainConfig, reporter: Reporter | None = None, progress: bool = True,
          on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Train in place; the model ends with the weights of its best dev evaluation.

    `reporter` gets progress, training losses and dev metrics at every logged step; its `Cancelled`
    stops training cleanly (`stopped="cancelled"`, best weights so far kept). `progress`: a tqdm bar.
    `on_step(step)`: called after every optimizer step (the lab's gradient probes)."""
    # imported here, not at module level: scipy/sklearn/seqeval (evaluation) and transformers' trainer
    # utilities cost seconds, and `python -m mtl_core predict` imports this module only for TrainConfig
    from transformers import get_linear_schedule_with_warmup

    from mtl_core.eval.metrics import evaluate
    from mtl_core.eval.thresholds import tune_model_thresholds

    reporter = reporter or PrintReporter()
    set_seed(cfg.seed)
    t0 = time.perf_counter()
    device = pick_device(cfg.device)
    model.to(device).train()
    model.set_attention(eager=False)
    specs = [t for t in task_file.tasks if (cfg.tasks is None or t.name in cfg.tasks) and prepared.get(t.name, {}).get("train")]
    if not specs:
        raise ValueError("nothing to train: no selected task has training examples")
    max_len = model.config.max_length
    runner = ModelRunner(model, tokenizer, device, max_len)
    feats = {t.name: featurize(t, prepared[t.name]["train"], tokenizer, t.max_length or max_len) for t in specs}
    dev = {t.name: {"dev": prepared[t.name].get("dev", [])[: cfg.max_dev]} for t in specs}
    n_out = {t.name: len(t.tag_names) if t.kind == "token_classification" else len(t.labels) for t in specs}
    pad_id = tokenizer.pad_token_id or 0
    if cfg.distill > 0:
        model.to(device)
        for t in specs:
            attach_teacher_targets(model, t.name, t.kind, feats[t.name], prepared[t.name].get("distill") or [],
                                   cfg.distill, pad_id, device, n_out[t.name], focal=cfg.distill_focal,
                                   tolerance=normalised_tolerance(t))
    timings = {"tokenize": time.perf_counter() - t0, "train": 0.0, "evaluate": 0.0}

    rng = random.Random(cfg.seed)
    sampler = TaskSampler({n: len(f) for n, f in feats.items()}, cfg.sampling, cfg.temperature, rng,
                          boost={t.name: t.sample_weight for t in specs})
    stream = _BatchStream(feats, cfg, rng)
    # DWA compares two windows of each task's loss: shorter windows on short runs, else it never moves
    weighting = LossWeighting(cfg.loss_weighting, specs, cfg.dwa_temperature,
                              dwa_window=min(50, max(5, cfg.steps // 10))).to(device)
    _freeze(model, cfg.freeze_embeddings, cfg.freeze_layers)
    keep = keep_general_for(model, cfg.keep_general, cfg.freeze_layers, device)
    dist = for_training(device, cfg.seed)  # several processes (torchrun): train/distributed.py; else None
    if dist and cfg.aggregator != "none":
        raise ValueError("TrainConfig.aggregator: runs in one process only (not under torchrun)")
    fwd, reporter = (dist.wrap(model), dist.reporter(reporter)) if dist else (model, reporter)
    combiner = JointCombiner(cfg.aggregator, [t.name for t in specs]) if cfg.aggregator != "none" else None
    opt = _optimizer(model, weighting, cfg)
    sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup_ratio * cfg.steps), cfg.steps)
    kinds = {t.name: t.kind for t in specs}

    best = {"score": -float("inf"), "step": 0, "state": None, "dev": {}}
    history, since_best, stopped = [], 0, "completed"
    window = defaultdict(list)
    bar = tqdm(total=cfg.steps, desc="train", disable=not (progress and is_main()), dynamic_ncols=True)
    try:
        for step in range(1, cfg.steps + 1):
            ts = time.perf_counter()
            groups = draw(sampler, stream, cfg.batching, cfg.batch_size)
            groups = dist.shard(groups) if dist else groups  # every rank: its stride of the same batch
            batches = {n: collate_task(fs, kinds[n], pad_id, n_out[n]) for n, fs in groups.items()}
            for n, loss in optimizer_step(fwd, weighting, opt, sched, batches, kinds, device, cfg.grad_clip, dist,
                                          combiner, keep=keep).items():
                window[n].append(loss)
            timings["train"] += time.perf_counter() - ts
            if on_step is not None:
                on_step(step)
            bar.update(1)
            if step % cfg.log_every and step != cfg.steps:  # every step moves a UI bar and may be cancelled
                reporter.progress(step, cfg.steps, f"training: step {step}/{cfg.steps}")
                reporter.check_cancelled()  # not only at logged steps: 50 steps can be minutes on a CPU
            else:
                row = {"step": step, "loss": {n: float(np.mean(v)) for n, v in window.items()},
                       "weights": combiner.last_weights if combiner else weighting.current(), "elapsed": time.perf_counter() - t0}
                window.clear()
                history.append(row)
                bar.set_postfix(loss=f"{np.mean(list(row['loss'].values())):.3f}")
                _report_train(reporter, row, cfg.steps)
            if (step % cfg.eval_every == 0 or step == cfg.steps) and is_main():
                te = time.perf_counter()
                metrics = evaluate(runner, task_file, dev, "dev", [t.name for t in specs])
                model.train()
                timings["evaluate"] += time.perf_counter() - te
                history.append({"step": step, "dev": {n: m["primary"] for n, m in metrics["tasks"].items()},
                                "dev_average": metrics["average"]})
                _report_eval(reporter, history[-1])
                if metrics["average"] > best["score"]:
                    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                    best, since_best = {"score": metrics["average"], "step": step, "state": state, "dev": metrics}, 0
                else:
                    since_best += 1
                    if cfg.patience is not None and since_best >= cfg.patience:
                        stopped = "early_stop"
            stopped = dist.agree(stopped) if dist else stopped  # rank 0's stop / cancel, for every rank
            if stopped != "completed":
                break
    except Cancelled:
        stopped = "cancelled"
    bar.close()
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    model.eval()
    if is_main():  # multi-label heads: per-label thresholds for the kept weights, on the whole dev split
        tune_model_thresholds(runner, specs, prepared)
    for p in model.parameters():
        p.requires_grad_(True)
    timings["total"] = time.perf_counter() - t0
    return TrainResult(best_step=best["step"], dev=best["dev"], history=history, timings=timings, stopped=stopped)


def _report_train(reporter: Reporter, row: dict, total: int) -> None:
    step = row["step"]
    reporter.progress(step, total, f"training: step {step}/{total}")
    for task, value in row["loss"].items():
        reporter.metric(step, "train_loss", value, task)
    reporter.check_cancelled()  # raises Cancelled: train() stops, keeping the best weights so far


def _report_eval(reporter: Reporter, row: dict) -> None:
    for task, value in row["dev"].items():
        reporter.metric(row["step"], "dev", value, task)
    reporter.metric(row["step"], "dev_average", row["dev_average"])
    reporter.check_cancelled()


