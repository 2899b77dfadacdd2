import pytest

from mtl_core.tasks import TaskFileError, load_task_file, parse_task_file


def test_default_task_file_has_six_tasks():
    tf = load_task_file()
    assert [t.name for t in tf.tasks] == ["sentiment", "sentiment_score", "topic", "question_type", "spam", "ner"]
    assert tf.by_name("ner").tag_names[:3] == ["O", "B-company", "I-company"]
    assert tf.by_name("sentiment_score").value_range == (-4.0, 4.0)


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"tasks": [{"name": "a", "kind": "nope", "labels": ["x", "y"]}]}, "kind"),
        ({"tasks": [{"kind": "classification"}]}, "name"),
        ({"tasks": [{"name": "a", "kind": "classification", "labels": ["x"]}]}, "labels"),
        ({"tasks": [{"name": "a", "kind": "classification", "labels": ["x", "y"], "colour": 1}]}, "colour"),
        ({"tasks": [{"name": "a", "kind": "regression", "value_range": [3, 1]}]}, "value_range"),
        ({"tasks": [{"name": "a", "kind": "regression", "loss_weight": -1}]}, "loss_weight"),
        ({"tasks": [{"name": "a", "kind": "regression", "source": {"path": "x.csv"}}]}, "source"),
        ({"tasks": []}, "tasks"),
        ({"tasks": [{"name": "a", "kind": "regression"}, {"name": "a", "kind": "regression"}]}, "duplicate"),
        ({"tasks": [{"name": "a", "kind": "regression"}],
          "contradictions": [{"name": "r", "if_task": "zzz", "if_label": "x", "then_task": "a"}]}, "if_task"),
        ("just a string", "tasks"),
    ],
)
def test_malformed_task_file_names_the_field(raw, field):
    with pytest.raises(TaskFileError, match=field):
        parse_task_file(raw)


def test_unparseable_and_missing_files(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("tasks: [unclosed")
    with pytest.raises(TaskFileError, match="not valid"):
        load_task_file(bad)
    with pytest.raises(TaskFileError, match="not found"):
        load_task_file(tmp_path / "missing.yaml")


def test_round_trip_through_dict():
    tf = load_task_file()
    again = parse_task_file(tf.to_dict())
    assert again.to_dict() == tf.to_dict()
