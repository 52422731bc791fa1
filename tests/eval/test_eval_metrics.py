"""Metrics and the paired test, checked against brute-force definitions."""
from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction

import pytest

from reasonkit.eval.metrics import adapter_metrics, maj_at_k, majority, mean_stderr, pass_at_k, verifier_metrics
from reasonkit.eval.report import paired, sign_test


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    """Share of the k-subsets of n samples (c correct) that contain at least one correct sample."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_matches_brute_force(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_large_n_is_stable():
    # C(200, 100) overflows floats; the product form must not. Compare with exact rationals.
    n, c, k = 200, 3, 100
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-12)
    assert pass_at_k(200, 0, 50) == 0.0
    assert pass_at_k(200, 200, 1) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_majority_and_maj_at_k():
    assert majority(["3", "4", "4", None]) == "4"
    assert majority(["5", "4", "4", "5"]) == "5"  # tie -> the answer seen first
    assert majority([None, None]) is None
    samples = [("7", False), ("8", True), ("8", True), ("7", False), ("7", False)]
    assert maj_at_k(samples, 1) is False
    assert maj_at_k(samples, 3) is True  # 8 wins 2-1
    assert maj_at_k(samples, 5) is False  # 7 wins 3-2
    assert maj_at_k([(None, False), (None, False)], 2) is False


def test_mean_stderr():
    m, se = mean_stderr([1.0, 0.0, 1.0, 0.0])
    assert m == 0.5
    assert se == pytest.approx(math.sqrt((4 * 0.25 / 3) / 4))
    assert mean_stderr([1.0]) == (1.0, 0.0)


def _rows(flags_per_item, verifier="v", extracted=None):
    rows = []
    for i, flags in enumerate(flags_per_item):
        for s, ok in enumerate(flags):
            ext = extracted[i][s] if extracted else ("42" if ok else "0")
            rows.append({"item_id": str(i), "sample": s, "adapter": "base", "finish_reason": "stop", "num_tokens": 10,
                         f"{verifier}.correct": ok, f"{verifier}.extracted": ext, f"{verifier}.score": float(bool(ok)),
                         f"{verifier}.reason": "correct" if ok else "not_equal"})
    return rows


def test_verifier_metrics_against_direct_computation():
    rng = random.Random(3)
    n = 4
    flags = [[rng.random() < 0.4 for _ in range(n)] for _ in range(25)]
    m = verifier_metrics(_rows(flags), "v", n)
    per_item = [sum(f) / n for f in flags]
    assert m["accuracy"] == pytest.approx(sum(per_item) / len(per_item))
    assert m["stderr"] == pytest.approx(mean_stderr(per_item)[1])
    for k in range(1, n + 1):
        direct = sum(brute_pass_at_k(n, sum(f), k) for f in flags) / len(flags)
        assert m[f"pass@{k}"] == pytest.approx(direct)
    assert m["pass@1"] == pytest.approx(m["accuracy"])
    assert m["extraction_failure_rate"] == 0.0
    assert m["items"] == 25 and m["samples"] == 100


def test_extraction_failures_and_truncation_rate():
    rows = _rows([[True, False], [False, False]], extracted=[["42", None], [None, "1"]])
    rows[3]["finish_reason"] = "length"
    rows[3]["v.reason"] = "truncated"
    a = adapter_metrics(rows, ["v"], 2)
    assert a["truncation_rate"] == 0.25
    # truncated samples are not counted as extraction failures: 2 failures of 3 scored samples
    assert a["verifiers"]["v"]["extraction_failure_rate"] == pytest.approx(2 / 3)
    assert a["mean_completion_tokens"] == 10


def test_sign_test_exact_values():
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 0) == pytest.approx(2 / 32)  # McNemar exact, all 5 discordant one way
    assert sign_test(0, 5) == pytest.approx(2 / 32)
    assert sign_test(3, 3) == 1.0
    # brute force over all 2^m outcomes
    for m in range(1, 11):
        for w in range(m + 1):
            obs = abs(w - m / 2)
            brute = sum(math.comb(m, x) for x in range(m + 1) if abs(x - m / 2) >= obs) / 2 ** m
            assert sign_test(w, m - w) == pytest.approx(min(1.0, brute)), (w, m)


def test_paired_uses_shared_items_only():
    ref = {("b", "1"): 1.0, ("b", "2"): 0.0, ("b", "3"): 0.0, ("b", "9"): 1.0}
    other = {("b", "1"): 1.0, ("b", "2"): 1.0, ("b", "3"): 1.0, ("b", "4"): 0.0}
    t = paired(ref, other)
    assert t["shared_items"] == 3
    assert t["wins"] == 2 and t["losses"] == 0
    assert t["diff"] == pytest.approx(2 / 3)
    assert t["p_value"] == pytest.approx(0.5)
    assert paired(ref, {("x", "1"): 1.0})["diff"] is None


# --- issue 23, items 3 and 8 ---------------------------------------------------------------------

@pytest.mark.parametrize("written, key", [
    ("$18", "18"), ("18", "18"), ("18.0", "18"), ("18 dollars", "18"), ("x = 18", "18"), ("The answer is 18.", "18"),
    ("\\boxed{18}", "18"), ("\\$18", "18"), ("$18$", "18"), ("1{,}000", "1000"), ("1,000", "1000"),
    ("1/2", "1/2"), ("0.5", "1/2"), ("\\frac{1}{2}", "1/2"), (".5", "1/2"), ("1 / 2", "1/2"), ("50%", "50"),
    ("-3", "-3"), ("x = -3", "-3"), ("\u22123", "-3"), ("-0", "0"),
    # not numbers: kept as text, normalised for whitespace and case only
    ("3,4", "3,4"), ("y+18", "y+18"), ("\\sqrt{2}", "\\sqrt{2}"), ("2x", "2x"), ("2pi", "2pi"), ("(2)", "(2)"),
    ("  New   York ", "new york"), ("x + 1", "x+1"), ("1/0", "1/0"),
    (None, None), ("", None), ("  ", None),
])
def test_issue23_item3_answer_key(written, key):
    from reasonkit.verifiers import answer_key

    assert answer_key(written) == key


def _voted(samples, verifier="v"):
    """Rows of one item: (extracted, correct, reason, details) per sample."""
    return [{"item_id": "0", "sample": s, f"{verifier}.extracted": e, f"{verifier}.correct": c,
             f"{verifier}.reason": reason, f"{verifier}.score": float(c is True), f"{verifier}.details": d}
            for s, (e, c, reason, d) in enumerate(samples)]


@pytest.mark.parametrize("samples, maj", [
    # three right answers written three ways outvote two identical wrong ones (raw strings: 0.0)
    ([("$18", True, "correct", {}), ("18", True, "correct", {}), ("18.0", True, "correct", {}),
      ("17", False, "wrong", {}), ("17", False, "wrong", {})], 1.0),
    # truncated completions do not vote, even with an extracted answer
    ([("18", True, "correct", {}), ("17", False, "truncated", {}), ("17", False, "truncated", {})], 1.0),
    # unscored samples (correct None) do not vote
    ([("5", None, "bad gold", {}), ("5", None, "bad gold", {}), ("18", True, "correct", {})], 1.0),
    # the verifier's normalised answer wins over the key of the extracted text
    ([("a", True, "correct", {"normalized": "x"}), ("b", True, "correct", {"normalized": "x"}),
      ("c", False, "wrong", {}), ("c", False, "wrong", {}), ("c", False, "wrong", {})], 0.0),
    ([("a", True, "correct", {"normalized": "x"}), ("b", True, "correct", {"normalized": "x"}),
      ("c", False, "wrong", {})], 1.0),
    # nobody votes: not correct
    ([("18", False, "truncated", {}), (None, False, "no answer", {})], 0.0),
])
def test_issue23_item3_maj_votes_on_normalised_answer(samples, maj):
    out = verifier_metrics(_voted(samples), "v", len(samples))
    assert out[f"maj@{len(samples)}"] == maj


@pytest.mark.parametrize("verdicts, mean, scored", [
    # (score, correct): the 0.0 of an unscored verdict is a placeholder, not a score
    ([(1.0, True), (1.0, True), (0.0, None), (0.0, None)], 1.0, 2),
    ([(0.5, False), (1.0, True), (0.0, None)], 0.75, 2),
    ([(0.0, None), (0.0, None)], None, 0),
    ([(0.0, False), (1.0, True)], 0.5, 2),
])
def test_issue23_item8_mean_score_leaves_out_unscored_verdicts(verdicts, mean, scored):
    rows = [{"item_id": str(i), "sample": 0, "v.score": s, "v.correct": c, "v.extracted": None, "v.reason": "r"}
            for i, (s, c) in enumerate(verdicts)]
    out = verifier_metrics(rows, "v", 1)
    assert out["mean_score"] == (pytest.approx(mean) if mean is not None else None)
    assert out["scored_samples"] == scored
    rows = [{**r, "stepwise.score": r["v.score"], "stepwise.correct": r["v.correct"], "finish_reason": "stop",
             "num_tokens": 3} for r in rows]
    assert adapter_metrics(rows, ["stepwise"], 1)["stepwise_accuracy"] == (pytest.approx(mean) if mean is not None
                                                                           else None)


class _Unscorable:
    fields = ("answer",)

    def __call__(self, text, answer):
        return {"score": 0.0, "correct": None, "extracted": "18", "reason": "bad gold", "details": {}}


class _Right:
    fields = ("answer",)

    def __call__(self, text, answer):
        return {"score": 1.0, "correct": True, "extracted": "18", "reason": "correct", "details": {}}


@pytest.mark.parametrize("verifier, finish, score_truncated, correct, reason", [
    (_Unscorable(), "length", False, None, "bad gold"),  # truncated and unscorable: unscored, not wrong
    (_Right(), "length", False, False, "truncated"),  # truncated and scorable: wrong (the policy)
    (_Right(), "length", True, True, "correct"),
    (_Unscorable(), "stop", False, None, "bad gold"),
])
def test_issue23_itema_truncated_unscorable_stays_unscored(verifier, finish, score_truncated, correct, reason):
    from reasonkit.eval.scoring import score_completion

    out = score_completion({"v": verifier}, "... 18", finish, {"answer": "x"}, score_truncated=score_truncated)
    assert out["v.correct"] is correct and out["v.reason"] == reason
    if finish == "length" and correct is None:
        assert out["v.details"]["truncated"] is True
