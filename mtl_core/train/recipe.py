"""The workspace's training recipe (`<workspace>/train_recipe.json`): TrainConfig and ModelConfig overrides that
`python -m mtl_core train` and the first-run job start from. The Lab page's "Use as default recipe" writes it;
delete the file to go back to the built-in defaults. Explicit command-line options still win over it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from mtl_core.workspace import workspace_dir

RECIPE_FILE = "train_recipe.json"


def recipe_path(home=None) -> Path:
    return workspace_dir(home) / RECIPE_FILE


def write_recipe(home, train: dict, model: dict, source: str) -> Path:
    """Checked first (the configs must build), then written atomically."""
    from mtl_core.model.modeling import ModelConfig
    from mtl_core.train.loop import TrainConfig

    TrainConfig(**train)
    ModelConfig(**model)
    path = recipe_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".recipe-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"source": source, "train": train, "model": model}, f, indent=1)
    os.replace(tmp, path)
    return path


def load_recipe(home=None) -> dict | None:
    """{"source", "train", "model"}; None without a recipe. A broken file is an error that names it."""
    path = recipe_path(home)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("train", {}), dict) \
                or not isinstance(data.get("model", {}), dict):
            raise ValueError("not an object with 'train' and 'model' objects")
    except ValueError as exc:
        raise ValueError(f"the training recipe {path} is unreadable ({exc}); fix or delete it") from None
    return {"source": str(data.get("source", "")), "train": data.get("train") or {}, "model": data.get("model") or {}}


def with_recipe(home, train: dict, model: dict) -> tuple[dict, dict]:
    """The recipe's overrides under the given ones (these win)."""
    recipe = load_recipe(home) or {"train": {}, "model": {}}
    return {**recipe["train"], **train}, {**recipe["model"], **model}
