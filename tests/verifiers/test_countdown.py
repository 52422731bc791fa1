"""Regression table for the countdown verifier: realistic model outputs, each with why it exists."""
from __future__ import annotations

import pickle
import time

import pytest

from reasonkit.verifiers import get_verifier
from reasonkit.verifiers.countdown import extract_answer, parse_numbers, parse_target
from reasonkit.verifiers.countdown import verify_countdown as countdown

THINK = "<think>\nLet me try combining the numbers step by step.\n</think>\n"


def ans(expr: str) -> str:
    return f"{THINK}<answer>{expr}</answer>"


# (id, completion, numbers, target, expected reason)
CASES = [
    ("basic_correct", ans("(95 - 21) / 2 + 36"), [95, 21, 2, 36], 73, "correct"),
    ("exact_division_6_over_1_minus_3_4", ans("6/(1-3/4)"), [6, 1, 3, 4], 24, "correct"),
    ("intermediate_fraction_8_3_8_3", ans("8 / (3 - 8 / 3)"), [8, 3, 8, 3], 24, "correct"),
    ("float_would_err_but_fraction_exact", ans("1/3 + 1/3 + 1/3 * 3"), [1, 3, 1, 3, 1, 3, 3], 2, "not_equal"),
    ("unicode_times_and_minus", ans("(6 × 4) × (3 − 2)"), [6, 4, 3, 2], 24, "correct"),
    ("unicode_divide", ans("48 ÷ 2"), [48, 2], 24, "correct"),
    ("unicode_middle_dot", ans("6 · 4"), [6, 4], 24, "correct"),
    ("latex_times_in_dollars", ans("$6 \\times 4$"), [6, 4], 24, "correct"),
    ("latex_inline_parens_div", ans("\\(48 \\div 2\\)"), [48, 2], 24, "correct"),
    ("whitespace_and_newlines_inside", ans("\n  (1 + 2)\n *\t8  \n"), [1, 2, 8], 24, "correct"),
    ("no_spaces", ans("(1+2)*8"), [1, 2, 8], 24, "correct"),
    ("trailing_period", ans("6 * 4."), [6, 4], 24, "correct"),
    ("eq_target_tail_accepted", ans("(1 + 3) * 6 = 24"), [1, 3, 6], 24, "correct"),
    ("eq_tail_number_not_counted_as_used", ans("6 * 4 = 24"), [6, 4], 24, "correct"),
    ("eq_tail_claims_wrong_value", ans("6 * 4 = 25"), [6, 4], 24, "not_equal"),
    ("eq_tail_right_but_lhs_wrong", ans("6 + 4 = 24"), [6, 4], 24, "not_equal"),
    ("eq_tail_equals_lhs_not_target", ans("6 + 4 = 10"), [6, 4], 24, "not_equal"),
    ("eq_leading_target_rejected", ans("24 = 6 * 4"), [6, 4], 24, "parse_error"),
    ("eq_twice_rejected", ans("6 * 4 = 24 = 24"), [6, 4], 24, "parse_error"),
    ("eq_tail_expression_rhs_rejected", ans("6 * 4 = 20 + 4"), [6, 4], 24, "parse_error"),
    ("number_reused", ans("6 * 6 - 12"), [6, 2, 12], 24, "wrong_numbers"),
    ("number_missing", ans("6 * 4"), [6, 4, 1], 24, "wrong_numbers"),
    ("number_not_given", ans("6 * 4 * 1"), [6, 4], 24, "wrong_numbers"),
    ("only_the_target_written", ans("24"), [6, 4], 24, "wrong_numbers"),
    ("duplicate_given_numbers_each_used", ans("2 * 2 * 6"), [2, 2, 6], 24, "correct"),
    ("duplicate_given_number_used_once", ans("2 * 12"), [2, 2, 12], 24, "wrong_numbers"),
    ("digits_split_differently", ans("64"), [6, 4], 64, "wrong_numbers"),
    ("not_equal_plain", ans("6 + 4"), [6, 4], 24, "not_equal"),
    ("not_equal_off_by_fraction", ans("7 / 2 * 7"), [7, 2, 7], 24, "not_equal"),
    ("div_by_zero", ans("6 / (4 - 4) * 3"), [6, 4, 4, 3], 24, "div_by_zero"),
    ("div_by_zero_nested_fraction", ans("3 / (2 / 2 - 1)"), [3, 2, 2, 1], 24, "div_by_zero"),
    ("power_operator_abuse", ans("9**9**9**9"), [9, 9, 9, 9], 24, "parse_error"),
    ("power_with_right_numbers", ans("2**3 * 3"), [2, 3, 3], 24, "parse_error"),
    ("power_spaced_out", ans("2 * * 3 * 3"), [2, 3, 3], 24, "parse_error"),
    ("floor_division", ans("49 // 2"), [49, 2], 24, "parse_error"),
    ("decimal_literal", ans("2.5 * 4"), [2, 5, 4], 10, "parse_error"),
    ("leading_zero_literal", ans("06 * 4"), [6, 4], 24, "parse_error"),
    ("function_call_injection", ans("__import__('os').system('ls')"), [6, 4], 24, "parse_error"),
    ("builtin_abs", ans("abs(4 - 28)"), [4, 28], 24, "parse_error"),
    ("implicit_multiplication", ans("6(4)"), [6, 4], 24, "correct"),  # issue 26 class 4/5: a grader reads it so
    ("juxtaposed_numbers", ans("6 4"), [6, 4], 24, "parse_error"),
    ("unbalanced_parentheses", ans("(6 * 4"), [6, 4], 24, "parse_error"),
    ("square_brackets", ans("[6 * 4]"), [6, 4], 24, "correct"),  # issue 26 class 4/5: a grader reads it so
    ("markdown_backticks", ans("`6 * 4`"), [6, 4], 24, "parse_error"),
    ("prose_in_answer", ans("The answer is 6 * 4"), [6, 4], 24, "parse_error"),
    ("fullwidth_digits", ans("６ * 4"), [6, 4], 24, "correct"),  # issue 26 class 4/5: a grader reads it so
    ("x_letter_as_times", ans("6 x 4"), [6, 4], 24, "correct"),  # issue 26 class 4/5: a grader reads it so
    ("unary_minus_refused", ans("-(2 - 8) * 4"), [2, 8, 4], 24, "unary_minus"),
    ("unary_plus_allowed", ans("+(8 - 2) * 4"), [2, 8, 4], 24, "correct"),
    ("negative_target", ans("2 - 5"), [2, 5], -3, "correct"),
    ("big_product_exact", ans("100 * 75 * 50 * 25"), [100, 75, 50, 25], 9375000, "correct"),
    ("redundant_parentheses", ans("((((6)))) * (((4)))"), [6, 4], 24, "correct"),
    ("answer_inside_think_only", "<think>maybe <answer>6*4</answer> works</think>\nI am not sure.", [6, 4], 24,
     "no_answer"),
    ("answer_after_think_wins_over_inside", "<think><answer>6+4</answer></think>\n<answer>6*4</answer>", [6, 4], 24,
     "correct"),
    # several different blocks are a hedge (issue 26), even after a correction word
    ("two_answers_fixed_is_a_hedge", ans("6 + 4") + "\nWait, fix:\n<answer>6 * 4</answer>", [6, 4], 24, "ambiguous"),
    ("two_answers_is_a_hedge", ans("6 * 4") + "\nHmm:\n<answer>6 + 4</answer>", [6, 4], 24, "ambiguous"),
    ("same_answer_twice_counts", ans("6 * 4") + "\nSo:\n<answer>6*4 = 24</answer>", [6, 4], 24, "correct"),
    ("no_answer_tags", THINK + "6 * 4 = 24", [6, 4], 24, "no_answer"),
    ("unclosed_answer_tag", THINK + "<answer>6 * 4", [6, 4], 24, "no_answer"),
    ("empty_answer", ans("   "), [6, 4], 24, "no_answer"),
    ("uppercase_tags_not_recognised", THINK + "<Answer>6 * 4</Answer>", [6, 4], 24, "no_answer"),
    ("prefilled_think_completion", "6*4 is 24.</think>\n<answer>6 * 4</answer>", [6, 4], 24, "correct"),
    ("no_think_block_at_all", "<answer>6 * 4</answer>", [6, 4], 24, "correct"),
    ("numbers_as_json_string", ans("6 * 4"), "[6, 4]", 24, "correct"),
    ("numbers_as_list_of_strings", ans("6 * 4"), ["6", "4"], "24", "correct"),
    ("numbers_as_comma_string", ans("6 * 4"), "6, 4", 24, "correct"),
    ("numbers_as_tuple_target_float", ans("6 * 4"), (6, 4), 24.0, "correct"),
    ("bad_gold_target_text", ans("6 * 4"), [6, 4], "twenty-four", "bad_gold"),
    ("bad_gold_target_none", ans("6 * 4"), [6, 4], None, "bad_gold"),
    ("bad_gold_numbers_text", ans("6 * 4"), "six and four", 24, "bad_gold"),
    ("bad_gold_numbers_empty", ans("6 * 4"), [], 24, "bad_gold"),
    ("bad_gold_numbers_fractional", ans("6 * 4"), [6, 4.5], 24, "bad_gold"),
    ("bad_gold_numbers_negative", ans("6 * 4"), [6, -4], 24, "bad_gold"),
    ("bad_gold_target_bool", ans("6 * 4"), [6, 4], True, "bad_gold"),
]


