"""math fast path, rules beyond exact simple numbers (``verifiers/_mathfast.py``: the kind check and the
wider rules W1-W5): each row is checked against math-verify itself (``fast=False``); rows the fast
path must settle are taken by it, near misses must be left to math-verify. Plus the readers the
wider rules rest on (``_mathpoly``, ``_mathgold``)."""
from __future__ import annotations

import pytest

from reasonkit.verifiers import math as math_mod
from reasonkit.verifiers import verify_math
from reasonkit.verifiers._mathgold import gold_facts
from reasonkit.verifiers._mathpoly import equation, nonconstant, read_polynomial

FAST, DEFER = "fast", "defer"

# (gold, boxed prediction, fast path takes it?)
TABLE = [
    # the exact rules' kind check: an expression in a variable, pi times zero or a set written without
    # a comma may be a number; a decimal may round to a multiple of pi
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
    # W1: a number gold against a non-constant polynomial
    ("\\frac{3}{2}", "2k", FAST),
    ("\\frac{8}{15}", "15x - 80", FAST),
    ("\\frac{2}{21}", "\\cot x", FAST),
    ("7", "\\frac{x+1}{2}", FAST),
    ("4495", "x^8 + x^7 + x^6 + x^5 + x^4 + x^3 + x^2 + x + 1", FAST),
    ("288 \\pi", "2k", FAST),  # a number by math-verify's parse of the gold
    ("(1, 2)", "x", FAST),  # a tuple gold
    # W2: an equation answer, judged on its right side
    ("5", "2x + 1 = 5", FAST),  # correct, as math-verify says
    ("\\frac{1}{2}", "3x = 0.5", FAST),
    ("19", "5x - 7y + 11z + 4 = 0", FAST),
    ("20", "y = 2x + 3", FAST),
    ("1+2\\sqrt{3}", "y = 3.21", FAST),
    # W3: a simple number against a set, a non-constant polynomial or a number a clear gap away
    ("-2 + 7i", "17", FAST),
    ("2k+2", "160", FAST),
    ("5r^5", "-\\frac{3}{8}", FAST),
    ("\\frac{11+9a}{20}", "90", FAST),
    ("\\cot x", "3", FAST),
    ("(3,4]", "\\frac{9}{256}", FAST),
    ("\\left(\\frac{3}{5},\\frac{8}{3}\\right]", "0.15", FAST),
    ("x \\in [-2,7]", "-2", FAST),
    ("\\{1\\pm\\sqrt{5},-2\\}", "-2", FAST),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "3", FAST),
    ("1+2\\sqrt{3}", "3.21", FAST),
    ("1+2\\sqrt{3}", "4", FAST),
    ("4343_6", "21", FAST),
    ("y = 2x + 3", "20", FAST),
    ("\\pi", "3.5", FAST),
    # W4: a tuple against a gold number
    ("288 \\pi", "(1, 2)", FAST),
    # W5: a matrix of simple numbers against a gold number
    ("288 \\pi", "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}", FAST),
    ("4343_6", "\\begin{bmatrix} 4343 \\end{bmatrix}", FAST),
    # near misses of the wider rules: left to math-verify
    ("3", "1 + 2t", DEFER),  # math-verify drops the unit t: 1 + 2 = 3, correct
    ("1", "\\sin^2 x + \\cos^2 x", DEFER),  # an identity: correct
    ("1", "\\tan x \\cot x", DEFER),
    ("5", "0x + 5", DEFER),  # a constant after all
    ("-1", "i^2", DEFER),  # i is the imaginary unit there
    ("2", "e", DEFER),
    ("5", "\\sqrt{x}", DEFER),  # not equal, but not provably by these rules: math-verify says so
    ("58500", "y + 1 = 58,500", DEFER),  # a comma on the right side of an equation
    ("1+2\\sqrt{3}", "4.4641", DEFER),  # within math-verify's rounding reach
    ("1+2\\sqrt{3}", "4.464102", DEFER),
    ("1+2\\sqrt{3}", "y = 4.4641", DEFER),
    ("288 \\pi", "904.778684", DEFER),
    ("\\pi", "3.14", DEFER),  # not apart enough to settle here
    ("4343_6", "4343", DEFER),  # math-verify reads the gold as 4343: correct
    ("\\frac{270}7\\text{ degrees}", "38.6", DEFER),
    ("1+2\\sqrt{3}", "(1.5, 2)", DEFER),
    ("288 \\pi", "\\begin{pmatrix} 288\\pi \\end{pmatrix}", DEFER),  # an entry that is no simple number
    ("10\\%", "11", DEFER),  # percentages: math-verify compares 10% with 10 and with 0.1
    ("x=5", "y = 5", DEFER),  # two equations: math-verify compares the relations
]


