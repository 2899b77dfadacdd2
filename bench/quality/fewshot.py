"""A held-out task added few-shot: does the multi-task encoder transfer better than the raw one?

    python bench/quality/fewshot.py --bases spam=/tmp/heldout_spam question_type=/tmp/heldout_question_type \
        topic=/tmp/heldout_topic [--ks 2 4 8 16 32] [--draws 5] [--latency-labels 100]

Each base workspace holds a model trained WITHOUT that task (`python -m mtl_core --home H train --tasks <the
other five>`: its encoder never saw the task's texts). Per task and k, `--draws` seeded draws of k training
examples per class; test accuracy on the task's whole test split of:
  mtl/api      the few-shot head as the app fits it: labels stored in the base's store, `review.fewshot_fit.refit`
               (default FewShotConfig), answers through `Predictor.predict` (the Predict page's path)
  mtl/<m>-<r>  the other head methods/representations on the same multi-task features (serve/fewshot.py)
  raw/<m>-<r>  the same heads on the pretrained MiniLM alone (mean-pooled last layer = the issue's anchor)
  tfidf        TF-IDF (1-2 grams) + logistic regression on the same k texts
Then the latency a user waits: the k-th label saved -> the new answer, with `--latency-labels` labels stored.
Results: docs/RESULTS.md, section "Few-shot new tasks".
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import environment, table  # noqa: E402
from mtl_core.data import prepare_all  # noqa: E402
from mtl_core.review.fewshot_fit import refit  # noqa: E402
from mtl_core.review.new_task import store_rows  # noqa: E402
from mtl_core.serve import fewshot  # noqa: E402
from mtl_core.serve.predictor import load_active_predictor  # noqa: E402
from mtl_core.store.db import open_store  # noqa: E402
from mtl_core.tasks import TaskSpec, load_task_file  # noqa: E402
from mtl_core.workspace import data_cache_dir  # noqa: E402

API_K = 8  # the target k: the app's path is measured there (it must equal mtl/logreg-layers)
VARIANTS = [(m, r) for m in fewshot.METHODS for r in fewshot.REPRESENTATIONS]


def draw(train: list, labels: list[str], k: int, seed: int) -> list:
    rng = random.Random(seed)
    out = []
    for label in labels:
        pool = [ex for ex in train if ex.label == label]
        out += rng.sample(pool, min(k, len(pool)))
    return out


class RawEncoder:
    """The pretrained MiniLM alone: the same feature recipe as `fewshot.features_from_output`."""

    def __init__(self, max_length: int):
        from transformers import AutoTokenizer

        from mtl_core.model.modeling import default_encoder_dir, load_encoder

        path = default_encoder_dir()
        self.tok, self.enc, self.max_length = AutoTokenizer.from_pretrained(path), load_encoder(path).eval(), max_length

    @torch.inference_mode()
    def both(self, texts: list[str]) -> dict[str, np.ndarray]:
        """representation -> (N, D), from one forward per batch."""
        out: dict[str, list] = {r: [] for r in fewshot.REPRESENTATIONS}
        for i in range(0, len(texts), 64):
            b = self.tok(texts[i:i + 64], truncation=True, max_length=self.max_length, padding=True, return_tensors="pt")
            res = self.enc(**b, output_hidden_states=True, return_dict=True)
            m = b["attention_mask"].unsqueeze(-1).float()
            pooled = (res.last_hidden_state * m).sum(1) / m.sum(1)
            shim = type("Out", (), {"pooled": pooled, "hidden_states": res.hidden_states})
            for r in out:
                out[r].append(fewshot.features_from_output(shim, b["attention_mask"], r))
        return {r: np.concatenate(v) for r, v in out.items()}


@torch.inference_mode()
def mtl_both(predictor, texts: list[str]) -> dict[str, np.ndarray]:
    """The multi-task model's features, both representations from one forward per batch."""
    out: dict[str, list] = {r: [] for r in fewshot.REPRESENTATIONS}
    for i in range(0, len(texts), 64):
        batch = predictor.encode(texts[i:i + 64])
        res = predictor.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                              shape_ids=batch.shape_ids, output_hidden_states=True)
        for r in out:
            out[r].append(fewshot.features_from_output(res, batch.attention_mask, r))
    return {r: np.concatenate(v) for r, v in out.items()}


def accuracy(head: fewshot.FewShotHead, x: np.ndarray, gold: list[str]) -> float:
    return float((np.array(head.labels)[head.proba(x).argmax(1)] == np.array(gold)).mean())


def tfidf_accuracy(train: list, test: list) -> float:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    clf = LogisticRegression(C=10.0, max_iter=2000).fit(vec.fit_transform([e.text for e in train]),
                                                        [e.label for e in train])
    return float((clf.predict(vec.transform([e.text for e in test])) == np.array([e.label for e in test])).mean())


