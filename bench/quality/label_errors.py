"""Label errors: does the review queue's model-vs-label scoring find flipped labels as well as cleanlab?

For each single-label classification task of the model (the default six: sentiment, topic, question_type,
spam) take a seeded sample of its TRAIN split (up to --n examples, default 2,000), flip --rate (5 %) of the
labels to another class drawn at random (seeded; the flipped ones are remembered), and get OUT-OF-SAMPLE class
probabilities for every example by K-fold cross-validation (--folds, 5): per fold, a logistic regression (the
app's few-shot recipe: unit-length features, C = serve.fewshot.LOGREG_C) fitted on the noisy labels of the
other folds, on a frozen representation:

- raw: the pretrained MiniLM's mean-pooled last layer: it never saw any label (the clean protocol);
- mtl: the active multi-task model's pooled representation (its heads' input). Its encoder was trained on the
  TRUE labels of these very train examples, so flipped labels stand out more than they would in real data:
  optimistic.

The same probabilities are then ranked two ways:

- queue: `mtl_core.review.queue.model_vs_label` on a `Prediction` per example (default delta; ranked by
  `queue.rank`); examples it does not flag (the model agrees with the given label) rank last, in sample
  order (the sample is shuffled, so that tail is a random order);
- cleanlab: `cleanlab.filter.find_label_issues(labels, pred_probs, return_indices_ranked_by="self_confidence")`
  (its default filter_by, prune_by_noise_rate); unflagged examples rank last the same way.

Reported per task and representation, mean ± sd over --seeds flip seeds (the sample and its embeddings stay
fixed; the flips and the folds change): precision and recall at the top --top (100), and how many examples
each method flags at all (with how many true flips among them; for the queue also how many reach the
score_pool job's min_score, i.e. what the app would queue). Random ranking: expected precision = the flip
rate. A second table gives variants (cleanlab's confident_learning filter; its margin ranking). Embeddings
are cached in $TMPDIR/mtl-label-errors/ (reruns skip the encoders). Prints markdown and writes it to
docs/RESULTS.md under "## Label errors: review queue vs cleanlab" (only that section; --no-write: print only).

    nice -n 19 python bench/quality/label_errors.py [--home WS] [--n 2000] [--seeds 0 1 2] [--no-write]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repo root: `mtl_core` importable
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.results_doc import replace_section  # noqa: E402
from mtl_core.review.queue import model_vs_label, rank  # noqa: E402
from mtl_core.types import ClassPrediction, Prediction  # noqa: E402

RESULTS = ROOT / "docs" / "RESULTS.md"
HEADING = "## Label errors: review queue vs cleanlab"
CACHE = Path(tempfile.gettempdir()) / "mtl-label-errors"
NOTE = ("Why they differ: the queue flags every example whose predicted class differs from the given label and "
        "ranks them by 1 - p(given) (cleanlab's self-confidence; ranking by p(predicted) - "
        "p(given) instead gets question_type/raw 0.50, not 0.63); cleanlab flags a subset of those (its "
        "confident-joint count of issues per class pair, the examples with the largest margins, the prediction "
        "never equal to the given label) and ranks them the same way. So cleanlab's list is the queue's list "
        "with some examples left out, and the queue finds more in its top 100 where cleanlab leaves out true "
        "flips. Natural label errors in the train split count as misses for both.")
VARIANTS = {"queue": "queue (model_vs_label)", "queue_sc": "the queue's flags ranked by 1 - p(given)",
            "cleanlab": "cleanlab (prune_by_noise_rate, self_confidence)",
            "cleanlab_margin": "cleanlab, ranked by normalized_margin",
            "cleanlab_cl": "cleanlab (confident_learning, self_confidence)"}
REPS = {"raw": "pretrained MiniLM, mean-pooled (clean)", "mtl": "multi-task model, pooled (optimistic)"}


# ---------------------------------------------------------------- pure parts: flips, probabilities, rankings


def flip_labels(y: np.ndarray, n_classes: int, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """round(rate * N) labels moved to another class drawn uniformly -> (noisy labels, boolean mask of flips)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(y), size=round(rate * len(y)), replace=False)
    noisy, flipped = y.copy(), np.zeros(len(y), dtype=bool)
    for i in idx:
        noisy[i] = rng.choice([c for c in range(n_classes) if c != y[i]])
        flipped[i] = True
    return noisy, flipped


