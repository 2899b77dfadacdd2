"""What a lab experiment runs: strategies (training configurations) x seeds at a budget, plus single-task baselines.

A strategy is data: overrides of TrainConfig and ModelConfig fields. Every multi-task strategy but the
sampling family trains on joint steps (every task in every step, `batching="all"`) so that the gradient
aggregators, the loss weightings and the sharing options are compared on the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

JOINT = {"batching": "all"}


@dataclass(frozen=True)
class Strategy:
    name: str  # unique in an experiment; shown in tables
    family: str  # "weighting" | "gradient" | "sharing" | "sampling"
    train: dict = field(default_factory=dict)  # TrainConfig overrides
    model: dict = field(default_factory=dict)  # ModelConfig overrides
    about: str = ""
    adapters: int = 0  # > 0: per-task LoRA adapters of this rank on the frozen encoder (lab/adapters.py; lab only:
    # the served model answers every task from one encoder pass, so it cannot be a recipe or a trained version)


def _catalogue() -> dict[str, Strategy]:
    s = [
        Strategy("equal", "weighting", {**JOINT}, about="sum of the task losses (the reference)"),
        Strategy("static", "weighting", {**JOINT, "loss_weighting": "static"}, about="the task file's loss_weight"),
        Strategy("uncertainty", "weighting", {**JOINT, "loss_weighting": "uncertainty"},
                 about="learnt homoscedastic uncertainty (Kendall et al. 2018)"),
        Strategy("dwa", "weighting", {**JOINT, "loss_weighting": "dwa"}, about="dynamic weight average (Liu et al. 2019)"),
        *[Strategy(name, "gradient", {**JOINT, "aggregator": name}, about=about) for name, about in [
            ("pcgrad", "projects away conflicting gradients (torchjd)"),
            ("cagrad", "conflict-averse gradient, c=0.4 (torchjd)"),
            ("imtl", "IMTL-G: equal projections on every task gradient (torchjd)"),
            ("aligned_mtl", "aligned multi-task gradients (torchjd)"),
            ("nash_mtl", "Nash bargaining over task gradients (torchjd)"),
            ("upgrad", "unconflicting projection of gradients (torchjd)"),
            ("mgda", "min-norm point of the task gradients (torchjd)"),
            ("famo", "fast adaptive multitask optimisation, loss values only (torchjd)"),
            ("gradnorm", "gradient-norm balancing (Chen et al. 2018; written here)"),
        ]],
        Strategy("shared_4", "sharing", {**JOINT}, {"shared_layers": 4},
                 about="hard sharing of the lower 4 layers; the upper 2 per task"),
        Strategy("mmoe", "sharing", {**JOINT}, {"mmoe_experts": 4},
                 about="soft sharing: 4 experts on the pooled output, a gate per task (MMoE)"),
        Strategy("lora_per_task", "sharing", {"batching": "per_task", "sampling": "round_robin", "freeze_layers": 0,
                                              "encoder_lr": 1e-3}, adapters=8,
                 about="no shared training: a LoRA adapter (rank 8, peft) per task on the frozen encoder"),
        *[Strategy(name, "sampling", {"batching": "per_task", "sampling": name}, about=about) for name, about in [
            ("proportional", "one task per step, p ∝ training examples"),
            ("temperature", "one task per step, p ∝ n^(1/3) (the default model's recipe)"),
            ("round_robin", "one task per step, in turn"),
        ]],
        Strategy("keep_general", "transfer", {"batching": "per_task", "sampling": "temperature", "keep_general": 20.0},
                 about="the default model's recipe + a term keeping the encoder's text similarities general: "
                       "your own tasks' few-shot heads transfer better, the built-in tasks lose 0-4 points"),
    ]
    return {x.name: x for x in s}


STRATEGIES: dict[str, Strategy] = _catalogue()
FAMILIES = ("weighting", "gradient", "sharing", "sampling", "transfer")


@dataclass(frozen=True)
class Budget:
    """How much each run trains and on how much data (None = everything)."""

    name: str
    steps: int
    batch_size: int = 16
    max_length: int = 64  # tokens per text
    train_cap: int | None = None  # training examples per task
    dev_cap: int | None = 200  # dev examples per task (picks the kept checkpoint)
    test_cap: int | None = 500  # test examples per task (the result table)
    probe_every: int = 20  # steps between gradient-conflict / affinity probes (0 = none)
    freeze_layers: int = 2  # lower encoder layers kept frozen (fewer trainable layers: cheaper per-task Jacobians)
    dev_every: int | None = None  # steps between dev evaluations (the dev curves); None = once, at the end

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("Budget: steps and batch_size must be >= 1")
        if not 8 <= self.max_length <= 512:
            raise ValueError("Budget.max_length: must be between 8 and 512")
        if self.probe_every < 0:
            raise ValueError("Budget.probe_every: must be >= 0")
        if self.freeze_layers < 0:
            raise ValueError("Budget.freeze_layers: must be >= 0")
        if self.dev_every is not None and self.dev_every < 1:
            raise ValueError("Budget.dev_every: must be >= 1 (or None: once, at the end)")


# quick: all strategies with 1 seed in <= 45 min on a 2-core CPU (docs/LAB.md measures it)
BUDGETS = {
    "quick": Budget("quick", steps=80, batch_size=18, max_length=64, train_cap=2000, dev_cap=150, test_cap=400,
                    probe_every=20, freeze_layers=4),
    "default": Budget("default", steps=2000, batch_size=32, max_length=128, train_cap=None, dev_cap=1000,
                      test_cap=None, probe_every=100, dev_every=250),
}


@dataclass
class LabConfig:
    """One experiment. `strategies`: names in STRATEGIES; single-task baselines are always added."""

    strategies: list[str] = field(default_factory=lambda: ["equal", "pcgrad", "upgrad"])
    seeds: int = 1  # 1-3 runs per strategy (seeds first_seed .. first_seed + seeds - 1)
    first_seed: int = 0  # > 0: more seeds for an earlier experiment (bench/quality/lab.py --merge joins them)
    budget: str = "quick"  # a BUDGETS name, or "custom" (then `steps` is used on the quick budget)
    steps: int | None = None  # custom budget: training steps per run
    tasks: list[str] | None = None  # None = every task of the workspace's task file
    task_file: str | None = None  # None = the workspace's task file, else the built-in one
    encoder: str = ""  # a local Hugging Face encoder dir for every run; "" = the bundled MiniLM

    def __post_init__(self) -> None:
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown:
            raise ValueError(f"LabConfig.strategies: unknown {unknown} (one of {sorted(STRATEGIES)})")
        if not self.strategies:
            raise ValueError("LabConfig.strategies: choose at least one strategy")
        if not 1 <= self.seeds <= 3:
            raise ValueError("LabConfig.seeds: must be 1, 2 or 3")
        if self.first_seed < 0:
            raise ValueError("LabConfig.first_seed: must be >= 0")
        if self.budget not in (*BUDGETS, "custom"):
            raise ValueError(f"LabConfig.budget: {self.budget!r} not in {(*BUDGETS, 'custom')}")
        if self.budget == "custom" and (self.steps is None or self.steps < 1):
            raise ValueError("LabConfig.steps: a custom budget needs steps >= 1")
        if self.tasks is not None and len(self.tasks) < 2:
            raise ValueError("LabConfig.tasks: a multi-task experiment needs at least two tasks")

    def seed_list(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))

    def resolved_budget(self) -> Budget:
        if self.budget == "custom":
            from dataclasses import replace

            return replace(BUDGETS["quick"], name="custom", steps=self.steps,
                           probe_every=max(1, self.steps // 6), dev_every=max(1, self.steps // 4))
        return BUDGETS[self.budget]
