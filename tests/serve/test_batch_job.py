"""The `batch_predict` job, run in-process on the tiny model: whole files predicted in chunks into safe
CSV/JSONL result files, with progress, cancel, and clear failures for bad input."""

from __future__ import annotations

import csv
import io
import json

import pytest

from mtl_core.ops import worker
from mtl_core.progress import Cancelled
from mtl_core.serve import batch as batch_job
from mtl_core.store import create_job, get_job

TASKS = ["sentiment", "sentiment_score", "topic", "question_type", "spam", "ner"]
# every task's answer, its confidence for all but the regression task, and whether it applies
COLUMNS = [c for t in TASKS for c in (t, f"{t}_confidence", f"{t}_applies") if c != "sentiment_score_confidence"]


def _run(sessions, home, name: str, data: bytes, column: str = "text", staged: str | None = None,
         id_column: str | None = None):
    params = {"input": staged or batch_job.stage_upload(home, name, data), "name": name, "column": column,
              "id_column": id_column, "model_version": None}
    with sessions() as s:
        job_id = create_job(s, batch_job.JOB_KIND, params).id
    status = worker.run_job(job_id, home)
    with sessions() as s:
        job = get_job(s, job_id)
    return status, job


def test_whole_file_is_predicted_in_chunks_into_safe_files(sessions, workspace):
    n = batch_job.CHUNK + 44  # more than one chunk
    data = ("id,text\n" + "".join(f"{i},review number {i}\n" for i in range(n)) + '9,"=HYPERLINK(""x"")"\n10,\n')
    status, job = _run(sessions, workspace, "big.csv", data.encode())
    assert status == "done", job.message
    result = job.result
    assert (result["read"], result["predicted"], result["empty"]) == (n + 2, n + 1, 1)
    assert result["model_version"] == "v0001" and job.progress == 1.0
    assert any("empty 'text'" in p for p in result["problems"])
    table = list(csv.DictReader(io.StringIO(batch_job.result_path(workspace, job.id, "csv").read_text("utf-8"))))
    assert [int(r["row"]) for r in table] == list(range(1, n + 2))  # file order, row numbers as in the page
    assert list(table[0]) == ["row", "text", *COLUMNS, "truncated"]
    assert table[-1]["text"] == "'=HYPERLINK(\"x\")"  # defused for spreadsheets
    lines = batch_job.result_path(workspace, job.id, "jsonl").read_text("utf-8").splitlines()
    assert len(lines) == n + 1 and set(TASKS) <= set(json.loads(lines[0]))
    assert not list((workspace / "jobs" / "uploads").iterdir())  # the staged copy is gone
    assert not list(batch_job.result_path(workspace, job.id, "csv").parent.glob("*.part"))


def test_the_input_id_column_and_confidences_are_kept(sessions, workspace):
    """Before, the job's results had only row numbers: the file's own ids were lost, the CSV had no scores."""
    status, job = _run(sessions, workspace, "ids.csv", b"text,tweet_id\ngreat film,t-1\n,t-2\nawful,=t3\n",
                       id_column="tweet_id")
    assert status == "done", job.message
    table = list(csv.DictReader(io.StringIO(batch_job.result_path(workspace, job.id, "csv").read_text("utf-8"))))
    assert [(r["tweet_id"], r["row"], r["text"]) for r in table] == [("t-1", "1", "great film"), ("'=t3", "3", "awful")]
    assert all(0.0 < float(r["spam_confidence"]) <= 1.0 for r in table)
    lines = [json.loads(x) for x in batch_job.result_path(workspace, job.id, "jsonl").read_text("utf-8").splitlines()]
    assert [r["tweet_id"] for r in lines] == ["t-1", "=t3"] and "probs" in lines[0]["spam"]


def test_jsonl_with_bad_lines_keeps_the_good_ones(sessions, workspace):
    data = (b'{"text": "good one"}\n' + b"[" * 100_000 + b"\nnot json\n" + "caf\xe9 latin\n".encode("latin-1")
            + b'"a bare string"\n{"other": 1}\n')
    status, job = _run(sessions, workspace, "mixed.jsonl", data)
    assert status == "done", job.message
    problems = " ".join(job.result["problems"])
    assert "nested too deeply" in problems and "line(s) 2" in problems
    assert "malformed" in problems and "Windows-1252" in problems
    rows = [json.loads(x) for x in batch_job.result_path(workspace, job.id, "jsonl").read_text("utf-8").splitlines()]
    assert [r["text"] for r in rows] == ["good one", "a bare string"] and job.result["empty"] == 1


