"""reasonkit.records: the typed Row / Summary that eval writes and report, audit, view and the
benchmarks read. Regression tables over rows as the runner writes them today and as older versions
wrote them, and one run directory read back through read_samples / read_summary."""
import json
import subprocess
import sys

import pytest

from reasonkit.eval.config import EvalConfig
from reasonkit.eval.runner import run
from reasonkit.eval.store import read_samples, read_summary
from reasonkit.records import Row, Summary, as_rows

from eval_fakes import FakeBackend

NOW = {"benchmark": "gsm8k", "item_id": "7", "model": "m", "adapter": "base", "sample": 1, "prompt": "Q",
       "completion": "#### 18", "num_tokens": 5, "finish_reason": "stop", "reference": {"answer": "18"},
       "item_fingerprint": "abc", "gsm8k.score": 1.0, "gsm8k.correct": True, "gsm8k.extracted": "18",
       "gsm8k.reason": "correct", "gsm8k.details": {"normalized": "18"}}
OLD = {k: v for k, v in NOW.items() if k not in ("item_fingerprint", "reference", "gsm8k.details")}  # an older run
CUT = {**NOW, "finish_reason": "length", "gsm8k.score": 0.0, "gsm8k.correct": False, "gsm8k.reason": "truncated",
       "gsm8k.details": {"untruncated": {"score": 1.0, "correct": True, "reason": "correct"}}}
FAILED = {k: v for k, v in NOW.items() if not k.startswith("gsm8k.")} | {"completion": "", "num_tokens": None,
                                                                          "finish_reason": "error", "error": "503"}
CRASH = {**NOW, "gsm8k.score": None, "gsm8k.correct": None, "gsm8k.extracted": None,
         "gsm8k.reason": "verifier_error:ValueError", "gsm8k.details": {"error": "ValueError: x"}}


@pytest.mark.parametrize("raw, truncated, failed, correct, reason, verifiers, fingerprint", [
    (NOW, False, False, True, "correct", ["gsm8k"], "abc"),
    (OLD, False, False, True, "correct", ["gsm8k"], None),
    (CUT, True, False, False, "truncated", ["gsm8k"], "abc"),
    (FAILED, False, True, None, None, [], "abc"),
    (CRASH, False, False, None, "verifier_error:ValueError", ["gsm8k"], "abc"),
])
def test_row_accessors(raw, truncated, failed, correct, reason, verifiers, fingerprint):
    row = Row(raw)
    assert (row.item_id, row.adapter, row.sample) == ("7", "base", 1)
    assert row.truncated is truncated and row.failed is failed and row.item_fingerprint == fingerprint
    assert row.correct("gsm8k") is correct and row.reason("gsm8k") == reason and row.verifiers == verifiers
    v = row.verdict("gsm8k")
    assert (v.correct, v.reason, v.score) == (correct, reason, raw.get("gsm8k.score"))
    assert json.loads(json.dumps(row)) == raw  # the record is the on-disk mapping, unchanged


SUMMARY = {"primary_verifier": "gsm8k", "benchmark": {"name": "gsm8k", "verifiers": ["gsm8k", "format"]},
           "adapters": {"base": {"items": 2, "samples": 4, "truncation_rate": 0.25, "mean_completion_tokens": 9.5,
                                 "verifiers": {"gsm8k": {"accuracy": 0.5, "stderr": 0.1, "pass@1": 0.5, "pass@2": 1.0,
                                                         "maj@2": 0.5},
                                               "format": {"accuracy": 1.0}}},
                        "good": {"items": 2, "samples": 4, "truncation_rate": 0.0, "verifiers": {"gsm8k": {}}}},
           "timing": {"generation_s": 2.0}, "model": "m"}


@pytest.mark.parametrize("adapter, verifier, accuracy, pass2, truncation", [
    ("base", None, 0.5, 1.0, 0.25),          # the primary verifier by default
    ("base", "format", 1.0, None, 0.25),
    ("good", "gsm8k", None, None, 0.0),      # a verifier block with no metrics (no rows)
    ("missing", "gsm8k", None, None, None),  # an adapter the run does not have
])
def test_summary_accessors(adapter, verifier, accuracy, pass2, truncation):
    s = Summary(SUMMARY)
    m = s.metrics(adapter, verifier)
    assert m.accuracy == accuracy and m.pass_at(2) == pass2 and s.adapter(adapter).truncation_rate == truncation
    assert s.verifier_names == ["gsm8k", "format"] and list(s.adapters) == ["base", "good"]
    assert s.adapter("base").item_count == 2 and s.timing["generation_s"] == 2.0 and s.config == {}
    assert json.loads(json.dumps(s)) == SUMMARY


def test_a_run_directory_reads_back_as_records(tmp_path):
    cfg = EvalConfig(benchmark="gsm8k", verifiers=("gsm8k",), limit=3, output=str(tmp_path / "run"), chunk_size=2)
    rows, summary = run(cfg, engine=FakeBackend(lambda prompt, adapter, s: "#### 18"), show=False)
    saved, torn = read_samples(tmp_path / "run" / "samples.jsonl")
    on_disk = read_summary(tmp_path / "run" / "summary.json")
    assert not torn and all(isinstance(r, Row) for r in rows + saved) and isinstance(summary, Summary)
    assert saved == rows and [r.item_id for r in saved] == [r["item_id"] for r in rows]
    assert on_disk.metrics().accuracy == summary.metrics("base", "gsm8k").accuracy
    assert on_disk.adapter().samples == 3 and as_rows(saved) == saved


def test_a_summary_that_is_not_an_object_is_one_line(tmp_path):
    from reasonkit.errors import ReasonkitError

    (tmp_path / "summary.json").write_text("[1, 2]")
    with pytest.raises(ReasonkitError, match="summary.json: not a reasonkit eval summary"):
        read_summary(tmp_path / "summary.json")


def test_records_import_no_torch_or_pandas(tmp_path):
    code = ("import json, sys, reasonkit.records\n"
            "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'pandas'))))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1]) == []
