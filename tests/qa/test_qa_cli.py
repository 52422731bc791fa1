"""`reasonkit qa metamorphic` / `reasonkit qa differential` through click's CliRunner, and the
differential engine's findings on the shipped corpora."""
from __future__ import annotations

import json
import subprocess
import sys
from functools import lru_cache

import pytest
from click.testing import CliRunner

from reasonkit.cli import main
from reasonkit.eval import runner as runner_mod
from reasonkit.qa.corpora import load_corpus
from reasonkit.qa.differential import run_differential

from eval_fakes import FakeBackend


def _invoke(*args):
    return CliRunner().invoke(main, ["qa", *args], catch_exceptions=False)


def test_metamorphic_prints_the_table_and_failing_examples(tmp_path):
    out = tmp_path / "qa.json"
    result = _invoke("metamorphic", "--corpus", "countdown", "--limit", "6", "--json", str(out))
    assert result.exit_code == 0, result.output
    for text in ("reasonkit qa metamorphic", "(base)", "think_tentative", "empty_reasoning", "countdown: 6 cases"):
        assert text in result.output
    report = json.loads(out.read_text())
    assert report["corpus"] == "countdown" and report["cases"] == 6
    cells = {(c["rewrite"], c["verifier"]): c for c in report["cells"]}
    assert cells[("(base)", "countdown")]["share"] == 1.0
    assert cells[("empty_reasoning", "format")]["expect"] == "not correct"
    failing = [c for c in report["cells"] if c["failures"]]
    if failing:  # every listed failure is printed once with its text
        assert "Failing examples" in result.output
        assert all(f["completion"] and f["got"]["reason"] for c in failing for f in c["failures"])


