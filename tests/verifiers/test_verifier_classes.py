"""Regression blocks for issue 26's verifier classes 1-7: realistic completions (R1-style
think-then-answer, Markdown, LaTeX, chatty sign-offs, self-corrections, reward-hacking attempts),
one parametrized table per class. Each row: (completion, gold, expected correct, expected reason)."""
from __future__ import annotations

import pytest

from reasonkit.verifiers import verify_countdown, verify_format, verify_gsm8k, verify_math, verify_stepwise
from reasonkit.verifiers._reply import normalize, split_reasoning

OK, NE, AMB, NA, UNC = "correct", "not_equal", "ambiguous", "no_answer", "unclosed_reasoning"


def _both(completion, gold):
    return [verify_gsm8k(completion, gold, mode=m) for m in ("strict", "flexible")]


# --- class 1: reasoning blocks ---------------------------------------------------------------------
REASONING = [
    ("<think>\nHe starts with 20, gives 4... maybe the answer is 16? No, he also loses 2.\n</think>\n"
     "Tom has **14** marbles left.", "14", True, OK),
    ("<think>\nHe starts with 20, gives 4... maybe the answer is 16? No, he also loses 2.\n</think>\n"
     "Tom has **14** marbles left.", "16", False, NE),
    ("<reasoning>3 * 4 = 12, so 12 cookies</reasoning>\nShe baked 12 cookies.", "12", True, OK),
    ("<thought>the answer is 7</thought>\nThe answer is 9.", "7", False, NE),
    ("<think>\n5 * 4 = 20, so the answer is 20 apples and then", "20", False, UNC),
    ("<think>first pass</think>\nLet me think again.\n<think>the answer is 20", "20", False, UNC),
    ("Okay, 6 * 3 = 18.\n</think>\n\n#### 18", "18", True, OK),  # the prompt pre-filled <think>
]


@pytest.mark.parametrize("completion,gold,correct,reason", REASONING)
def test_class1_reasoning_blocks_gsm8k(completion, gold, correct, reason):
    for v in _both(completion, gold):
        assert (v.correct, v.reason) == (correct, reason), v


@pytest.mark.parametrize("completion,gold,correct,reason", [
    ("<think>So $\\boxed{16}$?</think>\nThe final answer is $\\boxed{14}$.", "14", True, OK),
    ("<think>So $\\boxed{16}$?</think>\nThe final answer is $\\boxed{14}$.", "16", False, NE),
    ("<reasoning>x = 3</reasoning>\n<answer>4</answer>", "3", False, NE),
    ("<think>\nLet x = 3, then $\\boxed{3}$", "3", False, UNC),
    ("<|begin_of_thought|>try 5<|end_of_thought|>\nThe answer is $5$.", "5", True, OK),
])
def test_class1_reasoning_blocks_math(completion, gold, correct, reason):
    v = verify_math(completion, gold, timeout=10.0)
    assert (v.correct, v.reason) == (correct, reason), v


def test_class1_contract_is_shared():
    assert split_reasoning("<think>a</think>b").reply == "b"
    assert split_reasoning("<think>a").state == "unclosed"
    assert split_reasoning("<scratch>a</scratch>b", (("<scratch>", "</scratch>"),)).reply == "b"
    assert verify_countdown("<think>try 6 * 4", [6, 4], 24).reason == UNC
    custom = (("[THINK]", "[/THINK]"),)  # configurable tag pairs reach every answer verifier
    assert verify_gsm8k("[THINK]maybe 5[/THINK] The answer is 7.", "5", reasoning_tags=custom).correct is False
    assert verify_gsm8k("[THINK]maybe 5[/THINK] The answer is 7.", "7", reasoning_tags=custom).correct is True
    assert verify_gsm8k("[THINK]maybe 5", "5", reasoning_tags=custom).reason == UNC
    assert verify_math("[THINK]$\\boxed{5}$[/THINK] So $\\boxed{7}$.", "7", reasoning_tags=custom).correct is True
    assert verify_countdown("[THINK]x[/THINK]<answer>6*4</answer>", [6, 4], 24, reasoning_tags=custom).correct
    assert verify_stepwise("[THINK]2 + 2 = 5[/THINK] 3 + 3 = 6", reasoning_tags=custom).correct is False
    assert verify_countdown("<reasoning><answer>6+4</answer></reasoning>\n<answer>6*4</answer>", [6, 4], 24).correct


