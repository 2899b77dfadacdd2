"""From the lab back to training: a strategy as the workspace's default recipe, or a real run of it (job
"lab_train": the strategy's configuration at the default or quick budget, registered inactive for the Models
page)."""

from __future__ import annotations

from mtl_core.lab.config import STRATEGIES, Strategy
from mtl_core.progress import JobRun
from mtl_core.train.recipe import load_recipe, write_recipe

__all__ = ["lab_train_job", "load_recipe", "save_recipe"]


def save_recipe(home, strategy: str) -> None:
    """Make `strategy` (a STRATEGIES name) what `python -m mtl_core train` and the first-run job start from."""
    s = _trainable(strategy)
    write_recipe(home, dict(s.train), dict(s.model), source=s.name)


def lab_train_job(ctx: JobRun) -> dict:
    """The worker's handler for "lab_train": params {"strategy": name, "budget": "default" | "quick"}."""
    from mtl_core.model.modeling import ModelConfig
    from mtl_core.train.loop import TrainConfig
    from mtl_core.train.pipeline import train_new_version

    params = ctx.params or {}
    name, budget = params.get("strategy"), params.get("budget", "default")
    s = _trainable(name)
    if budget not in ("default", "quick"):
        raise ValueError(f"budget must be 'default' or 'quick', not {budget!r}")
    info, report = train_new_version(model_config=ModelConfig(**s.model), train_config=TrainConfig(**s.train),
                                     quick=budget == "quick", home=ctx.home, note=f"lab: {name} ({budget})",
                                     activate=False, reporter=ctx, progress=False)
    said = f"{info.id} trained with {name} ({budget} budget), test average {report['test']['average']:.4f}"
    ctx.log(said)
    ctx.progress(1, 1, said + "; compare and activate it on the Models page")
    # "cancelled": Cancel stopped the training, and the best weights so far were registered (train() keeps them)
    return {"version": info.id, "strategy": name, "budget": budget, "test": report["test"],
            "stopped": report["stopped"], "best_step": report["best_step"]}


def _trainable(name) -> Strategy:
    """The strategy, if the served model can be trained with it."""
    if name not in STRATEGIES:
        raise ValueError(f"no strategy called {name!r}")
    s = STRATEGIES[name]
    if s.adapters:
        raise ValueError(f"{name} runs only in the lab: per-task adapters need an encoder pass per task, and the "
                         "served model answers every task from one")
    return s