def test_metamorphic_on_a_run(tmp_path):
    rows = [{"benchmark": "gsm8k", "item_id": str(i), "sample": 0, "completion": text, "finish_reason": "stop",
             "reference": {"answer": f"#### {gold}"}, "gsm8k.correct": ok}
            for i, (text, gold, ok) in enumerate([("3 + 4 = 7, so she has 7 apples.\n#### 7", 7, True),
                                                  ("She pays $12 in total.\nThe answer is 12.", 15, False)])]
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = _invoke("metamorphic", "--samples", str(tmp_path / "samples.jsonl"), "--rewrite", "markdown_bold",
                     "--rewrite", "hedge", "--json", str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.output
    cells = {c["rewrite"]: c for c in json.loads((tmp_path / "r.json").read_text())["cells"]}
    assert "(base)" not in cells  # a run's completions are not known to be correct
    assert cells["markdown_bold"]["n"] == 2 and cells["markdown_bold"]["behaved"] == 2
    assert cells["hedge"]["n"] == 1 and cells["hedge"]["skipped"] == 1  # the wrong row cannot be broken


def _script(prompt, adapter, sample):
    if "Janet" in prompt:  # GSM8K test item 0, gold 18
        return "16 - 3 - 4 = 9 eggs, 9 * 2 = 18.\n</think>\n<answer>18</answer>"
    return "I am not sure.\n</think>\nThe answer is 5."


def test_metamorphic_on_a_reasonkit_eval_run(tmp_path, monkeypatch):
    """A run written by `reasonkit eval` (fake backend, pre-filled <think>) is read as its verifiers saw it."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(runner_mod, "open_backend", lambda config: (FakeBackend(_script), "fake-model"))
    run = tmp_path / "run"
    made = CliRunner().invoke(main, ["eval", "--limit", "3", "-o", str(run), "-q", "--verifier", "gsm8k",
                                     "--verifier", "format", "--prefill", "<think>\n"])
    assert made.exit_code == 0, made.output
    result = _invoke("metamorphic", "--samples", str(run), "--json", str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["cases"] == 3
    cells = {(c["rewrite"], c["verifier"]): c for c in report["cells"]}
    assert {v for _, v in cells} == {"gsm8k", "format"}  # the run's verifiers
    assert cells[("markdown_bold", "gsm8k")]["n"] == 3
    assert cells[("hedge", "gsm8k")]["n"] + cells[("hedge", "gsm8k")]["skipped"] == 3
    # the pre-filled <think> is part of what was scored: the think block is found and emptied
    empty = cells[("empty_reasoning", "format")]
    assert (empty["n"], empty["skipped"]) == (1, 2)  # only the correct row in think/answer format counts


def test_differential_lists_disagreements_with_their_text(tmp_path):
    out = tmp_path / "d.json"
    # gsm8k and math read the reply's statements by one mechanism (issue 26): a format grader
    # disagrees with gsm8k by design (no think block in the gold corpus)
    result = _invoke("differential", "--a", "gsm8k", "--b", "format", "--corpus", "gsm8k", "--limit", "6",
                     "--show", "2", "--json", str(out), "--progress")
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    counts = report["counts"]
    assert sum(counts[k] for k in ("both correct", "both not correct", "only A correct", "only B correct",
                                   "unscored", "timeout")) == report["completions"]
    assert counts["disagreements"] == len(report["disagreements"]) > 0
    first = report["disagreements"][0]
    assert first["a"]["correct"] != first["b"]["correct"] and first["completion"]
    assert f"item {first['item']} ({first['source']})" in result.output


def test_gsm8k_and_math_agree_on_the_rewrites():
    """Hedges, second claims, corrections and sign-offs are read by the same rules (_claims)."""
    report = run_differential(load_corpus("gsm8k", 8, seed=0), "gsm8k", "math")
    assert report.completions > 8 and report.counts["disagreements"] == 0, report.disagreements[:1]


def test_strict_gsm8k_never_pays_where_flexible_does_not():
    """Flexible differs from strict only where strict finds no answer, so 'only strict correct' is 0."""
    report = run_differential(load_corpus("gsm8k", 12, seed=1), "gsm8k", "gsm8k_flexible")
    assert report.completions > 12 and report.counts["only A correct"] == 0


@lru_cache(maxsize=None)
def _fast_vs_math_verify():
    return run_differential(load_corpus("math500", 30), "math", "math-verify")


def test_math_fast_path_agrees_with_math_verify():
    report = _fast_vs_math_verify()
    assert report.counts["disagreements"] == 0, report.disagreements[:2]


def test_math_fast_path_disagrees_only_on_units():
    report = _fast_vs_math_verify()
    assert report.completions > 300 and report.counts["both correct"] > 200
    assert {d["source"] for d in report.disagreements} <= {"units"}


def test_rg_verifier_agrees_with_reasoning_gym_pipeline():
    report = run_differential(load_corpus("rg:chain_sum", 6), "rg:chain_sum", "rg-native:chain_sum")
    assert report.completions >= 18
    # the one designed difference: reasonkit reads text with invisible characters removed (issue 26
    # class 5), reasoning-gym's scorer compares the raw string
    assert report.counts["both correct"] > 0
    assert {d["source"] for d in report.disagreements} <= {"invisible_chars"}, report.disagreements[:2]


@pytest.mark.parametrize("args, message", [
    (["metamorphic", "--corpus", "gsmk8"], "unknown corpus 'gsmk8'; did you mean 'gsm8k'"),
    (["metamorphic", "--verifier", "gsm8kk", "--limit", "2"], "unknown verifier 'gsm8kk'"),
    (["metamorphic", "--samples", "no/such/samples.jsonl"], "no/such/samples.jsonl: no such file"),
    (["metamorphic", "--limit", "0"], "0 is not in the range"),
    (["metamorphic", "--verifier", "stepwise", "--limit", "2"], "--verifier stepwise: grades reasoning steps"),
    (["metamorphic", "--corpus", "math500", "--verifier", "countdown", "--limit", "2"],
     "needs reference field(s) numbers, target"),
    (["metamorphic", "--rewrite", "bold", "--limit", "2"], "unknown rewrite 'bold'"),
    (["metamorphic", "--corpus", "rg:nosuchtask", "--limit", "2"], "--corpus rg:nosuchtask: unknown reasoning-gym task"),
    (["metamorphic", "--corpus", "gsm8k", "--samples", "x.jsonl"], "not both"),
    (["metamorphic", "--limit", "2", "--json", "no/such/dir/out.json"], "does not exist"),
    (["differential", "--a", "gsm8k", "--b", "nope", "--limit", "2"], "unknown verifier 'nope'"),
    (["differential", "--a", "gsm8k"], "Missing option '--b'"),
    (["differential", "--a", "rg-native:nope", "--b", "gsm8k", "--limit", "2"], "unknown reasoning-gym task 'nope'"),
    (["differential", "--a", "countdown", "--b", "gsm8k", "--limit", "2"], "--a countdown: needs reference field"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = CliRunner().invoke(main, ["qa", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_qa_imports_no_torch():
    code = ("import sys, reasonkit.qa.cli, reasonkit.qa.metamorphic, reasonkit.qa.differential; "
            "print([m for m in ('torch', 'transformers', 'vllm') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