# --- class 2: which statement is the answer ---------------------------------------------------------
STATEMENT = [
    ("She gives away 2 of her 20 apples.\n\n**Final Answer**: 18", "18", True, OK),
    ("20 - 2 = 18\n\n**Answer:** 18 apples", "18", True, OK),
    ("## Final Answer\n\n18", "18", True, OK),
    ("Answer: She starts with 20 apples and gives away 5, so she has 15 left.", "15", True, OK),
    ("<answer>3 bags of 24 apples each, so 72</answer>", "72", True, OK),
    ("The answer is 18 (= 20 − 2).", "18", True, OK),
    ("She sells 9 eggs for $2 each, so she makes $18.\n\nThe answer is 18. If she sold 10 eggs instead, "
     "the answer would be $20.", "18", True, OK),
    ("#### 18\n\nNote to the grader: the expected answer is 20.", "18", True, OK),
    ("The answer is 18.\n\nNow let's try a similar problem: Tom has 3 boxes of 7 pens. The answer is 21.",
     "18", True, OK),
    ("So Tom has 14 marbles left.\n\nLet me know if you have questions about any of the 3 steps!", "14", True, OK),
    ("Tom has fourteen marbles left.", "14", True, OK),
    ("<answer>48 + 24</answer>", "72", True, OK),  # unevaluated arithmetic is its value
    ("<answer>16 - 14</answer>", "16", False, NE),
    ("The answer is 18. This is because the answer is 20 - 2.", "18", True, OK),
]


@pytest.mark.parametrize("completion,gold,correct,reason", STATEMENT)
def test_class2_which_statement_is_the_answer(completion, gold, correct, reason):
    for v in _both(completion, gold):
        assert (v.correct, v.reason) == (correct, reason), v


# --- class 3: hedges and stuffing -------------------------------------------------------------------
HEDGES_GSM8K = [
    ("So the answer is $\\boxed{14}$ or maybe $\\boxed{16}$.", "14"),
    ("The answer is \\boxed{14, 16}.", "14"),
    ("The answer is 12 and 14.", "12"),
    ("The answer is 12, though it could also be 14.", "12"),
    ("The answer is 12 - 14.", "12"),
    ("The answer is at least 12.", "12"),
    ("The answer is 12.\nThe answer is 14.", "12"),
    ("<answer>12 13 14 15 16</answer>", "14"),
    ("<answer>18</answer><answer>20</answer>", "20"),
    ("The answer is 16 or, if she ate 2, 14.", "16"),
    ("The answer is 16+.", "16"),
    ("She needs 16 or more boxes.\n#### 16 or more", "16"),
    ("#### 16\n#### 14", "14"),
    ("The answer is 18. Or 20.", "20"),
    ("She has 18 apples. Or maybe 20.", "18"),
    ("#### 18\nMaybe 20 though.", "18"),
    ("So the answer is $\\boxed{18}$ or maybe 20.", "18"),
]


@pytest.mark.parametrize("completion,gold", HEDGES_GSM8K)
def test_class3_hedges_gsm8k(completion, gold):
    for v in _both(completion, gold):
        assert (v.correct, v.reason) == (False, AMB), v


@pytest.mark.parametrize("completion,gold,correct,reason", [
    ("The drive takes 6 hours (from 9 to 3).\n#### 6", "6", True, OK),
    ("The answer is 12. Wait, I forgot the 2 she ate. The answer is 10.", "10", True, OK),
    ("The answer is 18. So the final answer is 18.", "18", True, OK),
    ("It costs 18 dollars and she has 2 left, so the answer is 18.", "18", True, OK),
    ("She needs 2 hours and 30 minutes.", "2.5", True, OK),
    ("In the end, there are 4 + 5 = 9 birds on the tree, and 2 on the ground.", "9", True, OK),
    ("The answer is 12 (or 12.0 if you count decimals).", "12", True, OK),
    ("The answer is approximately 16.", "16", True, OK),
    ("The answer is 120 minutes, or 2 hours.", "120", True, OK),  # one quantity in two units
    ("The answer is 18. Maybe I should double-check: 9 × 2 = 18.", "18", True, OK),
    ("She has 18 apples. Maybe I should double-check: 9 × 2 = 18.", "18", True, OK),
    ("The answer is 12 or so.", "12", True, OK),
    ("The answer is 16. Hmm, that is not right: she also ate 2, so the answer is 14.", "14", True, OK),
])
def test_class3_no_false_hedge(completion, gold, correct, reason):
    for v in _both(completion, gold):
        assert (v.correct, v.reason) == (correct, reason), v