def oof_probs(x: np.ndarray, y: np.ndarray, n_classes: int, folds: int, seed: int) -> np.ndarray:
    """(N, C) out-of-sample probabilities: per stratified fold, a logistic regression fitted on the others."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from mtl_core.serve.fewshot import LOGREG_C, normalise

    x, probs = normalise(x), np.zeros((len(y), n_classes))
    for train, test in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y):
        clf = LogisticRegression(C=LOGREG_C, max_iter=2000).fit(x[train], y[train])
        probs[np.ix_(test, clf.classes_)] = clf.predict_proba(x[test])  # a class absent from a fold gets 0
    return probs


def queue_ranking(probs: np.ndarray, given: np.ndarray, labels: list[str], task: str = "task"):
    """The review queue's order: `model_vs_label` (default delta) on one Prediction per example, `rank`ed;
    unflagged examples last in index order. -> (order, flagged count, flagged scores)."""
    cands = []
    for i, row in enumerate(probs):
        top2 = np.sort(row)[::-1][:2]
        best = int(row.argmax())
        answer = ClassPrediction(label=labels[best], score=float(row[best]),
                                 probs={label: float(p) for label, p in zip(labels, row)},
                                 margin=float(top2[0] - (top2[1] if len(top2) > 1 else 0.0)))
        pred = Prediction(text="", tasks={task: answer}, n_tokens=0, truncated=False)
        cands += model_vs_label(pred, i, {task: labels[given[i]]})
    ranked = rank(cands)
    flagged = [c.index for c in ranked]
    rest = sorted(set(range(len(probs))) - set(flagged))
    return np.array(flagged + rest, dtype=int), len(flagged), np.array([c.score for c in ranked])


def by_self_confidence(probs: np.ndarray, given: np.ndarray, order: np.ndarray, n_flagged: int) -> np.ndarray:
    """`order` with its first n_flagged re-ranked by 1 - p(given) (cleanlab's self-confidence score; ties keep
    their order): the queue's own flags, scored the way cleanlab ranks them."""
    flagged = order[:n_flagged]
    ranked = flagged[np.argsort(probs[flagged, given[flagged]], kind="stable")]
    return np.concatenate([ranked, order[n_flagged:]])


def cleanlab_ranking(probs: np.ndarray, given: np.ndarray, filter_by: str = "prune_by_noise_rate",
                     ranked_by: str = "self_confidence"):
    """cleanlab's find_label_issues order; unflagged examples last in index order. -> (order, flagged count)."""
    from cleanlab.filter import find_label_issues

    found = [int(i) for i in find_label_issues(given, probs, filter_by=filter_by,
                                               return_indices_ranked_by=ranked_by)]
    rest = sorted(set(range(len(probs))) - set(found))
    return np.array(found + rest, dtype=int), len(found)


def at_k(order: np.ndarray, flipped: np.ndarray, k: int) -> tuple[float, float]:
    """(precision, recall) of the first k of `order` against the mask of truly flipped labels."""
    hits = int(flipped[order[:k]].sum())
    return hits / k, hits / max(1, int(flipped.sum()))


# ---------------------------------------------------------------- data and embeddings


def source_home(arg: str | None) -> Path:
    return Path(arg or os.environ.get("MTL_STUDIO_HOME") or ROOT / "workspace").resolve()