@pytest.mark.parametrize("completion,numbers,target,reason", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_countdown_table(completion, numbers, target, reason):
    v = countdown(completion, numbers=numbers, target=target)
    assert v.reason == reason, v
    assert v.score == (1.0 if reason == "correct" else 0.0)
    if reason == "bad_gold":
        assert v.correct is None and not v.scored
    else:
        assert v.correct is (reason == "correct")


# Unary minus manufactures numbers the task did not give; policies find it (e.g. target 24 from
# [3, 5, 2, 14]: "-3 + 5 * 2 + 14 + 3" needs a 3 twice; "-(3 - 5) ..." flips a difference for free).
UNARY_MINUS = [
    (THINK + "<answer>-3 + 5 * 2 + 14 + 3</answer>", [3, 5, 2, 14, 3], 24),
    ("<think>\n50 - 75 = -25, and -25 + 49 = 24.\n</think>\n<answer>-(50 - 75) - 1</answer>", [50, 75, 1], 24),
    (THINK + "<answer>8 - -16</answer>", [8, 16], 24),
    (THINK + "<answer>30 +- 6</answer>", [30, 6], 24),
    (THINK + "<answer>--24 * 1</answer>", [24, 1], 24),
    ("<think>\nTry 4 * 7 = 28, minus 4 is 24.\n</think>\n<answer>( -4 ) + 4 * 7</answer>", [4, 4, 7], 24),
    (THINK + "<answer>\\left(-2\\right) \\times (-12)</answer>", [2, 12], 24),
    (THINK + "<answer>−6 × −4</answer>", [6, 4], 24),
]


@pytest.mark.parametrize("completion,numbers,target", UNARY_MINUS)
def test_unary_minus_is_refused(completion, numbers, target):
    v = countdown(completion, numbers=numbers, target=target)
    assert (v.correct, v.score, v.reason) == (False, 0.0, "unary_minus"), v


def test_binary_minus_is_still_fine():
    assert countdown(THINK + "<answer>30 - 6</answer>", numbers=[30, 6], target=24).correct is True
    assert countdown(THINK + "<answer>(2 - 8) * (1 - 5)</answer>", numbers=[2, 8, 1, 5], target=24).correct


def test_ids_unique():
    assert len({c[0] for c in CASES}) == len(CASES)


def test_extracted_is_the_expression():
    v = countdown(ans(" (1 + 3) × 6 = 24 "), numbers=[1, 3, 6], target=24)
    assert v.extracted == "(1 + 3) * 6 = 24"
    assert v.details["value"] == "24" and v.details["used"] == [1, 3, 6]


def test_wrong_numbers_details_say_what_was_used():
    v = countdown(ans("6 * 6 - 12"), numbers=[6, 2, 12], target=24)
    assert v.details["used"] == [6, 6, 12] and v.details["numbers"] == [2, 6, 12]


def test_unclosed_answer_is_flagged():
    v = countdown(THINK + "<answer>6 * 4", numbers=[6, 4], target=24)
    assert v.details == {"unclosed": True}


@pytest.mark.parametrize("completion,reason", [
    ("6 * 4", "correct"),
    ("  (6 ×4) = 24\n", "correct"),
    ("<answer>6*4</answer>", "parse_error"),  # bare means the whole text is the expression
    ("6 + 4", "not_equal"),
], ids=["bare_plain", "bare_unicode_eq_tail", "bare_with_tags_is_not_an_expression", "bare_wrong"])
def test_bare_mode(completion, reason):
    assert countdown(completion, numbers=[6, 4], target=24, bare=True).reason == reason


def test_registered_spec_and_option():
    spec = get_verifier("countdown")
    assert spec.fields == ("numbers", "target")
    assert spec(ans("6*4"), numbers=[6, 4], target=24).correct is True
    assert pickle.loads(pickle.dumps(spec))(ans("6*4"), numbers=[6, 4], target=24).correct is True


def test_non_string_completion_is_no_answer():
    v = countdown(None, numbers=[6, 4], target=24)
    assert v.reason == "no_answer" and v.correct is False


class _Tensorish:
    """Stands in for a torch tensor / numpy array: has .tolist()."""

    def __init__(self, value):
        self.value = value

    def tolist(self):
        return self.value


def test_tensor_like_reference_values():
    v = countdown(ans("6*4"), numbers=_Tensorish([6, 4]), target=_Tensorish(24))
    assert v.correct is True


@pytest.mark.parametrize("raw,expected", [
    ([3, 5], [3, 5]), ("[3, 5]", [3, 5]), ("3 5", [3, 5]), (["3", " 5"], [3, 5]), ((3.0, 5), [3, 5]),
    ("[]", None), ([True, 2], None), ("3, x", None), (None, None),
], ids=["list", "json", "spaces", "strings", "floats_integral", "empty", "bool", "junk", "none"])
def test_parse_numbers(raw, expected):
    assert parse_numbers(raw) == expected


@pytest.mark.parametrize("raw,ok", [(24, True), ("24", True), (" −3 ", True), (24.0, True), ("1/2", True),
                                    (float("nan"), False), (float("inf"), False), ("x", False), ([24], True)],
                         ids=["int", "str", "unicode_minus", "float", "fraction_str", "nan", "inf", "junk",
                              "one_element_list"])
def test_parse_target(raw, ok):
    assert (parse_target(raw) is not None) is ok


def test_extract_answer_uses_last_block_after_think():
    assert extract_answer("<answer>a</answer> <answer>b</answer>") == ("b", False)
    assert extract_answer("<think><answer>a</answer></think>") == (None, False)
    assert extract_answer("</answer><answer>") == (None, True)


# --- adversarial inputs: a verdict comes back fast (generous bound; the benchmark measures real latency)
BIG = "7" * 100_000
ADVERSARIAL = [
    ("power_tower", ans("9**9**9**9"), [9, 9, 9, 9], "parse_error"),
    ("power_tower_bare_no_tags", "9**9**9**9**9**9", [9] * 6, "no_answer"),
    ("literal_100k_digits", ans(BIG), [7, 7], "too_long"),
    ("literal_100k_digits_bare", BIG, [7, 7], "too_long", True),
    ("power_tower_bare", "9**9**9**9", [9, 9, 9, 9], "parse_error", True),
    ("nesting_10k_bare", "(" * 10_000 + "6*4" + ")" * 10_000, [6, 4], "too_long", True),
    ("literal_500_digits_not_given", ans("7" * 500 + " * 1"), [7, 1], "wrong_numbers"),
    ("literal_900_digit_product", ans("9" * 450 + " * " + "9" * 440), [3, 8], "wrong_numbers"),
    ("nesting_10k_parentheses", ans("(" * 10_000 + "6 * 4" + ")" * 10_000), [6, 4], "too_long"),
    ("nesting_400_parentheses", ans("(" * 400 + "6 * 4" + ")" * 400), [6, 4], "parse_error"),
    ("sign_run_900_unary_minus", ans("-" * 900 + "6 * 4"), [6, 4], "parse_error"),
    ("sign_run_50_unary_minus", ans("-" * 50 + "6 * 4"), [6, 4], "unary_minus"),
    ("long_left_chain_500_terms", ans("+".join(["1"] * 499)), [1] * 499, "not_equal"),
    ("one_mb_prose_then_answer", "x " * 500_000 + "</think>\n<answer>6 * 4</answer>", [6, 4], "correct"),
    ("one_mb_prose_no_answer", "word " * 200_000, [6, 4], "no_answer"),
    ("one_mb_of_open_tags", "<answer>" * 130_000, [6, 4], "no_answer"),
    ("one_mb_of_answer_blocks", "<answer>1</answer>" * 60_000, [6, 4], "wrong_numbers"),
    ("one_mb_inside_answer", "<answer>" + "6*4+" * 250_000 + "0</answer>", [6, 4], "too_long"),
    ("many_numbers_long_chain", ans("+".join(["1"] * 400)), [1] * 400, "correct"),
]


@pytest.mark.parametrize("completion,numbers,reason,bare", [(c + (False,))[1:5] for c in ADVERSARIAL],
                         ids=[c[0] for c in ADVERSARIAL])
def test_adversarial_inputs_return_fast(completion, numbers, reason, bare):
    target = 400 if len(numbers) == 400 else 24
    start = time.perf_counter()
    v = countdown(completion, numbers=numbers, target=target, bare=bare)
    elapsed = time.perf_counter() - start
    assert v.reason == reason, v.reason
    assert elapsed < 1.0, f"took {elapsed:.3f}s"