def run_task(task: str, home: Path, ks: list[int], draws: int, raw: RawEncoder) -> tuple[list[dict], dict]:
    predictor = load_active_predictor(home)
    spec = load_task_file().by_name(task)
    seed = int(predictor.meta["train_config"].get("data_seed", predictor.meta["train_config"].get("seed", 0)))
    data = prepare_all(load_task_file(), data_cache_dir(home), seed=seed)[task]
    test, gold = data["test"], [e.label for e in data["test"]]
    t0 = time.perf_counter()
    texts = [e.text for e in test]
    feats = {("mtl", r): x for r, x in mtl_both(predictor, texts).items()}
    feats.update({("raw", r): x for r, x in raw.both(texts).items()})
    print(f"# {task}: test features in {time.perf_counter() - t0:.0f}s ({len(test)} texts)", flush=True)
    _, sessions = open_store(home)
    rows = []
    for k in ks:
        for d in range(draws):
            shots = draw(data["train"], spec.labels, k, seed=1000 * k + d)
            row = {"task": task, "k": k, "draw": d, "tfidf": tfidf_accuracy(shots, test)}
            if k == API_K:  # the app's whole path (store, refit, Predictor.predict): slow, so at the target k only
                row["mtl/api"], row["api cv estimate"] = api_accuracy(home, predictor, spec, shots, test,
                                                                      f"{task}_k{k}_d{d}", sessions)
            y, shot_texts = [e.label for e in shots], [e.text for e in shots]
            for enc_name, xs in (("mtl", mtl_both(predictor, shot_texts)), ("raw", raw.both(shot_texts))):
                for m, r in VARIANTS:
                    x = xs[r]
                    head = fewshot.fit_head(task, spec.labels, x, y, "bench", fewshot.FewShotConfig(m, r, 1))
                    row[f"{enc_name}/{m}-{r}"] = accuracy(head, feats[(enc_name, r)], gold)
            rows.append(row)
        print(f"# {task} k={k} done", flush=True)
    return rows, {}


def api_accuracy(home: Path, predictor, spec: TaskSpec, shots: list, test: list, name: str,
                 sessions) -> tuple[float, float]:
    """The app's path: a new task named `name`, labels stored, `refit`, answers from `Predictor.predict`.
    -> (test accuracy, the accuracy the app shows: cross-validated on the k labels)."""
    new = TaskSpec(name=name, kind="classification", labels=spec.labels)
    with sessions() as s:
        store_rows(s, name, [(e.text, e.label) for e in shots], "bench")
        report = refit(home, predictor, new, s)
    predictor.refresh_fewshot(home, {name})
    try:
        preds = predictor.predict([e.text for e in test])
        acc = float(np.mean([p.tasks[name].label == e.label for p, e in zip(preds, test)])) if report.fitted else 0.0
        return acc, float(report.cv_accuracy or 0.0)
    finally:
        fewshot.delete_head(name, home)
        predictor.refresh_fewshot(home, set())


def latency(home: Path, task: str, n_labels: int) -> dict:
    """Seconds from the n-th label saved to the new answer on Predict: store + refit (+ its one forward) + the
    predict of one text with the new head loaded (what the page does on its next rerun)."""
    predictor = load_active_predictor(home)
    spec = load_task_file().by_name(task)
    data = prepare_all(load_task_file(), data_cache_dir(home), seed=0)[task]["train"]
    shots = draw(data, spec.labels, n_labels // len(spec.labels) + 1, seed=7)[:n_labels]
    name = f"{task}_latency"
    new = TaskSpec(name=name, kind="classification", labels=spec.labels)
    _, sessions = open_store(home)
    with sessions() as s:  # the first n-1 labels, fitted before (features cached as the app would have them)
        store_rows(s, name, [(e.text, e.label) for e in shots[:-1]], "bench")
        refit(home, predictor, new, s)
    t0 = time.perf_counter()
    with sessions() as s:
        store_rows(s, name, [(shots[-1].text, shots[-1].label)], "bench")
        t1 = time.perf_counter()
        report = refit(home, predictor, new, s)
    t2 = time.perf_counter()
    predictor.refresh_fewshot(home, {name})
    predictor.predict(["a text typed on the Predict page right after the label"])
    t3 = time.perf_counter()
    fewshot.delete_head(name, home)
    return {"labels": report.n_labels, "store_s": t1 - t0, "refit_s": t2 - t1, "predict_s": t3 - t2,
            "total_s": t3 - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bases", nargs="+", required=True, help="task=workspace of a model trained without it")
    p.add_argument("--ks", nargs="+", type=int, default=[2, 4, 8, 16, 32])
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--latency-labels", type=int, default=100)
    args = p.parse_args()
    print(environment())
    bases = dict(b.split("=", 1) for b in args.bases)
    raw = RawEncoder(max_length=128)
    rows = []
    for task, home in bases.items():
        rows += run_task(task, Path(home), args.ks, args.draws, raw)[0]
    cols = ["tfidf", "raw/logreg-pooled", "mtl/api", "api cv estimate"] + [f"{e}/{m}-{r}" for e in ("raw", "mtl") for m, r in VARIANTS
                                                        if f"{e}/{m}-{r}" != "raw/logreg-pooled"]
    out = []
    for task in bases:
        for k in args.ks:
            sel = [r for r in rows if r["task"] == task and r["k"] == k]
            out.append([task, k, *[f"{np.mean([r[c] for r in sel]):.3f}±{np.std([r[c] for r in sel]):.3f}"
                                   if c in sel[0] else "—" for c in cols]])
    print(table(["task", "k", *cols], out, "test accuracy, mean ± std over draws"))
    default = f"mtl/{fewshot.FewShotConfig().method}-{fewshot.FewShotConfig().representation}"
    for k in args.ks:
        for ref in ("raw/logreg-pooled", f"raw/{default[4:]}", "tfidf"):
            gain = np.mean([np.mean([r[default] - r[ref] for r in rows if r["task"] == t and r["k"] == k])
                            for t in bases])
            print(f"k={k}: {default} - {ref}, mean over tasks = {gain * 100:+.1f} points")
    task, home = next(iter(bases.items()))
    lat = latency(Path(home), task, args.latency_labels)
    print(f"\n## latency, {lat['labels']} labels ({task}): store {lat['store_s']:.2f}s + refit {lat['refit_s']:.2f}s "
          f"+ predict {lat['predict_s']:.2f}s = {lat['total_s']:.2f}s")


if __name__ == "__main__":
    main()
