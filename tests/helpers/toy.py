"""Small synthetic tasks + a tiny encoder dir, so the training pipeline runs end to end in seconds."""

from __future__ import annotations

import random
from pathlib import Path

from transformers import AutoTokenizer

from mtl_core.model.modeling import default_encoder_dir, encoder_from_config, tiny_encoder_config

GOOD = ["great", "wonderful", "superb", "lovely", "brilliant"]
BAD = ["awful", "terrible", "boring", "dreadful", "horrible"]
NAMES = ["Paris", "London", "Obama", "Berlin", "Madonna"]


def make_tiny_encoder_dir(path: Path) -> Path:
    encoder_from_config(tiny_encoder_config()).save_pretrained(path)
    AutoTokenizer.from_pretrained(default_encoder_dir()).save_pretrained(path)
    return path


def write_toy_tasks(root: Path, n: int = 120, seed: int = 0) -> Path:
    """A task file with a classification, a regression and a CoNLL NER task over generated text."""
    rng = random.Random(seed)
    cls_rows, reg_rows, conll = ["text,label"], ["text,score"], []
    for i in range(n):
        good = rng.random() < 0.5
        word = rng.choice(GOOD if good else BAD)
        text = f"the film number {i} was {word} indeed"
        cls_rows.append(f"{text},{'pos' if good else 'neg'}")
        reg_rows.append(f"{text},{(1.5 if good else -1.5) + rng.uniform(-0.3, 0.3):.3f}")
        name = rng.choice(NAMES)
        words = ["i", "met", name, "in", "town", str(i)]
        tags = ["O", "O", "B-thing", "O", "O", "O"]
        conll += [f"{w}\t{t}" for w, t in zip(words, tags)] + [""]
    (root / "cls.csv").write_text("\n".join(cls_rows) + "\n")
    (root / "reg.csv").write_text("\n".join(reg_rows) + "\n")
    (root / "ner.conll").write_text("\n".join(conll) + "\n")
    task_file = root / "tasks.yaml"
    task_file.write_text(
        """tasks:
  - {name: polarity, kind: classification, labels: [neg, pos], source: {loader: csv, path: cls.csv}}
  - {name: score, kind: regression, value_range: [-2, 2],
     source: {loader: csv, path: reg.csv, label_column: score}}
  - {name: things, kind: token_classification, labels: [thing], source: {loader: conll, path: ner.conll}}
contradictions:
  - {name: pos_but_low, if_task: polarity, if_label: pos, then_task: score, below: 0}
"""
    )
    return task_file


def train_toy_base(root: Path, steps: int, max_dev: int) -> Path:
    """A workspace (`root/home`) whose active v0001 was trained briefly on the toy tasks; -> its home."""
    from mtl_core.model.modeling import ModelConfig
    from mtl_core.train.loop import TrainConfig
    from mtl_core.train.pipeline import train_new_version

    task_file, enc = write_toy_tasks(root), make_tiny_encoder_dir(root / "enc")
    cfg = TrainConfig(steps=steps, batch_size=16, eval_every=steps, head_lr=3e-3, encoder_lr=1e-3, freeze_layers=0,
                      freeze_embeddings=False, max_dev=max_dev)
    train_new_version(task_file, ModelConfig(encoder=str(enc), max_length=32), cfg, home=root / "home", progress=False)
    return root / "home"


def private_copy(src: Path, tmp_path: Path, monkeypatch):
    """A copy of workspace `src` for one test (MTL_STUDIO_HOME points at it, SQLite); -> (home, sessions)."""
    import shutil

    from mtl_core.store.db import open_store

    home = tmp_path / "home"
    shutil.copytree(src, home)
    monkeypatch.setenv("MTL_STUDIO_HOME", str(home))
    monkeypatch.delenv("MTL_STUDIO_DATABASE_URL", raising=False)
    return home, open_store(home)[1]
