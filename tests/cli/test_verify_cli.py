"""`reasonkit verify`: output rows, summary, bad input (one line, exit 2), atomic output."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from reasonkit.cli import main
from reasonkit.verifiers import base
from reasonkit.verifiers.base import Verdict, VerifierSpec


def _exact(completion: str, answer: str) -> Verdict:
    """Throwaway verifier: correct when the stripped completion equals the answer."""
    if completion == "boom":
        raise RuntimeError("verifier crashed")
    if str(answer) == "??":
        return Verdict(0.0, None, None, base.BAD_GOLD)
    got = completion.strip() or None
    if got is None:
        return Verdict(0.0, False, None, base.NO_ANSWER)
    ok = got == str(answer)
    return Verdict(1.0 if ok else 0.0, ok, got, base.CORRECT if ok else base.NOT_EQUAL, {"len": len(got)})


@pytest.fixture
def exact(monkeypatch):
    monkeypatch.setitem(base._REGISTRY, "exact_test", VerifierSpec("exact_test", _exact, ("answer",), "test"))
    return "exact_test"


def _write(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


ROWS = [
    {"id": 1, "completion": "42", "answer": "42"},
    {"id": 2, "completion": "41", "answer": "42"},
    {"id": 3, "completion": "", "answer": "7"},
    {"id": 4, "completion": "5", "answer": "??"},
    {"id": 5, "completion": "boom", "answer": "1"},
]


def test_verify_writes_default_output_and_summary(tmp_path, exact):
    inp = _write(tmp_path / "preds.jsonl", ROWS)
    res = CliRunner().invoke(main, ["verify", exact, str(inp)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "preds.verified.jsonl"
    rows = _read(out)
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5]  # order kept, input fields kept
    assert [r["correct"] for r in rows] == [True, False, False, None, None]
    assert [r["reason"] for r in rows] == ["correct", "not_equal", "no_answer", "bad_gold", "verifier_error:RuntimeError"]
    assert rows[0]["score"] == 1.0 and rows[0]["extracted"] == "42" and rows[0]["details"] == {"len": 2}
    # a crash is an explicit unscored error verdict, never a silent "wrong"
    assert rows[4]["correct"] is None and "RuntimeError: verifier crashed" in rows[4]["details"]["error"]
    # summary table: accuracy 1/3 over scored rows, 1/5 over all rows, could-not-score 1, errors 1
    assert "accuracy (scored rows)" in res.output and "0.3333" in res.output
    assert "accuracy (all rows)" in res.output and "0.2000" in res.output
    assert "could not score" in res.output and "errors" in res.output
    assert "not_equal" in res.output and f"wrote 5 rows to {out}" in res.output


def test_verify_stdout_output_is_clean_jsonl(tmp_path, exact):
    inp = _write(tmp_path / "preds.jsonl", ROWS[:2])
    res = CliRunner().invoke(main, ["verify", exact, str(inp), "-o", "-"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert [json.loads(x)["correct"] for x in lines] == [True, False]  # no table mixed into stdout
    assert "accuracy" in res.stderr
    assert not (tmp_path / "preds.verified.jsonl").exists()


def test_verify_summary_json(tmp_path, exact):
    inp = _write(tmp_path / "p.jsonl", ROWS)
    sj = tmp_path / "summary.json"
    res = CliRunner().invoke(main, ["verify", exact, str(inp), "-o", str(tmp_path / "o.jsonl"),
                                    "--summary-json", str(sj)])
    assert res.exit_code == 0, res.output
    s = json.loads(sj.read_text())
    assert s["rows"] == 5 and s["scored"] == 3 and s["correct"] == 1
    assert s["unscored"] == 1 and s["errors"] == 1
    assert s["reasons"] == {"correct": 1, "not_equal": 1, "no_answer": 1, "bad_gold": 1,
                            "verifier_error:RuntimeError": 1}
    assert s["accuracy"] == pytest.approx(1 / 3) and s["accuracy_all_rows"] == pytest.approx(0.2)
    assert s["mean_score"] == pytest.approx(1 / 3)  # unscored and crashed rows are not averaged in


@pytest.mark.parametrize("content, message", [
    (['{"completion": "1", "answer": "1"}', '{"completion": "2", "answer": '],
     "line 2: malformed JSON"),
    (['{"completion": "1", "answer": "1"}', "", '{"completion": "2"}'],
     "line 3: missing field 'answer' needed by verifier 'exact_test'"),
    (['{"answer": "1"}'], "line 1: missing field 'completion'"),
    (['[1, 2]'], "line 1: expected a JSON object, got list"),
    (['{"completion": 5, "answer": "1"}'], "line 1: field 'completion' must be a string"),
    ([], "no rows"),
])
def test_verify_bad_input_one_line_exit_2(tmp_path, exact, content, message):
    inp = _write(tmp_path / "in.jsonl", content)
    out = tmp_path / "out.jsonl"
    out.write_text("previous results\n")
    res = CliRunner().invoke(main, ["verify", exact, str(inp), "-o", str(out)])
    assert res.exit_code == 2
    assert res.exception is None or isinstance(res.exception, SystemExit)  # no traceback
    err = res.output.strip()
    assert err.startswith("Error: ") and "\n" not in err
    assert message in err and str(inp) in err
    assert out.read_text() == "previous results\n"  # nothing already written is lost


def test_verify_missing_file(tmp_path, exact):
    res = CliRunner().invoke(main, ["verify", exact, str(tmp_path / "nope.jsonl")])
    assert res.exit_code == 2
    assert res.output.strip() == f"Error: {tmp_path / 'nope.jsonl'}: no such file"


def test_verify_unknown_verifier_did_you_mean(tmp_path, exact):
    inp = _write(tmp_path / "in.jsonl", ROWS[:1])
    res = CliRunner().invoke(main, ["verify", "exact_tset", str(inp)])
    assert res.exit_code == 2
    line = res.output.strip()
    assert "\n" not in line and "unknown verifier 'exact_tset'" in line and "did you mean 'exact_test'" in line


def test_verify_refuses_to_overwrite_input(tmp_path, exact):
    inp = _write(tmp_path / "in.jsonl", ROWS[:1])
    res = CliRunner().invoke(main, ["verify", exact, str(inp), "-o", str(inp)])
    assert res.exit_code == 2 and "overwrite the input" in res.output
    assert _read(inp) == ROWS[:1]


def test_verify_output_folder_missing(tmp_path, exact):
    inp = _write(tmp_path / "in.jsonl", ROWS[:1])
    res = CliRunner().invoke(main, ["verify", exact, str(inp), "-o", str(tmp_path / "no" / "out.jsonl")])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_verify_atomic_write_leaves_no_temp_files(tmp_path, exact, monkeypatch):
    import reasonkit.files as files

    inp = _write(tmp_path / "in.jsonl", ROWS[:2])
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")

    def broken_replace(src, dst):
        raise OSError("disk went away")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    res = CliRunner().invoke(main, ["verify", exact, str(inp), "-o", str(out)])
    assert res.exit_code != 0
    assert res.exit_code == 2 and res.output.strip() == f"Error: {out}: disk went away"  # one line, no traceback
    assert out.read_text() == "old\n"  # the old file survives a failed write
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]  # temp file removed


def test_verify_progress_bar_runs(tmp_path, exact):
    inp = _write(tmp_path / "in.jsonl", [{"completion": str(i % 3), "answer": "1"} for i in range(300)])
    res = CliRunner().invoke(main, ["verify", exact, str(inp), "--progress"])
    assert res.exit_code == 0, res.output
    assert sum(r["correct"] for r in _read(tmp_path / "in.verified.jsonl")) == 100


# --- with the real verifiers ----------------------------------------------------------------------

GSM8K_ROWS = [
    {"completion": "<think>16 - 3 - 4 = 9, 9 * 2 = 18</think>\n<answer>18</answer>", "answer": "9*2=<<9*2=18>>18\n#### 18"},
    {"completion": "She makes $1,000.00 in total.\n#### 1,000", "answer": "1000"},
    {"completion": "Each box costs $3 and 4 boxes cost $12", "answer": "12"},  # flexible only
    {"completion": "<answer>12</answer>", "answer": "#### 13"},
    {"completion": "The answer is 5.", "answer": "no gold here"},  # could not score
]


def test_verify_gsm8k_reports_strict_and_flexible(tmp_path):
    inp = _write(tmp_path / "gsm.jsonl", GSM8K_ROWS)
    sj = tmp_path / "s.json"
    res = CliRunner().invoke(main, ["verify", "gsm8k", str(inp), "--summary-json", str(sj)])
    assert res.exit_code == 0, res.output
    rows = _read(tmp_path / "gsm.verified.jsonl")
    assert [r["correct"] for r in rows] == [True, True, False, False, None]
    assert rows[2]["reason"] == "no_answer" and rows[2]["details"]["flexible"]["correct"] is True
    assert rows[4]["reason"] == "bad_gold"
    s = json.loads(sj.read_text())
    assert s["accuracy_strict"] == pytest.approx(2 / 4) and s["accuracy_flexible"] == pytest.approx(3 / 4)
    assert "accuracy strict" in res.output and "accuracy flexible" in res.output and "0.7500" in res.output


def test_verify_composition_with_workers(tmp_path):
    rows = [{"completion": "<think>ok</think>\n<answer>(3 + 5) * 3</answer>", "numbers": [3, 5, 3], "target": 24},
            {"completion": "<answer>3 * 5 + 3</answer>", "numbers": [3, 5, 3], "target": 24},
            {"completion": "<think>hmm</think>\n<answer>3 ** 5</answer>", "numbers": [3, 5, 3], "target": 24}] * 3
    inp = _write(tmp_path / "cd.jsonl", rows)
    out1, out2 = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    r1 = CliRunner().invoke(main, ["verify", "countdown+0.5*format", str(inp), "-o", str(out1)])
    r2 = CliRunner().invoke(main, ["verify", "countdown+0.5*format", str(inp), "-o", str(out2), "--workers", "2"])
    assert r1.exit_code == 0 and r2.exit_code == 0, (r1.output, r2.output)
    a, b = _read(out1), _read(out2)
    assert a == b  # same verdicts, same order, in-process or across worker processes
    assert [r["score"] for r in a[:3]] == [1.5, 0.0, 0.5]
    assert [r["correct"] for r in a[:3]] == [True, False, False]


def test_verify_real_missing_field_message(tmp_path):
    rows = [{"completion": "#### 1", "answer": "1"}] * 6 + [{"completion": "#### 1"}]
    inp = _write(tmp_path / "input.jsonl", rows)
    res = CliRunner().invoke(main, ["verify", "gsm8k", str(inp)])
    assert res.exit_code == 2
    assert res.output.strip() == f"Error: {inp} line 7: missing field 'answer' needed by verifier 'gsm8k'"
    assert not (tmp_path / "input.verified.jsonl").exists()


@pytest.mark.parametrize("name, message", [
    ("gsm8kk", "did you mean 'gsm8k'"),
    ("countdown+0.5*fromat", "did you mean 'format'"),
    ("countdown+*format", "cannot read term"),
    ("countdown+countdown", "listed twice"),
])
def test_verify_bad_verifier_names(tmp_path, name, message):
    inp = _write(tmp_path / "in.jsonl", [{"completion": "x", "answer": "1", "numbers": [1], "target": 1}])
    res = CliRunner().invoke(main, ["verify", name, str(inp)])
    assert res.exit_code == 2
    line = res.output.strip()
    assert line.startswith("Error: ") and "\n" not in line and message in line


def test_console_script_verify_to_stdout(tmp_path):
    import shutil
    import subprocess
    import sys

    exe = shutil.which("reasonkit") or str(Path(sys.executable).with_name("reasonkit"))
    inp = _write(tmp_path / "gsm.jsonl", GSM8K_ROWS[:2])
    res = subprocess.run([exe, "verify", "gsm8k", str(inp), "-o", "-"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert [json.loads(x)["correct"] for x in res.stdout.splitlines()] == [True, True]
    assert "accuracy strict" in res.stderr
    bad = subprocess.run([exe, "verify", "gsm8k", str(tmp_path / "missing.jsonl")], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "Traceback" not in bad.stderr


def test_verify_reads_stdin(exact):
    text = "".join(json.dumps(r) + "\n" for r in ROWS[:2])
    res = CliRunner().invoke(main, ["verify", exact, "-"], input=text)
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["correct"] for x in res.stdout.splitlines()] == [True, False]
    bad = CliRunner().invoke(main, ["verify", exact, "-"], input='{"completion": "1"}\n')
    assert bad.exit_code == 2 and "<stdin> line 1: missing field 'answer'" in bad.output


def test_verify_unwritable_output_checked_before_scoring(tmp_path, exact, monkeypatch):
    import reasonkit.verify_cli as vc

    inp = _write(tmp_path / "in.jsonl", ROWS[:2])
    monkeypatch.setattr(vc, "score_file", lambda *a, **k: pytest.fail("scored before checking the output"))
    res = CliRunner().invoke(main, ["verify", exact, str(inp), "-o", str(tmp_path / "nodir" / "o.jsonl")])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = CliRunner().invoke(main, ["verify", exact, str(inp), "--summary-json", str(tmp_path / "nodir" / "s.json")])
    assert res.exit_code == 2 and "does not exist" in res.output
