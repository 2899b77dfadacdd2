"""Shared helpers for the benchmarks in bench/ (see bench/README.md); scripts import it as `bench.common`.

Every script: loads the model the same way (active workspace version if there is one, else an untrained
real-size model: same encoder, random heads, same speed), draws its texts from the test splits, times
with `time.perf_counter` (warm-up first, median of repeats, candidates interleaved inside each repeat so
drift hits them alike) and prints a complete table of its own. Nothing is read from a previous run.

Threads: `--threads N` calls `torch.set_num_threads(N)` (intra-op) and sets OMP/MKL variables for child
processes; the default is torch's own default (one per physical core). Inter-op threads are set to 1:
nothing here runs independent ops in parallel.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repo root (scripts put it on sys.path to import `bench.common`)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

import mtl_core  # noqa: E402, F401  (sets the offline / logging defaults)


def workspace_home() -> Path:
    """The workspace the app and CLI use: $MTL_STUDIO_HOME or <repo>/workspace (independent of the cwd)."""
    return Path(os.environ.get("MTL_STUDIO_HOME") or ROOT / "workspace")


# ---------------------------------------------------------------- arguments, threads, environment


def parser(description: str, repeats: int = 5, quick_repeats: int = 2) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short run while developing: fewer texts and repeats")
    p.add_argument("--threads", type=int, default=None,
                   help=f"torch intra-op threads (default: torch's default, {torch.get_num_threads()} here)")
    p.add_argument("--repeats", type=int, default=None,
                   help=f"timed repeats, the median is reported (default {repeats}; {quick_repeats} with --quick)")
    p.add_argument("--seed", type=int, default=0, help="which test texts are drawn")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="wall: time.perf_counter (default, what the tables mean); cpu: time.process_time, CPU "
                        "seconds of this process (all its threads): steadier on a shared, busy machine, "
                        "equal to wall time only with --threads 1 on an idle machine")
    p.set_defaults(_repeats=(repeats, quick_repeats))
    return p


def setup(args: argparse.Namespace) -> None:
    """Apply --threads, resolve --repeats, print the environment line every table is read against."""
    if args.threads:
        torch.set_num_threads(args.threads)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    with contextlib.suppress(RuntimeError):  # already set, or parallel work already started
        torch.set_num_interop_threads(1)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    full, quick = args._repeats
    if args.repeats is None:
        args.repeats = quick if args.quick else full
    print(environment() + ("" if args.clock == "wall" else "; CLOCK = CPU time of this process (dev mode)"))


def environment() -> str:
    return (f"# {cpu_name()}, {os.cpu_count()} logical CPUs; torch {torch.__version__} "
            f"intra-op threads {torch.get_num_threads()}, inter-op {torch.get_num_interop_threads()}; "
            f"python {platform.python_version()}")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# ---------------------------------------------------------------- model and texts


@dataclass
class Loaded:
    predictor: object  # mtl_core.serve.predictor.Predictor
    encoder_dir: str  # where the shared encoder's HF weights live (for bare AutoModel baselines)
    what: str  # one line saying which model this is
    trained: bool


def load_predictor(quantize: bool = False, device: str | None = "cpu") -> Loaded:
    """The active workspace model, else an untrained real-size one (pretrained MiniLM + random heads, seed 0)."""
    from mtl_core.serve.predictor import NoModelError, Predictor, load_active_predictor

    home = workspace_home()
    if (home / "models" / "registry.json").exists():
        try:
            pred = load_active_predictor(home, device=device, quantize=quantize)
            from mtl_core.model.registry import Registry

            enc = str(Registry(home).path_of(pred.version) / "encoder")
            return Loaded(pred, enc, f"trained workspace model {pred.version} ({home})", True)
        except NoModelError:
            pass
    from transformers import AutoTokenizer

    from mtl_core.model.modeling import ModelConfig, build_model, default_encoder_dir
    from mtl_core.tasks import load_task_file

    torch.manual_seed(0)
    task_file = load_task_file()
    model = build_model(task_file.tasks, ModelConfig())
    tok = AutoTokenizer.from_pretrained(default_encoder_dir())
    pred = Predictor(model, tok, task_file, device=device, quantize=quantize)
    return Loaded(pred, default_encoder_dir(),
                  "UNTRAINED real-size model (pretrained MiniLM + random heads; no active workspace model): "
                  "speed is representative, metrics are not", False)


def text_bench(description: str, repeats: int, n_texts: int, quick_n_texts: int,
               options: Callable[[argparse.ArgumentParser], None] | None = None):
    """The shared start of the per-text benchmarks: options (+ --n-texts, --batch-sizes, + what `options`
    adds), threads, the model, the test texts and the header lines. -> (args, Loaded, texts)."""
    p = parser(description, repeats=repeats, quick_repeats=2)
    p.add_argument("--n-texts", type=int, default=None,
                   help=f"texts per pass (default {n_texts}; {quick_n_texts} with --quick)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    if options is not None:
        options(p)
    args = p.parse_args()
    setup(args)
    loaded = load_predictor()
    texts = test_texts(args.n_texts or (quick_n_texts if args.quick else n_texts), args.seed)
    print(f"# model: {loaded.what}")
    print(f"# {describe_texts(loaded.predictor, texts)}; {args.repeats} repeats (median), 1 warm-up")
    return args, loaded, texts


def prepared_data():
    """(task_file, prepared) from the workspace data cache (built on first use)."""
    from mtl_core.train.pipeline import prepare

    return prepare(home=workspace_home())


def test_texts(n: int, seed: int = 0, prepared: dict | None = None) -> list[str]:
    """`n` texts from the test splits, round-robin over tasks (so short questions and long news mix)."""
    if prepared is None:
        _, prepared = prepared_data()
    rng = random.Random(seed)
    pools = []
    for task in sorted(prepared):
        texts = [ex.text for ex in prepared[task].get("test", []) if ex.text.strip()]
        rng.shuffle(texts)
        if texts:
            pools.append(texts)
    return round_robin(pools, n)


def round_robin(pools: list[list], n: int) -> list:
    """n items taken in turn from each pool (cycling through a pool when it runs out)."""
    out, i = [], 0
    while len(out) < n:
        pool = pools[i % len(pools)]
        out.append(pool[(i // len(pools)) % len(pool)])
        i += 1
    return out


def describe_texts(pred, texts: list[str]) -> str:
    lengths = [len(r) for r in pred.encode(texts).tokens]
    full = pred.encode(texts).full_lengths
    return (f"{len(texts)} test texts (round-robin over tasks, seed-shuffled): {min(lengths)}-{max(lengths)} tokens "
            f"kept, mean {statistics.mean(lengths):.0f}; {sum(f > pred.max_length for f in full)} truncated at "
            f"{pred.max_length}")


def sorted_batches(texts: list[str], batch_size: int) -> list[list[str]]:
    """The Predictor's own batching: sorted by character length, cut into consecutive batches."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [[texts[i] for i in order[s:s + batch_size]] for s in range(0, len(order), batch_size)]