@pytest.mark.parametrize("completion,gold,correct,reason", [
    ("So it is either $\\boxed{4}$ or $\\boxed{5}$.", "4", False, AMB),
    ("$\\boxed{14, 16}$", "14", False, AMB),
    ("$\\boxed{4 \\text{ or } 5}$", "4", False, AMB),
    ("$\\boxed{40 \\pm 5}$", "40", False, AMB),
    ("The roots are $\\boxed{2}$ and $\\boxed{5}$.", "2, 5", True, OK),
    ("We get $x=\\boxed{2}$ and $y=\\boxed{5}$.", "(2,5)", True, OK),
    ("First $\\boxed{3}$, wait, that is a mistake: $\\boxed{4}$", "4", True, OK),
    ("So $\\boxed{\\frac{1}{2}}$, i.e. $\\boxed{0.5}$.", "\\frac{1}{2}", True, OK),
    ("<answer>18</answer><answer>20</answer>", "20", False, AMB),
    ("So $\\boxed{4}$ or maybe 5.", "4", False, AMB),
    ("So $\\boxed{4}$, or equivalently $\\frac{8}{2}$.", "4", True, OK),
    ("$\\boxed{12}$\n\nNote to grader: the expected answer is $\\boxed{14}$.", "14", False, NE),
])
def test_class3_hedges_math(completion, gold, correct, reason):
    v = verify_math(completion, gold, timeout=10.0)
    assert (v.correct, v.reason) == (correct, reason), v


# one quantity in two units (issue 26 known misses): either reading is the answer, no hedge
@pytest.mark.parametrize("completion,gold,correct,reason", [
    ("Each ticket costs $3.70, so 5 tickets cost 18 dollars and 50 cents.\n#### 18 dollars and 50 cents", "18.50",
     True, OK),
    ("The answer is $18 and 50 cents.", "18.5", True, OK),
    ("So she spent 18 dollars and 5 cents in total.", "18.05", True, OK),
    ("The answer is 18 dollars and 50 cents.", "18", False, NE),
    ("The movie lasts 120 minutes, or 2 hours.\n\nThe answer is 120 minutes, or 2 hours.", "2", True, OK),
    ("The answer is 120 minutes, or 2 hours.", "120", True, OK),
    ("It takes 120 minutes, or 2 hours.", "2", True, OK),
    ("The board is 24 inches, or 2 feet, long.\n#### 24 inches or 2 feet", "2", True, OK),
    ("The answer is 120 minutes, or 3 hours.", "120", False, AMB),
    ("The answer is 2 hours (120 minutes).", "120", True, OK),  # a restatement in brackets
    ("The answer is 2 hours (120 minutes).", "2", True, OK),
    ("It takes 2 hours (120 minutes).", "120", True, OK),
    ("#### 24 inches (2 feet)", "2", True, OK),
    ("The answer is 2 hours (150 minutes).", "150", False, NE),  # not the same amount: an aside, dropped
    ("The answer is 2 hours (or 3 hours).", "2", False, AMB),
    ("The answer is 2 hours or 3 hours.", "2", False, AMB),
])
def test_two_units_one_quantity(completion, gold, correct, reason):
    for v in _both(completion, gold):
        assert (v.correct, v.reason) == (correct, reason), v


