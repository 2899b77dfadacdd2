"""End-to-end recipes used by the CLI and the app: prepare data, train, evaluate, register a version."""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

from transformers import AutoTokenizer

from mtl_core.data import prepare_all
from mtl_core.eval.compare import answers_for, evaluation_from_answers, store_answers
from mtl_core.eval.metrics import evaluate, headline
from mtl_core.model.applicability_fit import fit_applicability, train_texts
from mtl_core.model.checkpoint import save_checkpoint
from mtl_core.model.device import pick_device
from mtl_core.model.modeling import ModelConfig, build_model, default_encoder_dir
from mtl_core.model.registry import Registry, VersionInfo
from mtl_core.model.runner import ModelRunner
from mtl_core.progress import Reporter
from mtl_core.tasks import DEFAULT_TASK_FILE, load_task_file
from mtl_core.train.distributed import is_main, main_first
from mtl_core.train.loop import TrainConfig, TrainResult, set_seed, train
from mtl_core.workspace import data_cache_dir

# --quick (~3 min on 2 CPU cores): small batches give more updates for the same compute, and round-robin
# sampling makes sure every task, even a down-weighted one, gets its share of the few steps.
QUICK = {"steps": 300, "batch_size": 16, "sampling": "round_robin", "eval_every": 300, "max_dev": 300}
# --full (~35 min on 2 CPU cores, minutes on a GPU): the default recipe trained 2.25x longer, so the slow
# tasks (sentiment, question_type) get the ~3-5 epochs where their single-task curves peak; the best dev
# checkpoint is kept, so the small tasks' extra epochs cost nothing if they overfit (docs/RESULTS.md).
FULL = {"steps": 4500, "eval_every": 500}


def prepare(task_file_path: str | Path = DEFAULT_TASK_FILE, home=None, seed: int = 0):
    task_file = load_task_file(task_file_path)
    base = Path(task_file_path).resolve().parent
    return task_file, prepare_all(task_file, data_cache_dir(home), seed=seed, base_dir=base)


def train_new_version(
    task_file_path: str | Path = DEFAULT_TASK_FILE,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    quick: bool = False,
    home=None,
    note: str = "",
    activate: bool = True,
    reporter: Reporter | None = None,
    progress: bool = True,
) -> tuple[VersionInfo | None, dict]:
    """Train a model from the pretrained encoder and register it; returns (version, report).

    Under torchrun every rank trains in step; rank 0 alone evaluates, saves and registers, and the other
    ranks return (None, {"best_step", "stopped"}) right after training (docs/SCALING.md)."""
    t0 = time.perf_counter()
    model_config = model_config or ModelConfig()
    train_config = train_config or TrainConfig()
    if quick:
        train_config = replace(train_config, **QUICK)
    with main_first():  # rank 0 fills the data cache, the others then read it
        task_file, prepared = prepare(task_file_path, home, seed=train_config.seed)
    t_data = time.perf_counter() - t0
    unknown = sorted(set(model_config.private_tasks or []) - {t.name for t in task_file.tasks})
    if unknown:
        raise ValueError(f"ModelConfig.private_tasks: {unknown} are not tasks of {task_file_path}")
    tokenizer = AutoTokenizer.from_pretrained(model_config.encoder or default_encoder_dir())
    set_seed(train_config.seed)  # head initialisation must be reproducible too
    model = build_model(task_file.tasks, model_config)
    t_load = time.perf_counter() - t0 - t_data
    result = train(model, tokenizer, task_file, prepared, train_config, reporter=reporter, progress=progress)
    if not is_main():
        return None, {"best_step": result.best_step, "stopped": result.stopped}
    t1 = time.perf_counter()
    device = pick_device(train_config.device)
    specs = {t.name: t for t in task_file.tasks}
    test_sets = {n: prepared[n]["test"] for n in specs if prepared.get(n, {}).get("test")}
    # answers, not just metrics: kept in the answer cache, so the first fine-tuning round from this
    # version does not have to evaluate it again
    answers = answers_for(ModelRunner(model, tokenizer, device, model_config.max_length), test_sets)
    test = evaluation_from_answers(specs, test_sets, answers)
    dev = result.dev  # the (capped) dev evaluation that picked this checkpoint
    t_eval = time.perf_counter() - t1
    report = _report(result, dev, test, train_config, {"data": t_data, "load_model": t_load, "final_eval": t_eval})
    reg = Registry(home)
    staging = reg.staging_dir("train")
    t2 = time.perf_counter()
    model.applicability = fit_applicability(model, tokenizer, train_texts(prepared), seed=train_config.seed)
    report["timings"]["applicability"] = time.perf_counter() - t2
    t2 = time.perf_counter()
    save_checkpoint(model.cpu(), tokenizer, task_file, staging, train_config=asdict(train_config), metrics=report)
    report["timings"]["save"] = time.perf_counter() - t2
    summary = {n: m["primary"] for n, m in headline(test).items()}
    info = reg.register(staging, note=note or ("quick training" if quick else "default training"),
                        metrics=summary, activate=activate)
    store_answers(reg.home, info.id, test_sets, answers)
    report["timings"]["total"] = time.perf_counter() - t0
    return info, report


def _report(result: TrainResult, dev: dict, test: dict, cfg: TrainConfig, extra_timings: dict) -> dict:
    timings = {**extra_timings, **{f"train_{k}": v for k, v in result.timings.items() if k != "total"}}
    timings["total"] = sum(timings.values())
    return {
        "test": {"tasks": headline(test), "average": test["average"]},
        "dev": {"tasks": headline(dev), "average": dev["average"]} if dev else {},
        "test_details": {n: {k: m[k] for k in ("report", "confusion") if k in m} for n, m in test["tasks"].items()},
        "best_step": result.best_step,
        "stopped": result.stopped,
        "history": result.history,
        "timings": timings,
        "steps": cfg.steps,
    }


def evaluate_version(version: str | None = None, split: str = "test", home=None, quantize: bool = False) -> dict:
    """Re-evaluate a registered version on a split of its own task file's data (`quantize`: int8, on CPU)."""
    from mtl_core.model.checkpoint import load_checkpoint
    from mtl_core.serve.quantize import quantize_dynamic

    reg = Registry(home)
    version = version or reg.active
    if version is None:
        raise FileNotFoundError("no model version registered: train one first")
    device = pick_device("cpu" if quantize else None)
    model, tok, task_file, _ = load_checkpoint(reg.path_of(version), device=device)
    if quantize:
        model = quantize_dynamic(model, tok)  # tok: finds the outlier channels (see quantize_dynamic)
    prepared = prepare_all(task_file, data_cache_dir(home))
    metrics = evaluate(ModelRunner(model, tok, device, model.config.max_length), task_file, prepared, split)
    return {"version": version, "split": split, "quantized": quantize, "tasks": headline(metrics),
            "average": metrics["average"]}