@pytest.mark.parametrize("gold,pred,path", TABLE)
def test_fast_path_rules_agree_with_math_verify(gold, pred, path):
    completion = f"<think>\nwork\n</think>\nThe final answer is $\\boxed{{{pred}}}$."
    slow = verify_math(completion, gold, fast=False, timeout=10.0)  # also caches the parsed gold
    fast = verify_math(completion, gold, timeout=10.0)
    assert fast.correct is slow.correct, (fast, slow)
    assert (fast.details.get("path") == "fast") is (path == FAST), fast


def test_gold_facts_are_cached_with_the_parsed_gold():
    verify_math("$\\boxed{0}$", "(3,4]", fast=False, timeout=10.0)
    facts = math_mod._gold_facts["(3,4]"]
    assert facts.shape == "set" and facts.assigned is False


@pytest.mark.parametrize("gold,shape,assigned", [
    ("1+2\\sqrt{3}", "number", False), ("288 \\pi", "number", False), ("4343_6", "number", False),
    ("2k+2", "nonconstant", False), ("-2 + 7i", "nonconstant", False), ("y = 2x + 3", "nonconstant", True),
    ("(3,4]", "set", False), ("(-\\infty, 2) \\cup (3, \\infty)", "set", False), ("1 \\pm \\sqrt{19}", "set", False),
    ("x \\in [-2,7]", "set", True), ("x=5", "number", True),
    ("10\\%", None, False), ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", None, False), ("\\cot x", None, False),
    ("5x - 7y + 11z + 4 = 0", None, False), ("x - x", None, False),
])
def test_gold_facts(gold, shape, assigned):
    mv = math_mod._math_verify()
    facts = gold_facts(mv.parse(math_mod.gold_to_latex(gold), parsing_timeout=None))
    assert (facts.shape, facts.assigned) == (shape, assigned) if shape else facts is None, facts


@pytest.mark.parametrize("latex,expected", [
    ("2k", True), ("15x - 80", True), ("-x", True), ("x^{10} + 1", True), ("\\frac{x+1}{2}", True),
    ("\\frac{1}{2}x", True), ("0.5x", True), ("\\cot x", True), ("3\\sin{y} + 1", True), ("\\tan(z)", True),
    ("5x - 7y + 11z + 4", True), ("3R^2", True),
    ("x - x", False), ("0x + 5", False), ("x^0", False), ("7", False), ("\\frac{3}{4}", False),
    ("1 + 2t", None), ("x + c", None), ("\\sin t", None), ("xy", None), ("5 in", None), ("e", None), ("2i + 1", None),
    ("I", None), ("2E+1", None), ("2d", None), ("x^23", None), ("x^{-1}", None), ("\\frac{x}{0}", None),
    ("\\cot^2 x", None), ("\\cot x^2", None), ("\\sin x + \\cos x", None), ("x\\cot x", None), ("\\pi x", None),
    ("\\sqrt{x}", None), ("x_1", None), ("(x+1)", None), ("x!", None), ("x = 1", None), ("12x \\text{ cm}", None),
])
def test_read_polynomial(latex, expected):
    poly = read_polynomial(latex)
    assert (None if poly is None else nonconstant(poly)) is expected, poly


def test_equation_sides():
    assert equation("2x + 1 = 5") == ("2x + 1", "5")
    assert equation("y = 2x + 3") == ("y", "2x + 3")
    assert equation("x = y = 3") is None
    assert equation("x \\le 5") is None
    assert equation("f(x) = 3") is None  # a left side the reader does not take
