"""`python -m mtl_core tasks ...`: add a task from a labelled file (bad rows reported), list, fit, remove."""

from __future__ import annotations

from mtl_core.cli.main import main
from mtl_core.data.workspace_tasks import load_workspace_tasks
from mtl_core.serve.fewshot import load_heads


def test_add_with_labelled_file_fits_a_head_and_lists_it(workspace, tmp_path, capsys):
    f = tmp_path / "tickets.csv"
    f.write_text("message,route\nserver down,urgent\nprinter jam,later\ndisk full,urgent\nnew mug,later\n"
                 "site 500s,urgent\nlunch,later\nbroken row,sometime\n,urgent\n", encoding="utf-8")
    code = main(["tasks", "add", "routing", "--kind", "classification", "--labels", "urgent", "later",
                 "--labelled", str(f), "--text-column", "message", "--label-column", "route"])
    out = capsys.readouterr().out
    assert code == 0
    assert "line 8: label 'sometime' is not one of" in out and "line 9: empty text" in out
    assert "stored 6 texts, 6 labels (2 rows skipped)" in out and "fitted on 6 labels" in out
    assert load_workspace_tasks(workspace).by_name("routing").labels == ["urgent", "later"]
    assert set(load_heads(workspace, "v0001")) == {"routing"}
    assert main(["tasks", "list"]) == 0
    listed = capsys.readouterr().out
    assert "routing" in listed and "few-shot" in listed and "'urgent': 3" in listed
    assert main(["tasks", "fit", "routing"]) == 0
    assert main(["tasks", "remove", "routing"]) == 0
    assert "routing" not in {t.name for t in load_workspace_tasks(workspace).tasks}
    assert load_heads(workspace, "v0001") == {}


def test_bad_input_is_a_clear_error_and_stores_nothing(workspace, tmp_path, capsys):
    png = tmp_path / "x.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n....")
    assert main(["tasks", "add", "t1", "--kind", "classification", "--labels", "a", "b", "--labelled", str(png)]) == 2
    assert "PNG image" in capsys.readouterr().err
    assert "t1" not in {t.name for t in load_workspace_tasks(workspace).tasks}  # nothing half-made
    assert main(["tasks", "add", "sentiment", "--kind", "classification", "--labels", "a", "b"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["tasks", "add", "t2", "--kind", "classification", "--labels", "only"]) == 2
    capsys.readouterr()
    assert main(["tasks", "remove", "nope"]) == 2
    assert "unknown task" in capsys.readouterr().err


def test_remove_and_rename_a_trained_task_make_new_versions(workspace, capsys):
    from mtl_core.model.checkpoint import load_checkpoint
    from mtl_core.model.registry import Registry
    from mtl_core.serve.predictor import load_active_predictor
    from mtl_core.store import add_texts
    from mtl_core.store.annotations import add_annotation, current_labels
    from mtl_core.store.db import open_store

    _, sessions = open_store(workspace)
    with sessions() as s:
        [tid] = add_texts(s, ["Is it spam?"])
        add_annotation(s, tid, "spam", "ham", "ann")
        s.commit()
    assert main(["tasks", "rename", "spam", "junk"]) == 0
    reg = Registry(workspace)
    assert reg.active == "v0002" and reg.get("v0002").parent == "v0001"
    model, _, task_file, _ = load_checkpoint(reg.path_of("v0002"))
    assert "junk" in model.heads and "spam" not in model.heads and task_file.by_name("junk").labels == ["ham", "spam"]
    before = load_active_predictor(workspace).predict(["win a prize now"])[0]
    assert "junk" in before.tasks and "spam" not in before.tasks
    with sessions() as s:
        assert [(r.text_id, r.value) for r in current_labels(s, "junk")] == [(tid, "ham")]
    assert {t.name for t in load_workspace_tasks(workspace).tasks} >= {"junk"}
    assert main(["tasks", "remove", "junk"]) == 0
    assert reg.active == "v0003" and "junk" not in load_active_predictor(workspace).task_names
    assert "junk" not in {t.name for t in load_workspace_tasks(workspace).tasks}
    assert main(["tasks", "rename", "ner", "sentiment"]) == 2  # taken
    assert "already exists" in capsys.readouterr().err
    assert reg.active == "v0003"  # nothing changed