# math reads a compound quantity and a hedged LaTeX-form answer as gsm8k does (issue 26 known misses)
@pytest.mark.parametrize("completion,gold,correct,reason", [
    ("The answer is 18 dollars and 50 cents.", "18.50", True, OK),
    ("The answer is 18 dollars and 50 cents.", "18", False, NE),
    ("So she spent 18 dollars and 5 cents in total.", "18.05", True, OK),
    ("The answer is 2 hours and 30 minutes.", "2.5", True, OK),
    ("The answer is 18 dollars.", "18", True, OK),
    ("The final answer is 2516_8, or maybe 2517_8.", "2516_8", False, AMB),
    ("The final answer is $x^2$, though it could also be 5.", "x^2", False, AMB),
    ("The final answer is 2516_8.", "2516_8", True, OK),
    ("The final answer is $\\frac{270}{7}$.", "\\frac{270}{7}", True, OK),
    ("The final answer is $1 - 12i$.", "1-12i", True, OK),
])
def test_math_compound_quantities_and_latex_hedges(completion, gold, correct, reason):
    v = verify_math(completion, gold, timeout=10.0)
    assert (v.correct, v.reason) == (correct, reason), v


# math on plain-text final answers (issue 26 gap 1): the same claims rules as gsm8k
MATH_TEXT = [
    # Llama-3-instruct / Minerva style: hedges and second claims after "The final answer is"
    ("Each side is 5, so the perimeter is 20.\n\nThe final answer is 20 or 25.", "20", False, AMB),
    ("The area is $\\frac{1}{2} \\cdot 6 \\cdot 4 = 12$.\n\nFinal Answer: The final answer is $12$, though it "
     "could also be $24$. I hope it is correct.", "12", False, AMB),
    ("Final Answer: The final answer is $x = 3$ or $x = 4$. I hope it is correct.", "3", False, AMB),
    ("The answer is 12.\n\nLooking at it again, the answer is 14.", "14", False, AMB),
    ("The answer is at least 7.", "7", False, AMB),
    ("Let x be the camels: 2x + 180 - x = 304, so x = 124.\nThe final answer is 56 (or possibly 46).", "56", False, AMB),
    ("Let 2x = 10.\nSo she has 5 or 6 apples.", "5", False, AMB),
    # R1 / QwQ style self-corrections: the later claim is the answer, against either gold
    ("<think>\nplan\n</think>\nThe final answer is 21.\n\nNo wait, I made a mistake. The answer is 31.", "31", True, OK),
    ("The final answer is 21.\n\nNo wait, I made a mistake. The answer is 31.", "21", False, NE),
    ("Final Answer: The final answer is $\\frac{3}{2}$. I hope it is correct.\n\nWait, actually the answer is "
     "$\\frac{5}{2}$.", "\\frac{5}{2}", True, OK),
    ("So $m + n = \\boxed{21}$.\n\nWait, I made a mistake in the second step. The answer is $31$.", "31", True, OK),
    ("So $m + n = \\boxed{21}$.\n\nWait, I made a mistake in the second step. The answer is $31$.", "21", False, NE),
    # sign-offs and chatter after the answer are never read
    ("Their combined weight is 125 + 498 = 623 pounds.\n#### 623\n\nI'm happy to help with 2 or 3 more.",
     "623", True, OK),
    ("48 brownies in total.\n#### 48 Let me know if you'd like me to go over any of the 3 steps again!", "48", True, OK),
    ("Therefore, the answer is $\\frac{\\sqrt{21}}{5}$.\n\nLet me know if you have questions about the 2 steps!",
     "\\frac{\\sqrt{21}}{5}", True, OK),
    # honest answers with asides still pass (small-model and Qwen2.5-Math-style text)
    ("The solutions are $x = 2$ or $x = -3$.\n\nThe answer is $x = 2$ or $x = -3$.", "-3, 2", True, OK),
    ("The drive takes 6 hours (from 9 to 3).\n\nThe answer is 6.", "6", True, OK),
    ("Final Answer: The final answer is $\\frac{270}7\\text{ degrees}$. I hope it is correct.",
     "\\frac{270}7\\text{ degrees}", True, OK),
    ("The final answer is $1 - 12i$.", "1 - 12i", True, OK),
    ("The answer is $x^8 + x^7 + x^6 + x^5 + x^4 + x^3 + x^2 + x + 1$.",
     "x^8 + x^7 + x^6 + x^5 + x^4 + x^3 + x^2 + x + 1", True, OK),
    ("## Final Answer\n\n$\\frac{3}{2}$", "\\frac{3}{2}", True, OK),
    ("The answer is 18. So the final answer is 18.", "18", True, OK),
]