def test_a_file_with_nothing_to_predict_still_gives_a_header(sessions, workspace):
    status, job = _run(sessions, workspace, "x.csv", b"id,text\n1,\n2,   \n")
    assert status == "done" and (job.result["read"], job.result["predicted"], job.result["empty"]) == (2, 0, 2)
    header = batch_job.result_path(workspace, job.id, "csv").read_text("utf-8").splitlines()
    assert header == [",".join(["row", "text", *COLUMNS, "truncated"])]


def test_cancel_leaves_no_half_file(sessions, workspace, monkeypatch):
    def cancel(self):
        raise Cancelled()

    monkeypatch.setattr(worker.JobContext, "check_cancelled", cancel)
    status, job = _run(sessions, workspace, "x.csv", b"text\nsome text\n")
    assert status == "cancelled"
    out = batch_job.result_path(workspace, job.id, "csv").parent
    assert not list(out.iterdir()) and not list((workspace / "jobs" / "uploads").iterdir())


@pytest.mark.parametrize("column, staged, message", [
    ("body", None, "no column 'body'"),
    ("text", "registry.json", "not a staged upload"),
    ("text", "jobs/uploads/gone.csv", "upload the file again"),
])
def test_bad_input_fails_with_a_clear_message(sessions, workspace, column, staged, message):
    status, job = _run(sessions, workspace, "x.csv", b"text\nhello\n", column=column, staged=staged)
    assert status == "failed" and message in job.message and str(workspace) not in job.message


def test_the_job_kind_is_registered():
    assert worker.BUILTIN_HANDLERS[batch_job.JOB_KIND] == "mtl_core.serve.batch:batch_predict_job"


def test_applies_columns_hold_the_probability_or_stay_empty(tiny_predictor):
    """Each task gets an `<task>_applies` cell: the probability that it applies, empty when the model cannot
    tell (a model without applicability, or a task it does not score)."""
    import csv
    import io

    import pandas as pd

    from mtl_core.data.csv_safe import safe_frame

    pred = tiny_predictor.predict("Who invented the telephone?")[0]
    pred.applies.update({"topic": 0.03125, "spam": 0.9})
    rec = batch_job.table_record(0, pred, tiny_predictor.task_names)
    assert rec["topic_applies"] == 0.0312 and rec["spam_applies"] == 0.9 and rec["ner_applies"] is None
    cols = batch_job.columns(batch_job.task_kinds(tiny_predictor))
    assert cols.index("topic_applies") == cols.index("topic_confidence") + 1
    text = safe_frame(pd.DataFrame([rec], columns=cols)).to_csv(index=False)
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["topic_applies"] == "0.0312" and row["ner_applies"] == ""
    assert batch_job.json_record(0, pred)["applies"] == {**{t: None for t in TASKS}, "topic": 0.0312, "spam": 0.9}


def test_a_new_tasks_few_shot_answers_are_columns_too(sessions, workspace):
    """A task added to the workspace (few-shot head on v0001) is answered in the background job's files."""
    from mtl_core.data.workspace_tasks import add_task
    from mtl_core.review.fewshot_fit import refit
    from mtl_core.review.new_task import store_rows
    from mtl_core.serve.predictor import load_active_predictor
    from mtl_core.tasks import TaskSpec

    spec = TaskSpec(name="routing", kind="classification", labels=["urgent", "later"])
    predictor = load_active_predictor(workspace)
    add_task(spec, workspace, predictor.task_file)
    with sessions() as s:
        store_rows(s, "routing", [("down", "urgent"), ("fire", "urgent"), ("mug", "later"), ("menu", "later")], "a")
        assert refit(workspace, predictor, spec, s).fitted
    status, job = _run(sessions, workspace, "t.csv", b"text\nserver down\nlunch\n")
    assert status == "done", job.message
    table = list(csv.DictReader(io.StringIO(batch_job.result_path(workspace, job.id, "csv").read_text("utf-8"))))
    assert [r["routing"] in ("urgent", "later") for r in table] == [True, True]
    assert all(0.5 <= float(r["routing_confidence"]) <= 1.0 for r in table)
    line = json.loads(batch_job.result_path(workspace, job.id, "jsonl").read_text("utf-8").splitlines()[0])
    assert line["routing"]["fewshot"] is True