def train_samples(home: Path, predictor, n: int, seed: int) -> dict[str, tuple[list[str], np.ndarray, list[str]]]:
    """task -> (texts, true class indices, labels) for up to n seeded train examples of every single-label
    classification task. Prepared from a temp copy of the workspace's data cache (the workspace is never written)."""
    from mtl_core.data import prepare_all

    cfg = predictor.meta.get("train_config", {})
    data_seed = int(cfg.get("data_seed", cfg.get("seed", 0)))
    tmp = Path(tempfile.mkdtemp(prefix="mtl-label-errors-data-"))
    try:
        if (home / "data_cache").is_dir():
            shutil.copytree(home / "data_cache", tmp / "data_cache")
        prepared = prepare_all(predictor.task_file, tmp / "data_cache", seed=data_seed)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = {}
    for spec in predictor.task_file.tasks:
        if spec.kind != "classification" or spec.name not in predictor.task_names:
            continue
        train = [ex for ex in prepared.get(spec.name, {}).get("train", []) if ex.label in spec.labels]
        train = random.Random(seed).sample(train, min(n, len(train)))
        out[spec.name] = ([ex.text for ex in train], np.array([spec.labels.index(ex.label) for ex in train]),
                          list(spec.labels))
    return out


def cached_embed(predictor, texts: list[str], identity: str) -> np.ndarray:
    key = hashlib.blake2b("\x00".join([identity, *texts]).encode(), digest_size=12).hexdigest()
    path = CACHE / f"{key}.npy"
    if path.exists():
        return np.load(path)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batched: less padding
    vectors = predictor.embed([texts[i] for i in order])
    x = np.empty_like(vectors)
    x[order] = vectors
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path.with_suffix(".tmp.npy"), x)
    os.replace(path.with_suffix(".tmp.npy"), path)
    return x


def raw_predictor(predictor):
    """The pretrained MiniLM with the trained model's tokenizer and length: embed() = mean-pooled last layer."""
    from mtl_core.model.modeling import ModelConfig, build_model
    from mtl_core.serve.predictor import Predictor

    torch.manual_seed(0)  # the (unused) heads
    model = build_model(predictor.task_file.tasks, ModelConfig(pooling="mean", max_length=predictor.max_length))
    return Predictor(model, predictor.tokenizer, predictor.task_file, device="cpu")


# ---------------------------------------------------------------- one task, one representation, one seed


def evaluate(x: np.ndarray, y: np.ndarray, labels: list[str], args, seed: int) -> dict[str, float]:
    from mtl_core.review.jobs import DEFAULT_MIN_SCORE

    noisy, flipped = flip_labels(y, len(labels), args.rate, seed)
    probs = oof_probs(x, noisy, len(labels), args.folds, seed)
    r = {"acc": float((probs.argmax(1) == y).mean()), "flips": int(flipped.sum())}
    q_order, q_n, q_scores = queue_ranking(probs, noisy, labels)
    orders = {"queue": (q_order, q_n), "queue_sc": (by_self_confidence(probs, noisy, q_order, q_n), q_n)}
    orders["cleanlab"] = cleanlab_ranking(probs, noisy)
    orders["cleanlab_cl"] = cleanlab_ranking(probs, noisy, filter_by="confident_learning")
    orders["cleanlab_margin"] = cleanlab_ranking(probs, noisy, ranked_by="normalized_margin")
    for name, (order, n_flagged) in orders.items():
        r[f"{name}_p"], r[f"{name}_r"] = at_k(order, flipped, args.top)
        r[f"{name}_n"], r[f"{name}_hits"] = n_flagged, int(flipped[order[:n_flagged]].sum())
    r["queue_min_n"] = int((q_scores >= DEFAULT_MIN_SCORE).sum())
    r["subset"] = set(orders["cleanlab"][0][:orders["cleanlab"][1]]) <= set(q_order[:q_n])
    return r


def ms(values: list[float], digits: int = 2) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


def count(values: list[float]) -> str:
    return f"{statistics.mean(values):.0f}"


