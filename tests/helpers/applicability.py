"""Applicability for tests: texts of clearly different domains, and a checkpoint where a task never applies."""

from __future__ import annotations

from pathlib import Path

from mtl_core.model.applicability import Applicability

# a few texts per task that differ in form as well as content, so even the tiny random encoder separates them
DOMAIN_TEXTS = {
    "question_type": [f"What is the capital of country number {i} ?" for i in range(30)]
    + [f"Who wrote book {i} ?" for i in range(30)],
    "topic": [f"Shares in company {i} fell {i}% on Monday after the firm warned that annual profits would miss "
              f"forecasts. Analysts in London said the market had expected a weaker quarter." for i in range(60)],
    "spam": [f"WIN a FREE prize {i}!! txt WIN to 8{i:04d} now, 150p/msg, T&C apply" for i in range(60)],
    "sentiment": [f"A dull, lifeless film {i}: the script is awful and the acting is worse." for i in range(30)]
    + [f"A wonderful, moving film {i} with a brilliant cast." for i in range(30)],
}
DOMAIN_TEXTS["sentiment_score"] = list(DOMAIN_TEXTS["sentiment"])  # same texts: one shared domain
DOMAIN_TEXTS["ner"] = [f"@user{i} lol just saw john at the mall #bored http://t.co/x{i}" for i in range(60)]


def never_applies(task: str, hidden: int) -> Applicability:
    """An applicability under which `task` applies to no text (p ~ 0.0067) and no other task is scored."""
    return Applicability(domains=[task, "other"], mean=[0.0] * hidden, scale=[1.0] * hidden,
                         weight=[[0.0] * hidden, [0.0] * hidden], bias=[-2.5, 2.5], shape=False,
                         rules={task: {"rule": "domain", "domain": [task], "polarity": None}})


def checkpoint_where(tiny_checkpoint: Path, out: Path, task: str) -> Path:
    """A copy of the tiny checkpoint whose applicability says `task` never applies."""
    from mtl_core.model.checkpoint import load_checkpoint, save_checkpoint

    model, tok, task_file, meta = load_checkpoint(tiny_checkpoint)
    model.applicability = never_applies(task, model.encoder.config.hidden_size)
    return save_checkpoint(model, tok, task_file, out, train_config=meta["train_config"], metrics=meta["metrics"])
