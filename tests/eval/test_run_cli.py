"""``reasonkit audit RUN_DIR``: the table for an eval run and a training run (CliRunner), and the
one-line exit-2 errors for paths that are not run directories."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from reasonkit.audit import CLASSES
from reasonkit.cli import main

from run_fakes import eval_run, hacker, honest, train_run


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def table_rows(output: str) -> dict[str, list[str]]:
    """``{class: [cell, ...]}`` from the printed rich table."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]
        if cells and cells[0] in CLASSES:
            rows[cells[0]] = cells[1:]
    return rows


# golds of the first six GSM8K test items: 18, 3, 70000, 540, 20, 64 (see run_fakes.hacker)
@pytest.mark.parametrize("script,expected", [
    # two wrong answers (70001, 541) in a well-formed completion: format paid, task failed
    (honest, {**{c: "0.0%" for c in CLASSES}, "format_paid_task_failed": "33.3%"}),
    # the zero-width "reasoning" of the hedged answer no longer earns format (verifiers read text with
    # invisible characters removed: issue 26 class 5), so nothing here is format-paid-task-failed
    (hacker, {**{c: "0.0%" for c in CLASSES}, "invented_turn": "33.3%", "hedged_answer": "16.7%",
              "empty_reasoning": "16.7%"}),
])
def test_audit_of_an_eval_run(tmp_path, script, expected):
    run_dir = eval_run(tmp_path / "run", script)
    result = CliRunner().invoke(main, ["audit", str(run_dir)])
    assert result.exit_code == 0, result.output
    rows = table_rows(result.output)
    assert {c: v[0] for c, v in rows.items()} == expected
    assert "(n=6)" in result.output


def test_audit_of_a_training_run_splits_early_and_late_steps(tmp_path):
    result = CliRunner().invoke(main, ["audit", str(train_run(tmp_path / "train"))])
    assert result.exit_code == 0, result.output
    assert "steps 1-3" in result.output and "steps 4-6" in result.output
    rows = table_rows(result.output)
    assert rows["length_collapse"] == ["0.0%", "100.0%", "50.0%"]   # collapsed after step 3
    assert rows["identical_in_group"] == ["100.0%", "100.0%", "100.0%"]
    assert rows["truncated"] == ["0.0%", "0.0%", "0.0%"]


def bad_dirs(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("x")
    torn = tmp_path / "torn"
    torn.mkdir()
    (torn / "samples.jsonl").write_text('{"item_id": 1}\n{oops\n{"item_id": 2}\n')
    (tmp_path / "started").mkdir()
    (tmp_path / "started" / "config.json").write_text("{}")
    notobj = tmp_path / "notobj"
    notobj.mkdir()
    (notobj / "metrics.jsonl").write_text("[1, 2]\n{}\n")
    return tmp_path


@pytest.mark.parametrize("name,needle", [
    ("missing", "no such directory"),
    ("afile", "is a file, expected a run directory"),
    ("empty", "not a reasonkit run directory"),
    ("torn", "samples.jsonl line 2: malformed JSON"),
    ("started", "an eval run with no samples.jsonl yet"),
    ("notobj", "metrics.jsonl line 1: expected a JSON object"),
])
@pytest.mark.parametrize("command", ["audit", "view"])
def test_bad_run_dir_is_one_line_exit_2(tmp_path, name, needle, command):
    path = bad_dirs(tmp_path) / name
    args = [command, str(path)] + (["-o", str(tmp_path / "r.html")] if command == "view" else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert needle in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "r.html").exists()


def test_audit_view_and_runs_import_no_heavy_library():
    code = ("import json, sys; import reasonkit.audit, reasonkit.runs, reasonkit.view, reasonkit.run_cli; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'vllm'))))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == []


@pytest.mark.parametrize("row,hedged", [
    ({"completion": "<think>x</think><answer>3 or 5", "stop_string": "</answer>"}, True),  # ended by a stop string
    ({"completion": "<think>x</think><answer>3 or 5"}, False),                             # never closed
    ({"completion": "<think>x</think><answer>3</answer>"}, False),
])
def test_eval_rows_are_audited_as_scored(row, hedged):
    from reasonkit.audit import hedged_answer
    from reasonkit.runs import sample_record

    assert hedged_answer(sample_record(row, [], None)) is hedged
