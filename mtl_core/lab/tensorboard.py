"""Every lab run's scalars as TensorBoard event files: `tensorboard --logdir <workspace>/lab/tensorboard/job<N>`.

One sub-folder per run ("<strategy>_s<seed>"), so TensorBoard overlays the runs. Written after each run from
its training history and probe record (the live curves are in the app; these are for the tools users have).
"""

from __future__ import annotations

from pathlib import Path

from mtl_core.lab.probe import ProbeRecord
from mtl_core.lab.results import RunResult


def write_run(folder: Path, run: RunResult, history: list[dict], probe: ProbeRecord | None) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    out = Path(folder) / f"{run.strategy}_s{run.seed}"
    writer = SummaryWriter(log_dir=str(out))
    try:
        for row in history:
            for task, value in (row.get("loss") or {}).items():
                writer.add_scalar(f"train_loss/{task}", value, row["step"])
            for task, value in (row.get("weights") or {}).items():
                writer.add_scalar(f"task_weight/{task}", value, row["step"])
            for task, value in (row.get("dev") or {}).items():
                writer.add_scalar(f"dev/{task}", value, row["step"])
            if "dev_average" in row:
                writer.add_scalar("dev/average", row["dev_average"], row["step"])
        if probe is not None:
            for i, step in enumerate(probe.steps):
                writer.add_scalar("conflict/fraction", probe.fraction[i], step)
                for pair, values in probe.pairs.items():
                    writer.add_scalar(f"cosine/{pair.replace('|', '_vs_')}", values[i], step)
        for task, value in run.test.items():
            writer.add_scalar(f"test/{task}", value, run.best_step)
        writer.add_scalar("speed/samples_per_s", run.samples_per_s, run.best_step)
    finally:
        writer.close()
    return out
