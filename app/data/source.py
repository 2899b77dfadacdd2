"""Where the Data page's tasks and data come from: the active model (its task file, data seed and answers),
or the default task file when no model is trained yet. Every section of the page takes one DataSource."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from app.components.text import md_literal
from app.shared import services
from mtl_core.serve.predictor import NoModelError, Predictor
from mtl_core.tasks import TaskFile, load_task_file


@dataclass(frozen=True)
class DataSource:
    task_file: TaskFile
    home: str  # the workspace: its data cache holds the prepared splits
    predictor: Predictor | None = None  # None: no model, gold labels only
    version: str | None = None
    data_seed: int = 0  # the split seed the model was trained with: the same train/dev/test

    @property
    def label(self) -> str:
        return f"model {self.version}" if self.predictor is not None else "the default task file (no model trained yet)"


def data_source() -> DataSource:
    """The active model's tasks and split seed (as rounds read them: `rounds.finetune._load`), else the
    default task file; a model that cannot be loaded is said, and the page goes on without it."""
    home = services.workspace_home()
    try:
        predictor, version = services.current_predictor()
    except NoModelError:
        return DataSource(load_task_file(), home)
    except Exception as exc:  # a corrupted registry: say what, keep the page usable
        st.warning(f"The model could not be loaded, so its answers are not shown: {md_literal(exc)}")
        return DataSource(load_task_file(), home)
    config = predictor.meta.get("train_config") or {}
    seed = int(config.get("data_seed", config.get("seed", 0)))
    return DataSource(predictor.task_file, home, predictor, version, seed)