def param_bytes(module: torch.nn.Module) -> int:
    """Bytes of parameters (shared tensors counted once)."""
    seen, total = set(), 0
    for p in module.parameters():
        if p.data_ptr() in seen:
            continue
        seen.add(p.data_ptr())
        total += p.numel() * p.element_size()
    return total


# ---------------------------------------------------------------- timing


CLOCK = time.perf_counter  # set by setup(): --clock cpu swaps in time.process_time


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@dataclass
class Timing:
    median: float  # seconds
    runs: list[float]

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy the repeats were."""
        return (max(self.runs) - min(self.runs)) / self.median if self.median else 0.0


def compare(runners: dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
            device="cpu") -> dict[str, Timing]:
    """Median seconds per runner; all runners run once per repeat, in rotating order, after `warmup` rounds."""
    names = list(runners)
    for _ in range(warmup):
        for name in names:
            runners[name]()
    runs: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            sync(device)
            t0 = CLOCK()
            runners[name]()
            sync(device)
            runs[name].append(CLOCK() - t0)
    return {n: Timing(statistics.median(v), v) for n, v in runs.items()}


# ---------------------------------------------------------------- output


def table(headers: list[str], rows: list[list], title: str | None = None) -> str:
    """A GitHub-markdown table (pastes straight into docs/PERFORMANCE.md)."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = [] if title is None else ["", f"## {title}", ""]
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        if v == 0 or abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:.3g}" if abs(v) < 0.01 else f"{v:.2f}"
    return str(v)


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def round_overrides(pairs: list[str], steps: int | None = None) -> dict:
    """--set FIELD=VALUE pairs (+ --steps) as RoundConfig keyword arguments, typed like the defaults."""
    from dataclasses import asdict

    from mtl_core.rounds.config import RoundConfig

    defaults = asdict(RoundConfig())
    out = {"steps": steps} if steps else {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in defaults:
            raise SystemExit(f"--set: RoundConfig has no field {key!r}")
        kind = type(defaults[key])
        out[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value) if kind in (int, float) else value
    return out