def tables(results: dict, args, n_of: dict[str, int]) -> str:
    k = args.top
    lines = [f"| task | representation | n | flipped | OOF accuracy (true labels) | random P@{k} | "
             f"queue P@{k} | cleanlab P@{k} | queue R@{k} | cleanlab R@{k} | queue flags (true flips; "
             f"queued >= min_score) | cleanlab flags (true flips) |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (task, rep), runs in results.items():
        col = {key: [r[key] for r in runs] for key in runs[0]}
        lines.append(
            f"| {task} | {rep} | {n_of[task]} | {count(col['flips'])} | {ms(col['acc'])} | "
            f"{statistics.mean(col['flips']) / n_of[task]:.2f} | {ms(col['queue_p'])} | "
            f"{ms(col['cleanlab_p'])} | {ms(col['queue_r'])} | {ms(col['cleanlab_r'])} | "
            f"{count(col['queue_n'])} ({count(col['queue_hits'])}; {count(col['queue_min_n'])}) | "
            f"{count(col['cleanlab_n'])} ({count(col['cleanlab_hits'])}) |")
    lines += ["", f"Variants, P@{k} (flags), mean ± sd over seeds; last rows: mean over tasks:", "",
              "| task | representation | " + " | ".join(VARIANTS.values()) + " |", "|---|---|" + "---|" * len(VARIANTS)]
    for rep in args.reps:
        for (task, rp), runs in [*((key, rs) for key, rs in results.items() if key[1] == rep),
                                 (("**mean**", rep), [r for (_, rp), rs in results.items() if rp == rep for r in rs])]:
            cells = [f"{ms([r[f'{m}_p'] for r in runs])} ({count([r[f'{m}_n'] for r in runs])})" for m in VARIANTS]
            lines.append(f"| {task} | {rp} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def subset_note(results: dict) -> str:
    runs = [r for rs in results.values() for r in rs]
    return (f" Checked here: cleanlab's flags were a subset of the queue's in {sum(r['subset'] for r in runs)} of "
            f"{len(runs)} runs.")


def _paired(runs: list[dict], a: str, b: str, at_least: float) -> tuple[float, float, bool]:
    """Mean and sd of the paired P@k differences a - b; clear = at least `at_least` and over 2 standard errors."""
    d = [r[f"{a}_p"] - r[f"{b}_p"] for r in runs]
    mean, sd = statistics.mean(d), statistics.stdev(d) if len(d) > 1 else 0.0
    return mean, sd, abs(mean) >= at_least and abs(mean) > 2 * sd / len(d) ** 0.5


def conclusion(results: dict, args) -> str:
    """The queue vs cleanlab at P@top: per representation over all (task, seed) runs, then every task where one
    of them wins clearly, and whether scoring the queue's flags by self-confidence closes a loss."""
    k, parts, lost = args.top, [], []
    for rep in args.reps:
        mean, sd, clear = _paired([r for (_, rp), rs in results.items() if rp == rep for r in rs],
                                  "queue", "cleanlab", 0.03)
        word = "ties with" if not clear else "beats" if mean > 0 else "LOSES CLEARLY to"
        parts.append(f"{rep}: the queue {word} cleanlab on average ({mean:+.3f} P@{k}, sd {sd:.3f})")
    per_task = []
    for (task, rep), runs in results.items():
        mean, _, clear = _paired(runs, "queue", "cleanlab", 0.05)
        if clear:
            per_task.append(f"{task}/{rep} {'won' if mean > 0 else 'LOST'} ({mean:+.2f})")
            if mean < 0:
                lost.append((task, rep, runs))
    text = "Conclusion: " + "; ".join(parts) + ". Clear per-task differences (>= 0.05, over 2 s.e. across " \
        f"seeds): {', '.join(per_task) or 'none'}."
    if lost:
        fixed = [f"{t}/{rp} {statistics.mean(r['queue_sc_p'] for r in rs):.2f} vs cleanlab "
                 f"{statistics.mean(r['cleanlab_p'] for r in rs):.2f}" for t, rp, rs in lost]
        rows = list(results.values())
        at_least = sum(statistics.mean(r["queue_sc_p"] for r in rs) >= statistics.mean(r["cleanlab_p"] for r in rs)
                       - 0.01 for rs in rows)
        text += (f" Where the queue loses it is its score, not its flags: the queue's own flags ranked by "
                 f"1 - p(given) (cleanlab's self-confidence) give {'; '.join(fixed)}, and P@{k} within 0.01 of "
                 f"cleanlab or above in {at_least} of {len(rows)} rows. Suggested change to `model_vs_label` "
                 "(`queue._disagreement`, a given label): score 1 - p(given) instead of p(predicted) - p(given); "
                 "the same items are flagged, binary tasks keep their order, only the scale rises (more items "
                 "pass the score_pool job's min_score 0.25, and they rank higher against other reasons).")
    return text


def write_section(text: str) -> None:
    replace_section(HEADING, text)


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--home", default=None, help="workspace (default: $MTL_STUDIO_HOME or ./workspace); read only")
    p.add_argument("--n", type=int, default=2000, help="train examples sampled per task (default 2000)")
    p.add_argument("--rate", type=float, default=0.05, help="share of labels flipped (default 0.05)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    p.add_argument("--top", type=int, default=100, help="precision / recall at this rank (default 100)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="flip (and fold) seeds")
    p.add_argument("--sample-seed", type=int, default=0, help="which train examples are sampled")
    p.add_argument("--reps", nargs="+", default=list(REPS), choices=list(REPS))
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/RESULTS.md alone")
    return p.parse_args()


def main() -> int:
    import cleanlab

    from mtl_core.serve.predictor import NoModelError, load_active_predictor

    args = _args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    home = source_home(args.home)
    try:
        predictor = load_active_predictor(home, device="cpu")
    except NoModelError as exc:
        sys.exit(f"label_errors: {exc}")
    samples = train_samples(home, predictor, args.n, args.sample_seed)
    encoders = {"mtl": (predictor, f"mtl:{home}:{predictor.version}"),
                "raw": (raw_predictor(predictor), f"raw:{predictor.max_length}")}
    results, n_of, t_embed = {}, {}, 0.0
    for task, (texts, y, labels) in samples.items():
        n_of[task] = len(texts)
        for rep in args.reps:
            t1 = time.perf_counter()
            x = cached_embed(encoders[rep][0], texts, encoders[rep][1])
            t_embed += time.perf_counter() - t1
            results[(task, rep)] = [evaluate(x, y, labels, args, seed) for seed in args.seeds]
            runs = results[(task, rep)]
            print(f"  {task}/{rep}: queue P@{args.top} {ms([r['queue_p'] for r in runs])}, cleanlab "
                  f"{ms([r['cleanlab_p'] for r in runs])} ({time.perf_counter() - t0:.0f} s)", flush=True)
    wall = time.perf_counter() - t0
    command = "python bench/quality/label_errors.py" + "".join(f" {a}" for a in sys.argv[1:])
    header = (f"`{command}` — model {predictor.version} ({home.name}); per task up to {args.n} seeded train "
              f"examples, {args.rate:.0%} of labels flipped to another random class; out-of-sample "
              f"probabilities from {args.folds}-fold logistic regression on frozen features; mean ± sd over "
              f"{len(args.seeds)} flip seeds; cleanlab {cleanlab.__version__}; {os.cpu_count()} CPUs, torch "
              f"threads {torch.get_num_threads()}; {wall:.0f} s wall ({t_embed:.0f} s embedding"
              f"{', cached' if t_embed < 5 else ''}).")
    reps = "; ".join(f"{r} = {REPS[r]}" for r in args.reps)
    text = "\n".join([header, "", tables(results, args, n_of), "", f"Representations: {reps}. "
                      f"P@{args.top}: share of the top {args.top} that are truly flipped (random: the flip rate); "
                      f"R@{args.top}: share of the flips found in the top {args.top}. Flags: examples a method "
                      "returns at all (the queue: the model's answer differs from the given label; queued: "
                      "score >= the score_pool job's min_score). Unflagged examples rank last.", "",
                      NOTE + subset_note(results), "", conclusion(results, args)])
    print()
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"\nwritten to {RESULTS.relative_to(ROOT)} ({HEADING})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
