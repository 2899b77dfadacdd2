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
