"""Review-queue scoring speed: 10,000 bundled texts through the `score_pool` job's code path.

    nice -n 19 python bench/system/queue_scoring.py            # 10,000 texts (the target: minutes on a CPU)
    nice -n 19 python bench/system/queue_scoring.py --quick    # 1,000 texts, while developing

What is timed is what the job does after the model is loaded: store the texts, predict them (one
forward per text, length-bucketed batches), store every head's answer, score the candidates and
upsert the queue, into a throwaway SQLite store. Texts come round-robin from the train and dev
splits of the bundled data sets (the queue never scores test texts), with their gold labels, so
`model_vs_label` is exercised too. The model is the active workspace version, else an untrained
real-size one (pretrained encoder + random heads: same speed, meaningless scores).
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: `bench` and `mtl_core` importable

from bench import common
from mtl_core.review.jobs import score_and_store
from mtl_core.review.pools import SCORABLE_SPLITS, Pool, PoolSpec, gold_value
from mtl_core.store import add_texts, init_db, queue_progress, session_factory


def pool_examples(n: int, seed: int = 0) -> list[tuple[str, dict]]:
    """`n` (text, {task: gold}) pairs, round-robin over tasks, from train/dev only."""
    task_file, prepared = common.prepared_data()
    rng = random.Random(seed)
    pools = []
    for spec in task_file.tasks:
        if spec.name not in prepared:
            continue
        items = [(ex.text, {spec.name: gold_value(spec, ex)})
                 for split in SCORABLE_SPLITS for ex in prepared[spec.name][split] if ex.text.strip()]
        rng.shuffle(items)
        pools.append(items)
    return common.round_robin(pools, n)


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], repeats=1, quick_repeats=1)
    p.add_argument("--n", type=int, default=None, help="texts to score (default 10,000; 1,000 with --quick)")
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args()
    common.setup(args)
    n = args.n or (1_000 if args.quick else 10_000)

    loaded = common.load_predictor()
    predictor = loaded.predictor
    print(f"# model: {loaded.what}")
    examples = pool_examples(n, args.seed)
    texts = [t for t, _ in examples]
    print(f"# {common.describe_texts(predictor, texts)}".replace("test texts", "train/dev texts"))

    with tempfile.TemporaryDirectory() as tmp:
        engine = init_db(f"sqlite:///{Path(tmp) / 'bench.db'}")
        sessions = session_factory(engine)
        predictor.predict(texts[:64], batch_size=args.batch_size)  # warm-up (allocator, kernels)
        with sessions() as session:
            t0, c0 = time.perf_counter(), time.process_time()
            ids = add_texts(session, texts, source="bench")
            t_store, c_store = time.perf_counter() - t0, time.process_time() - c0
            pool = Pool(PoolSpec("upload", "upload:bench"), ids, texts, [g for _, g in examples])
            t1, c1 = time.perf_counter(), time.process_time()
            queued = score_and_store(session, predictor, pool, model_version="bench",
                                     batch_size=args.batch_size)
            t_score, c_score = time.perf_counter() - t1, time.process_time() - c1
            progress = queue_progress(session)
        engine.dispose()

    total, cpu = t_store + t_score, c_store + c_score
    rows = [
        ["store texts", f"{t_store:.2f}", n / t_store if t_store else 0.0, f"{c_store:.2f}"],
        ["predict + store predictions + queue", f"{t_score:.2f}", n / t_score, f"{c_score:.2f}"],
        ["total", f"{total:.2f}", n / total, f"{cpu:.2f}"],
    ]
    print(common.table(["step", "wall s", "texts/s (wall)", "CPU s (all threads)"], rows,
                       title=f"Queue scoring, {n:,} texts"))
    threads = common.torch.get_num_threads()
    print(f"\nCPU-bound rate: {n / cpu:.1f} texts per CPU-second; with {threads} uncontended threads "
          f"that is about {n / cpu * threads:.0f} texts/s (wall above is lower when other work shares the CPU)")
    print(f"\nqueue items: {progress['total']:,} ({', '.join(f'{r} {c:,}' for r, c in sorted(queued.items()))})")
    minutes = 10_000 / (n / total) / 60
    print(f"10,000 texts would take {minutes:.1f} min at this rate: "
          f"{common.verdict(minutes <= 5)} (target: a few minutes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