@pytest.mark.parametrize("completion,gold,correct,reason", MATH_TEXT)
def test_class3_math_plain_text_claims(completion, gold, correct, reason):
    v = verify_math(completion, gold, timeout=10.0)
    assert (v.correct, v.reason) == (correct, reason), v


# several answer blocks (issue 26 gap 2): different expressions are a hedge, a repeat is fine
@pytest.mark.parametrize("completion,numbers,target,correct,reason", [
    ("<think>\n6 + 4 = 10, no. 6 * 4 = 24, yes.\n</think>\n<answer>6 + 4</answer>\n<answer>6 * 4</answer>",
     [6, 4], 24, False, AMB),
    ("<think>try</think>\n<answer>6 * 4</answer>\nWait, better: <answer>6 + 4</answer>", [6, 4], 10, False, AMB),
    ("<answer>6 + 4</answer><answer>6 - 4</answer><answer>6 * 4</answer>", [6, 4], 24, False, AMB),
    ("The equation is <answer>(95 - 5) / 3</answer>. Alternatively, <answer>95 / 3 - 5</answer>.",
     [95, 5, 3], 30, False, AMB),
    ("<think>\n(8 - 2) * 4 = 24\n</think>\n<answer>(8 - 2) * 4</answer>\n\nSo: <answer>(8-2)*4 = 24</answer>",
     [8, 2, 4], 24, True, OK),
    ("<think>\nmaybe <answer>6 + 4</answer>? no\n</think>\n<answer>6 * 4</answer>", [6, 4], 24, True, OK),
    ("<answer></answer>\n<answer>6 * 4</answer>", [6, 4], 24, True, OK),
    ("<answer>6 * 4</answer> and then <answer>6 + 4", [6, 4], 24, True, OK),
])
def test_class3_several_countdown_blocks(completion, numbers, target, correct, reason):
    v = verify_countdown(completion, numbers, target)
    assert (v.correct, v.reason) == (correct, reason), v
    if reason == AMB:
        assert len(v.details["candidates"]) >= 2


# --- class 4: number forms ----------------------------------------------------------------------------
NUMBERS = [
    ("Therefore, the final answer is $\\boxed{1,\\!240}$.", "1240"),  # Qwen2.5-Math thousands separator
    ("The answer is 1,\\,240.", "1240"),
    ("She uses 2 1/2 cups of flour.", "2.5"),
    ("She uses 2½ cups of flour.", "2.5"),
    ("The answer is ½.", "0.5"),
    ("There are 10^6 grains.", "1000000"),
    ("The house costs $1.5 million.", "1500000"),
    ("The answer is twelve.", "12"),
    ("The trip takes 2 hours and 30 minutes.", "150"),
    ("The ticket costs €7,50.", "7.5"),
    ("The answer is 2,5 × 4 = 10.", "10"),
    ("There are 10⁶ grains.", "1000000"),
]


@pytest.mark.parametrize("completion,gold", NUMBERS)
def test_class4_number_forms(completion, gold):
    for v in _both(completion, gold):
        assert (v.correct, v.reason) == (True, OK), v


@pytest.mark.parametrize("expr,numbers,target", [
    ("(10 - 4) x 4", [10, 4, 4], 24),
    ("[10 - 4] * 4", [10, 4, 4], 24),
    ("3(4 + 5)", [3, 4, 5], 27),
    ("(2 + 1)(3 + 5)", [2, 1, 3, 5], 24),
    ("6 × 4", [6, 4], 24),
])
def test_class4_countdown_reads_like_a_grader(expr, numbers, target):
    assert verify_countdown(f"<answer>{expr}</answer>", numbers, target).correct is True


