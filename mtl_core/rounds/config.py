"""`RoundConfig`: how a fine-tuning round trains (checked on creation; from job params with unknown keys refused)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from mtl_core.train.loop import TrainConfig
from mtl_core.train.weighting import SAMPLINGS, WEIGHTINGS

STRATEGIES = ("full", "freeze", "lora")


@dataclass
class RoundConfig:
    """How a round trains. The defaults fit a 200-correction round in ~2 minutes on a 2-core CPU."""

    tasks: list[str] | None = None  # tasks whose corrections are used; None = every task with corrections
    new_tasks: list[str] | None = None  # workspace tasks to join to the model, a new head each (rounds/join.py);
    # None = none; a joined task learns from its store labels + its dataset's train split, never distilled
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
    distill_focal: float = 0.0  # focal distillation: replay the base got right weighs 1 + this (train/distill.py)
    weight_blend: float = 0.5  # keep this share of the weight change (blend.py, WiSE-FT): 0.5 halved the
    # negative flips and raised 4 of 6 test metrics against 1.0, for fewer corrections learnt by the weights
    edit_memory: bool = True  # keep corrections the new weights still get wrong in an edit memory (edit_memory.py)
    memory_radius: float = 0.1  # largest cosine distance at which a remembered correction applies
    memory_refs: int = 100  # replayed originals (and as many dev examples) per task bounding each key's radius
    min_replay: int = 32  # at least this many replayed originals per task
    replay_all_tasks: bool = True  # replay tasks without corrections too (the encoder is shared)
    dev_size: int = 100  # dev examples per task for the evaluation during training
    eval_every: int | None = None  # steps between dev evaluations; None = once, at the end
    log_every: int = 5  # steps between logged training losses (the Train page draws a point per task each time)
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
        if self.new_tasks is not None:
            if isinstance(self.new_tasks, str) or not all(isinstance(t, str) for t in self.new_tasks):
                raise ValueError("RoundConfig.new_tasks: a list of task names (or None)")
            self.new_tasks = list(dict.fromkeys(self.new_tasks)) or None
        for name in ("steps", "batch_size", "lora_r", "lora_alpha", "correction_upsample", "dev_size", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"RoundConfig.{name}: must be >= 1")
        if not 0 < self.memory_radius <= 1:
            raise ValueError("RoundConfig.memory_radius: must be in (0, 1]")
        if self.freeze_layers < 0 or self.min_replay < 0 or self.memory_refs < 0:
            raise ValueError("RoundConfig.freeze_layers/min_replay/memory_refs: must be >= 0")
        if self.eval_every is not None and self.eval_every < 1:
            raise ValueError("RoundConfig.eval_every: must be >= 1 (or None)")
        if not 0 < self.weight_blend <= 1:
            raise ValueError("RoundConfig.weight_blend: must be in (0, 1]")
        if not 0 <= self.distill <= 1:
            raise ValueError("RoundConfig.distill: must be in [0, 1]")
        if not 0 <= self.distill_focal <= 100:
            raise ValueError("RoundConfig.distill_focal: must be in [0, 100]")
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
            distill_focal=self.distill_focal,
        )
