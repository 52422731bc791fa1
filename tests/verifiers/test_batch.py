"""Batch scoring: order kept, bad rows become explicit error verdicts, worker processes agree."""
from __future__ import annotations

import pytest

from reasonkit.verifiers import UnknownNameError, Verdict, VerifierSpec, compose, score_batch, summarize

RIGHT = "<think>\n6 * 4 = 24\n</think>\n<answer>6 * 4</answer>"
WRONG = "<think>\nhmm\n</think>\n<answer>6 + 4</answer>"


class ExplodingNumbers:
    """A picklable reference value whose conversion raises: makes the verifier itself crash."""

    def tolist(self):
        raise RuntimeError("cannot convert")


def _rows(n: int = 40) -> list[dict]:
    rows = []
    for i in range(n):
        rows.append({"completion": RIGHT if i % 3 == 0 else WRONG, "numbers": [6, 4], "target": 24, "id": i})
    return rows


def _mixed_rows() -> list:
    rows = _rows(8)
    rows[2] = {"completion": RIGHT, "target": 24}  # missing field
    rows[4] = "not a mapping"
    rows[5] = {"completion": RIGHT, "numbers": ExplodingNumbers(), "target": 24}  # verifier raises
    rows[6] = {"completion": RIGHT, "numbers": [6, 4], "target": "n/a"}  # bad gold: unscored, not error
    return rows


def test_in_process_keeps_order_and_scores():
    verdicts = score_batch("countdown", _rows(9))
    assert [v.correct for v in verdicts] == [i % 3 == 0 for i in range(9)]


def test_bad_rows_become_error_verdicts_and_batch_goes_on():
    verdicts = score_batch("countdown", _mixed_rows())
    assert len(verdicts) == 8
    assert verdicts[0].correct is True and verdicts[7].correct is False
    missing, not_mapping, crashed, bad_gold = verdicts[2], verdicts[4], verdicts[5], verdicts[6]
    for v in (missing, not_mapping, crashed):
        assert v.correct is None and v.score == 0.0 and not v.scored
    # a bad row is an "error"; a verifier that raises is a crash, named by its exception (verifiers.policy)
    assert (missing.reason, not_mapping.reason, crashed.reason) == ("error", "error", "verifier_error:RuntimeError")
    assert "row 2" in missing.details["error"] and "'numbers'" in missing.details["error"]
    assert "row 4" in not_mapping.details["error"]
    assert "RuntimeError: cannot convert" in crashed.details["error"]
    assert bad_gold.reason == "bad_gold" and bad_gold.correct is None


def test_summary_counts_errors_apart():
    s = summarize(score_batch("countdown", _mixed_rows()))
    assert s["rows"] == 8 and s["errors"] == 3 and s["unscored"] == 1 and s["scored"] == 4
    assert s["correct"] == 2 and s["accuracy"] == 0.5 and s["mean_score"] == 0.5  # rows 0, 3 of 0, 1, 3, 7
    assert s["reasons"]["error"] == 2 and s["reasons"]["verifier_error:RuntimeError"] == 1
    assert summarize([])["accuracy"] is None


def test_workers_match_in_process_with_bad_rows():
    rows = _mixed_rows() + _rows(30)
    serial = score_batch("countdown+format", rows)
    parallel = score_batch("countdown+format", rows, workers=2, chunksize=3)
    assert parallel == serial
    assert [v.score for v in parallel[:2]] == [2.0, 1.0]


def test_workers_accept_a_spec_object_and_report_progress():
    seen = []
    spec = compose({"countdown": 1, "format": 0.5})
    verdicts = score_batch(spec, _rows(10), workers=2, on_progress=seen.append)
    assert sum(seen) == 10
    assert [v.score for v in verdicts] == [1.5 if i % 3 == 0 else 0.5 for i in range(10)]


def _flaky(completion: str) -> Verdict:
    if "boom" in completion:
        raise ValueError("bad luck")
    return Verdict(1.0, True, completion, "correct")


def test_crashing_verifier_in_workers():
    spec = VerifierSpec("flaky", _flaky, (), "raises on 'boom'")
    rows = [{"completion": c} for c in ["a", "boom", "b", "c", "boom"]]
    verdicts = score_batch(spec, rows, workers=2, chunksize=1)
    assert [v.reason for v in verdicts] == ["correct", "verifier_error:ValueError", "correct", "correct",
                                           "verifier_error:ValueError"]
    assert "ValueError: bad luck" in verdicts[1].details["error"]


def test_unknown_verifier_fails_before_work():
    with pytest.raises(UnknownNameError, match="did you mean 'countdown'"):
        score_batch("countdwn", _rows(3))


@pytest.mark.parametrize("workers,chunksize", [(0, None), (-1, None), (True, None), (2, 0)],
                         ids=["zero_workers", "negative_workers", "bool_workers", "zero_chunksize"])
def test_bad_arguments(workers, chunksize):
    with pytest.raises(ValueError):
        score_batch("countdown", _rows(3), workers=workers, chunksize=chunksize)


def test_empty_and_generator_input():
    assert score_batch("format", []) == []
    assert [v.correct for v in score_batch("format", ({"completion": RIGHT} for _ in range(3)))] == [True] * 3


def _killer(completion: str) -> Verdict:
    if completion == "die":
        import os

        os._exit(3)  # a worker process dying (segfault, OOM kill) mid-row
    return Verdict(1.0, True, completion, "correct")


def test_a_row_that_kills_its_worker_costs_only_that_row():
    spec = VerifierSpec("killer", _killer, (), "kills the worker on 'die'")
    rows = [{"completion": c} for c in ["a", "b", "die", "c", "d", "e", "die", "f"]]
    seen = []
    verdicts = score_batch(spec, rows, workers=2, chunksize=2, on_progress=seen.append)
    died = "verifier_error:BrokenProcessPool"
    assert [v.reason for v in verdicts] == ["correct", "correct", died, "correct", "correct", "correct", died,
                                           "correct"]
    assert "BrokenProcessPool" in verdicts[2].details["error"]
    assert sum(seen) == len(rows)


class Unpicklable:
    def __reduce__(self):
        raise TypeError("cannot pickle this row")


def test_an_unpicklable_row_costs_only_that_row():
    rows = _rows(6)
    rows[3] = {"completion": RIGHT, "numbers": [6, 4], "target": 24, "extra": Unpicklable()}
    verdicts = score_batch("countdown", rows, workers=2, chunksize=2)
    assert [v.reason for v in verdicts] == ["correct", "not_equal", "not_equal", "error", "not_equal", "not_equal"]
    assert "cannot pickle" in verdicts[3].details["error"]
