"""`python -m mtl_core ...` on a tiny-model workspace: JSON shapes and clear errors."""

import json
import subprocess
import sys

import pytest

from mtl_core.cli.main import main
from mtl_core.model.registry import Registry
from mtl_core.model.testing import make_tiny_checkpoint


@pytest.fixture
def tiny_home(tmp_path):
    reg = Registry(tmp_path)
    reg.register(make_tiny_checkpoint(reg.staging_dir()), note="tiny", activate=True)
    return tmp_path


def test_predict_json_shape(tiny_home, capsys):
    assert main(["--home", str(tiny_home), "predict", "--json", "hello world", "Is this spam?"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["text"] for r in out] == ["hello world", "Is this spam?"]
    assert set(out[0]["tasks"]) == {"sentiment", "sentiment_score", "topic", "question_type", "spam", "ner"}
    assert "label" in out[0]["tasks"]["sentiment"] and "value" in out[0]["tasks"]["sentiment_score"]
    assert isinstance(out[0]["tasks"]["ner"]["spans"], list)


def test_evaluate_json_shape(tiny_home, capsys):
    assert main(["--home", str(tiny_home), "evaluate", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["tasks"]) == {"sentiment", "sentiment_score", "topic", "question_type", "spam", "ner"}
    assert 0 <= out["tasks"]["sentiment"]["accuracy"] <= 1 and "pearson" in out["tasks"]["sentiment_score"]
    assert "f1" in out["tasks"]["ner"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "   "], "empty"),
        (["train", "--task-file", "/does/not/exist.yaml"], "not found"),
        (["train", "--sampling", "random"], "sampling"),
        (["activate", "v9999"], "v9999"),
    ],
)
def test_bad_input_is_a_clear_error(tiny_home, capsys, argv, message):
    assert main(["--home", str(tiny_home), *argv]) == 2
    assert message in capsys.readouterr().err


def test_missing_model_says_how_to_train(tmp_path, capsys):
    assert main(["--home", str(tmp_path), "predict", "hi"]) == 2
    assert "python -m mtl_core train" in capsys.readouterr().err


def test_prepare_data_prints_counts_table(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mtl_core", "--home", str(tmp_path), "prepare-data"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines()[2:] if line.strip()}
    assert set(lines) == {"sentiment", "sentiment_score", "topic", "question_type", "spam", "ner"}
    assert "train" in out.stdout and "dev" in out.stdout and "test" in out.stdout


def test_versions_marks_active(tiny_home, capsys):
    assert main(["--home", str(tiny_home), "versions"]) == 0
    assert capsys.readouterr().out.startswith("* v0001")


def test_train_flags_reach_the_model_config():
    from mtl_core.cli.main import _parser, _pick
    from mtl_core.model.modeling import ModelConfig

    args = _parser().parse_args(["train", "--word-shape", "0", "--crf", "true"])
    assert ModelConfig(**_pick(ModelConfig, args)) == ModelConfig(word_shape=0, crf=True)
    assert ModelConfig(**_pick(ModelConfig, _parser().parse_args(["train"]))).word_shape == 16  # default on


@pytest.mark.parametrize(
    "argv, steps, eval_every, note",
    [
        ([], 2000, 500, ""),  # the default recipe
        (["--full"], 4500, 500, "full training"),
        (["--full", "--steps", "3000"], 3000, 500, "full training"),  # a given option wins over --full
        (["--full", "--note", "mine"], 4500, 500, "mine"),
    ],
)
def test_full_recipe_and_given_options(tmp_path, monkeypatch, argv, steps, eval_every, note):
    import mtl_core.train.pipeline as pipeline

    seen = {}

    def fake_train(task_file, model_config, train_config, **kw):
        seen.update(train=train_config, **kw)
        raise RuntimeError("stop here")  # the CLI's error path; the configs are what this test checks

    monkeypatch.setattr(pipeline, "train_new_version", fake_train)
    with pytest.raises(RuntimeError, match="stop here"):
        main(["--home", str(tmp_path), "train", *argv])
    assert (seen["train"].steps, seen["train"].eval_every, seen["note"]) == (steps, eval_every, note)
    assert seen["quick"] is False


def test_quick_and_full_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--home", str(tmp_path), "train", "--quick", "--full"])
    assert "not allowed with" in capsys.readouterr().err
