"""Regression table for the gsm8k verifier (strict and flexible modes) from realistic completions."""
from __future__ import annotations

import time

import pytest

from reasonkit.verifiers import get_verifier, parse_gsm8k_gold, verify_gsm8k
from reasonkit.verifiers.base import BAD_GOLD, CORRECT, NO_ANSWER, NOT_EQUAL

# (id: why the case exists, completion, gold, strict reason, flexible reason)
CASES = [
    ("hash_plain", "Natalia sold 48/2 = 24 clips in May.\nShe sold 48+24 = 72 clips.\n#### 72", "72", CORRECT, CORRECT),
    ("hash_commas", "Total is 1000 dollars.\n#### 1,000", "1000", CORRECT, CORRECT),
    ("gold_commas", "#### 1000", "#### 1,000", CORRECT, CORRECT),
    ("gold_solution_text", "The answer is 18.", "She makes 9 * 2 = $<<9*2=18>>18.\n#### 18", CORRECT, CORRECT),
    ("dollar_sign", "She makes $18 every day.\n#### $18", "18", CORRECT, CORRECT),
    ("dollar_with_cents", "The answer is $18.00.", "18", CORRECT, CORRECT),
    ("decimal_zeros", "#### 18.00", "18", CORRECT, CORRECT),
    ("decimal_value", "The answer is 2.5", "2.5", CORRECT, CORRECT),
    ("leading_dot_decimal", "The answer is .5", "0.5", CORRECT, CORRECT),
    ("negative", "The temperature drops to -5 degrees.\n#### -5", "-5", CORRECT, CORRECT),
    ("unicode_minus", "The answer is \u22125", "-5", CORRECT, CORRECT),
    ("negative_gold_positive_pred", "#### 5", "-5", NOT_EQUAL, NOT_EQUAL),
    ("fraction_pred", "The answer is 3/4", "0.75", CORRECT, CORRECT),
    ("latex_frac_boxed", "So \\boxed{\\frac{3}{4}}", "0.75", CORRECT, CORRECT),
    ("dfrac_boxed", "So $\\boxed{\\dfrac{1}{2}}$", "0.5", CORRECT, CORRECT),
    ("percent_matches_plain_gold", "The discount is 50%.\n#### 50%", "50", CORRECT, CORRECT),
    ("percent_latex", "The answer is $25\\%$.", "25", CORRECT, CORRECT),
    ("point_five_not_fifty", "The answer is 0.5", "50", NOT_EQUAL, NOT_EQUAL),
    ("units_dollars", "The answer is 18 dollars.", "18", CORRECT, CORRECT),
    ("units_cm", "#### 5 cm", "5", CORRECT, CORRECT),
    ("trailing_period", "Therefore, the answer is 72.", "72", CORRECT, CORRECT),
    ("space_thousands", "#### 1 000", "1000", CORRECT, CORRECT),
    ("latex_thousands", "The answer is $\\boxed{1{,}000}$", "1000", CORRECT, CORRECT),
    ("multiple_hash_last_wins", "#### 5\nWait, I made a mistake.\n#### 7", "7", CORRECT, CORRECT),
    ("answer_tag_over_hash", "<think>48+24</think><answer>72</answer>\n#### 5", "72", CORRECT, CORRECT),
    ("answer_tag_last_wins", "<answer>3</answer> no wait <answer>4</answer>", "4", CORRECT, CORRECT),
    ("answer_tag_equation", "<answer>48 + 24 = 72</answer>", "72", CORRECT, CORRECT),
    ("answer_tag_sentence", "<answer>She sold 72 clips.</answer>", "72", CORRECT, CORRECT),
    ("answer_tag_no_number_falls_back", "<answer>seventy-two</answer>\n#### 72", "72", CORRECT, CORRECT),
    ("unclosed_answer_tag", "<answer>72", "72", NO_ANSWER, CORRECT),
    ("hash_over_boxed", "\\boxed{5}\n#### 6", "6", CORRECT, CORRECT),
    ("boxed_over_answer_is", "The answer is 5. Final: \\boxed{6}", "6", CORRECT, CORRECT),
    ("boxed_with_text_unit", "\\boxed{18 \\text{ dollars}}", "18", CORRECT, CORRECT),
    ("boxed_with_dollar", "\\boxed{\\$18}", "18", CORRECT, CORRECT),
    ("the_answer_is_case", "THE ANSWER IS 12", "12", CORRECT, CORRECT),
    ("final_answer_colon", "Final answer: 42", "42", CORRECT, CORRECT),
    ("answer_line", "Work...\nAnswer: 42", "42", CORRECT, CORRECT),
    ("bold_answer_line", "Work...\n**Answer:** 42", "42", CORRECT, CORRECT),
    ("the_final_answer_is", "The final answer is $\\boxed{42}$.", "42", CORRECT, CORRECT),
    ("answer_is_then_equation", "The answer is 6 * 7 = 42", "42", CORRECT, CORRECT),
    ("wrong_answer", "The answer is 71.", "72", NOT_EQUAL, NOT_EQUAL),
    ("no_marker_flexible_only", "So she has 24 + 48 = 72 clips in total", "72", NO_ANSWER, CORRECT),
    ("flexible_last_number_wrong", "72 clips, then she lost 2", "72", NO_ANSWER, NOT_EQUAL),
    ("no_number_at_all", "I cannot solve this problem.", "72", NO_ANSWER, NO_ANSWER),
    ("empty_completion", "", "72", NO_ANSWER, NO_ANSWER),
    ("binary_minus_not_sign", "So 10-5", "5", NO_ANSWER, CORRECT),
    ("list_commas_not_thousands", "The numbers are 1,2,3", "3", NO_ANSWER, CORRECT),
    ("huge_number_not_converted", "#### " + "9" * 100_000, "72", NOT_EQUAL, NOT_EQUAL),
    ("unicode_lowercase_keeps_offsets", "\u0130\u0130 the answer is 5 \u0130", "5", CORRECT, CORRECT),
    ("answer_is_without_the", "My answer is 9", "9", CORRECT, CORRECT),
    ("en_dash_minus", "The answer is \u20133", "-3", CORRECT, CORRECT),
    ("bad_gold_text", "#### 72", "seventy-two", BAD_GOLD, BAD_GOLD),
    ("bad_gold_two_numbers", "#### 72", "3 and 4", BAD_GOLD, BAD_GOLD),
]


