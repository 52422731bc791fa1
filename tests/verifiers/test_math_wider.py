"""math fast path, rules beyond exact simple numbers (``verifiers/_mathfast.py``): each row is checked
against math-verify itself (``fast=False``); rows the fast path must settle are taken by it, near
misses must be left to math-verify."""
from __future__ import annotations

import pytest

from reasonkit.verifiers import verify_math

FAST, DEFER = "fast", "defer"

# (gold, boxed prediction, fast path takes it?)
TABLE = [
    # the exact rules' kind check: an expression in a variable, pi times zero or a set written without
    # a comma may be a number
    ("0", "x - x", DEFER),
    ("1", "x + 1 - x", DEFER),
    ("1", "\\frac{x}{x}", DEFER),
    ("1", "x^0", DEFER),
    ("0", "\\pi*0", DEFER),
    ("0", "\\frac{0}{1}\\pi", DEFER),
    ("5", "[5]", DEFER),  # a one-element set is the number to math-verify
    ("5", "\\{5\\}", DEFER),
    ("\\{5\\}", "5", DEFER),
    ("0", "\\frac{1}{\\infty}", DEFER),
    ("-2", "\\begin{vmatrix} 1 & 2 \\\\ 3 & 4 \\end{vmatrix}", DEFER),  # a determinant: -2, correct
    ("\\pi", "3.141593", DEFER),  # pi to math-verify's 6 decimals: correct
    ("\\frac{\\pi}{2}", "1.570796", DEFER),
    ("1000", "x = 1,000", DEFER),  # math-verify reads x = {0, 1}
    ("5", "\\pi", FAST),  # a rational multiple of pi is never a simple number
    ("5", "\\frac{\\pi}{10}", FAST),
    ("5", "\\begin{pmatrix} 5 \\end{pmatrix}", FAST),
    ("5", "x = 5", FAST),
]


@pytest.mark.parametrize("gold,pred,path", TABLE)
def test_fast_path_rules_agree_with_math_verify(gold, pred, path):
    completion = f"<think>\nwork\n</think>\nThe final answer is $\\boxed{{{pred}}}$."
    slow = verify_math(completion, gold, fast=False, timeout=10.0)  # also caches the parsed gold
    fast = verify_math(completion, gold, timeout=10.0)
    assert fast.correct is slow.correct, (fast, slow)
    assert (fast.details.get("path") == "fast") is (path == FAST), fast