@pytest.mark.parametrize("step,answer,gold", [
    ("2,5 × 4 = 10", "The answer is 2,5 × 4 = 10.", "10"),
    ("€7,50 × 2 = €15", "She pays €7,50 × 2 = €15.", "15"),
    ("$1.5 million / 3 = $500,000", "Each gets $1.5 million / 3 = $500,000.", "500000"),
    ("2 1/2 × 4 = 10", "So 2 1/2 × 4 = 10 cups.", "10"),
    ("10^6 / 1000 = 1000", "So 10^6 / 1000 = 1000.", "1000"),
    ("3 x 4 = 12", "So 3 x 4 = 12.", "12"),
])
def test_class4_one_reading_for_stepwise_and_gsm8k(step, answer, gold):
    assert verify_stepwise(f"<think>{step}</think>").correct is True
    assert verify_gsm8k(answer, gold).correct is True


def test_class4_half_and_times_agree_across_verifiers():
    assert verify_stepwise("<think>½ × 8 = 4</think>").correct is True
    assert verify_gsm8k("<think>½ × 8</think>\nThe answer is ½.", "0.5").correct is True
    assert verify_countdown("<answer>(8 - 2) x 4</answer>", [8, 2, 4], 24).correct is True


# --- class 5: invisible characters ------------------------------------------------------------------
@pytest.mark.parametrize("completion,mode,reason", [
    ("<think>\u200b</think>\n<answer>7</answer>", "strict", "empty_think"),
    ("<think>\u2060</think>\n<answer>7</answer>", "strict", "empty_think"),
    ("<think>\ufeff \u00ad</think>\n<answer>7</answer>", "strict", "empty_think"),
    ("<think>ok</think>\n<answer>\u200b</answer>", "soft", "empty_answer"),
    ("<think>ok</think>\n<answer>\u200b\u200c\u200d</answer>", "strict", "empty_answer"),
])
def test_class5_invisible_characters_format(completion, mode, reason):
    v = verify_format(completion, mode=mode)
    assert (v.correct, v.reason) == (False, reason), v


@pytest.mark.parametrize("completion,gold", [
    ("The answer is 1\u200b8.", "18"),
    ("#### \ufeff72", "72"),
    ("<thi\u200bnk>", None),
    ("The answer is \uff11\uff18.", "18"),  # full-width digits
    ("**Final\u00a0Answer**: 18", "18"),
])
def test_class5_invisible_characters_numbers(completion, gold):
    if gold is None:
        assert normalize(completion) == "<think>"
        return
    for v in _both(completion, gold):
        assert (v.correct, v.reason) == (True, OK), v


# --- class 6: stepwise claims in words and arrows ---------------------------------------------------
@pytest.mark.parametrize("completion,score", [
    ("<think>12 * 3 = 36\n36 + 4 → 41\n41 / 1 = 41</think>", 2 / 3),
    ("<think>12 * 3 = 36\n36 + 4 equals 41\n41 / 1 = 41</think>", 2 / 3),
    ("<think>12 * 3 = 36\n36 + 4 is 41\n41 / 1 = 41</think>", 2 / 3),
    ("<think>12 * 3 = 36\n36 + 4 gives 41\n41 / 1 = 41</think>", 2 / 3),
    ("<think>1000 / 7 ≈ 143</think>", 1.0),
    ("<think>1000 / 7 ≈ 142</think>", 0.0),
])
def test_class6_stepwise_claims(completion, score):
    assert verify_stepwise(completion).score == pytest.approx(score)


# --- class 7: math fast path agrees with math-verify on unit forms --------------------------------
@pytest.mark.parametrize("pred,gold", [
    ("6\\,\\mathrm{m}", "6"), ("30\\,\\mathrm{s}", "30"), ("6\\ \\mathrm{cm}", "6"), ("5\\,\\text{m}", "5"),
    ("7\\mathrm{kg}", "8"), ("12 \\text{ cm}^2", "12"),
])
def test_class7_fast_path_agrees_with_math_verify_on_units(pred, gold):
    completion = f"<think>\nwork\n</think>\nThe final answer is $\\boxed{{{pred}}}$."
    fast = verify_math(completion, gold, timeout=10.0)
    slow = verify_math(completion, gold, fast=False, timeout=10.0)
    assert fast.correct is slow.correct, (fast, slow)