@pytest.mark.parametrize("completion,gold,strict_reason,flex_reason",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_gsm8k_table(completion, gold, strict_reason, flex_reason):
    strict = verify_gsm8k(completion, gold)
    flexible = verify_gsm8k(completion, gold, mode="flexible")
    assert strict.reason == strict_reason, strict
    assert flexible.reason == flex_reason, flexible
    for v, reason in ((strict, strict_reason), (flexible, flex_reason)):
        assert v.correct is (None if reason == BAD_GOLD else reason == CORRECT)
        assert v.score == (1.0 if reason == CORRECT else 0.0)
    # one call reports both modes
    if strict_reason != BAD_GOLD:
        assert strict.details["flexible"]["reason"] == flex_reason
        assert flexible.details["strict"]["reason"] == strict_reason


def test_registered_modes_and_fields():
    strict, flexible = get_verifier("gsm8k"), get_verifier("gsm8k_flexible")
    assert strict.fields == flexible.fields == ("answer",)
    text = "so 24 + 48 = 72"
    assert strict(text, answer="72").correct is False
    assert flexible(text, answer="72").correct is True


def test_extracted_and_method_details():
    v = verify_gsm8k("<answer>$1,000</answer>", "1000")
    assert v.extracted == "$1,000"
    assert v.details["method"] == "answer_tag"
    assert v.details["value"] == "1000" and v.details["gold"] == "1000"


@pytest.mark.parametrize("gold,value", [("72", 72), ("#### 1,000", 1000), ("$18", 18), ("-5", -5),
                                        ("\u22125", -5), ("0.75", 0.75), ("3/4", 0.75), (72, 72), (2.5, 2.5)],
                         ids=["plain", "hash_commas", "dollar", "negative", "unicode_minus", "decimal",
                              "fraction", "int_type", "float_type"])
def test_gold_parsing(gold, value):
    assert parse_gsm8k_gold(gold) == pytest.approx(value)


def test_bad_mode_is_a_programmer_error():
    with pytest.raises(ValueError, match="mode"):
        verify_gsm8k("#### 1", "1", mode="lenient")


def test_non_string_completion_is_a_verdict():
    assert verify_gsm8k(None, "1").reason == NO_ANSWER


@pytest.mark.parametrize("text", ["\\boxed{" * 100_000, "<answer>" * 100_000, "{" * 1_000_000, "1" * 1_000_000,
                                  "1," * 500_000, "The answer is " * 50_000, "#### " * 200_000],
                         ids=["nested_boxed", "repeated_tags", "braces", "megadigit", "comma_chain",
                              "repeated_marker", "repeated_hash"])
def test_pathological_inputs_fast(text):
    for mode in ("strict", "flexible"):
        t = time.perf_counter()
        v = verify_gsm8k(text, "5", mode=mode)
        assert time.perf_counter() - t < 1.0
        assert v.correct is False
