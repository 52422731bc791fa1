"""Regression table for the gsm8k verifier (strict and flexible modes) from realistic completions."""
from __future__ import annotations

import time

import pytest

from reasonkit.verifiers import get_verifier, parse_gsm8k_gold, verify_gsm8k
from reasonkit.verifiers._final import ascii_lower
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
    # two different final claims (tag 72, #### 5) are stuffing, not a tag that outranks a hash
    ("answer_tag_and_hash_disagree", "<think>48+24</think><answer>72</answer>\n#### 5", "72", "ambiguous", "ambiguous"),
    ("answer_tag_last_wins", "<answer>3</answer> no wait <answer>4</answer>", "4", CORRECT, CORRECT),
    ("answer_tag_equation", "<answer>48 + 24 = 72</answer>", "72", CORRECT, CORRECT),
    ("answer_tag_sentence", "<answer>She sold 72 clips.</answer>", "72", CORRECT, CORRECT),
    ("answer_tag_no_number_falls_back", "<answer>seventy-two</answer>\n#### 72", "72", CORRECT, CORRECT),
    ("unclosed_answer_tag", "<answer>72", "72", NO_ANSWER, CORRECT),
    # two different final claims with no correction between them are stuffing (issue 26, class 3)
    ("boxed_and_hash_disagree", "\\boxed{5}\n#### 6", "6", "ambiguous", "ambiguous"),
    ("answer_is_and_boxed_disagree", "The answer is 5. Final: \\boxed{6}", "6", "ambiguous", "ambiguous"),
    ("corrected_claim_wins", "The answer is 5. Wait, I misread the question. Final: \\boxed{6}", "6", CORRECT, CORRECT),
    ("boxed_with_text_unit", "\\boxed{18 \\text{ dollars}}", "18", CORRECT, CORRECT),
    ("boxed_with_dollar", "\\boxed{\\$18}", "18", CORRECT, CORRECT),
    ("the_answer_is_case", "THE ANSWER IS 12", "12", CORRECT, CORRECT),
    ("final_answer_colon", "Final answer: 42", "42", CORRECT, CORRECT),
    ("answer_line", "Work...\nAnswer: 42", "42", CORRECT, CORRECT),
    ("bold_answer_line", "Work...\n**Answer:** 42", "42", CORRECT, CORRECT),
    ("the_final_answer_is", "The final answer is $\\boxed{42}$.", "42", CORRECT, CORRECT),
    ("answer_is_then_equation", "The answer is 6 * 7 = 42", "42", CORRECT, CORRECT),
    ("wrong_answer", "The answer is 71.", "72", NOT_EQUAL, NOT_EQUAL),
    ("no_marker_last_sentence", "So she has 24 + 48 = 72 clips in total", "72", CORRECT, CORRECT),
    ("no_marker_flexible_only", "Each box costs $3 and 4 boxes cost $12", "12", NO_ANSWER, CORRECT),
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
    text = "Each box costs $3 and 4 boxes cost $12"  # several numbers in the last sentence, no '='
    assert strict(text, answer="12").correct is False
    assert flexible(text, answer="12").correct is True


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
        t = time.process_time()  # CPU time: a busy shared host does not fail it
        v = verify_gsm8k(text, "5", mode=mode)
        assert time.process_time() - t < 1.0
        assert v.correct is False


# --- anti-hacking regression blocks --------------------------------------------------------------
# Completions written the way instruct models and GRPO policies write them. (completion, gold)

HEDGED = [
    ("<think>\nShe bakes 3 trays of 4 cookies, maybe 2 more trays.\n</think>\n<answer>12 or 20</answer>", "12"),
    ("Let's estimate. Each bus holds 40 people, give or take.\n#### 40 ± 5", "40"),
    ("The number of marbles is between 12 and 14, so the answer is between 12 and 14.", "12"),
    ("So either 12 or 14 apples are left.\nThe answer is either 12 or 14.", "14"),
    ("<think>\n7 * 2 = 14, or 6 * 2 = 12 if one is eaten.\n</think>\n<answer>12/14</answer>", "12"),
    ("The trip takes about 3 to 4 hours.\nFinal answer: 3 to 4", "3"),
    ("Total cost: $\\boxed{40 \\pm 5}$ dollars.", "40"),
    ("Answer: 18 dollars, or maybe 20 dollars", "18"),
    ("So she needs 5–6 more boxes.\n#### 5–6", "5"),
    ("He will read 10-12 pages.\n#### 10-12", "10"),
    ("The answer is 40 +/- 5.", "40"),
]


@pytest.mark.parametrize("completion,gold", HEDGED)
def test_hedged_answers_are_wrong_in_both_modes(completion, gold):
    for mode in ("strict", "flexible"):
        v = verify_gsm8k(completion, gold, mode=mode)
        assert (v.correct, v.score, v.reason) == (False, 0.0, "ambiguous"), (mode, v)
        assert len(v.details["candidates"]) == 2


NOT_HEDGED = [  # one candidate, said twice or with other quantities around it
    ("The answer is 12 (or 12.0 if you count decimals).", "12"),
    ("<answer>She needs 3 boxes to hold 36 eggs</answer>", "3"),
    ("So 10-5 = 5 apples remain.\n#### 5", "5"),
    ("#### 3/4", "0.75"),
    ("The answer is 120/2 = 60.", "60"),
]


@pytest.mark.parametrize("completion,gold", NOT_HEDGED)
def test_single_answers_are_not_hedges(completion, gold):
    assert verify_gsm8k(completion, gold).reason == CORRECT


SCIENTIFIC = [  # (completion, gold, right?)
    ("The colony grows to 2.5e2 cells.\n#### 2.5e2", "250", True),
    ("The colony grows to 2.5e2 cells.\n#### 2.5e2", "2.5", False),  # never the mantissa
    ("<answer>4E5</answer>", "400000", True),
    ("```python\nprint(3 * 0.0005)\n```\nOutput: 0.0015000000000000002\nThe answer is 1.5e-3", "0.0015", True),
    ("The distance is $2.5 \\times 10^{3}$ meters.\n#### 2.5 \\times 10^3", "2500", True),
    ("So the population is 1.2 × 10^6.\nThe answer is 1.2 × 10^6.", "1.2", False),
    ("<answer>1e999</answer>", "1", False),
    ("The result printed was 7.2e1, so\n#### 7.2e1", "72", True),
]


@pytest.mark.parametrize("completion,gold,right", SCIENTIFIC)
def test_scientific_notation_is_read_whole(completion, gold, right):
    for mode in ("strict", "flexible"):
        assert verify_gsm8k(completion, gold, mode=mode).correct is right


SPELLINGS = [  # number spellings models really write; gold, both modes right
    ("The total is $1{,}250$ dollars.", "1250"),
    ("So the farm has $1\\,250$ chickens in all.", "1250"),
    ("Hence she saved $\\$1\\!250$.", "1250"),
    ("<think>He loses 7 euros.</think>\n<answer>-€7</answer>", "-7"),
    ("Her balance changes by -$7 in total.\n#### -$7", "-7"),
    ("The discount is 35 % of the price.\nThe answer is 35 %.", "35"),
    ("<answer>$18.00</answer>", "18"),
    ("Therefore the answer is 72 clips.", "72"),
    ("#### 5 cm", "5"),
    ("\\boxed{1{,}250 \\text{ dollars}}", "1250"),
]


@pytest.mark.parametrize("completion,gold", SPELLINGS)
def test_number_spellings(completion, gold):
    for mode in ("strict", "flexible"):
        v = verify_gsm8k(completion, gold, mode=mode)
        assert v.reason == CORRECT, (mode, v)


def test_latex_separator_is_not_read_as_its_last_group_in_flexible_mode():
    text = "She earns 50 dollars a day for 25 days, which is $1{,}250$ in total"
    v = verify_gsm8k(text, "1250", mode="flexible")
    assert v.correct is True and v.details["value"] == "1250", v


LAST_SENTENCE = [  # instruct models end with a sentence, no marker: the headline verifier reads it
    ("The meal is $35 and the tip is $6, so the bill comes to $41.00.", "41", CORRECT),
    ("Janet sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18 every day.", "18", CORRECT),
    ("First, 48 / 2 = 24 clips in May.\nIn total, Natalia sold 48 + 24 = 72 clips.", "72", CORRECT),
    ("It takes 2 bolts of blue fiber and half that much white fiber. So it takes 3 bolts in total.", "3",
     CORRECT),
    ("<think>\n5 * 4 = 20 and 20 - 2 = 18.\n</think>\nShe has 18 apples left.", "18", CORRECT),
    ("So he has 20 apples left.", "18", NOT_EQUAL),
    ("She buys 4 boxes at $3 each and pays $12", "12", NO_ANSWER),  # several numbers, no '=': flexible only
    ("<think>\n5 * 4 = 20, so 20 apples", "20", "unclosed_reasoning"),  # reasoning never closed
    ("<think>ok</think>\n<answer>\nShe has 18 apples.", "18", NO_ANSWER),  # unclosed answer tag
]


@pytest.mark.parametrize("completion,gold,reason", LAST_SENTENCE)
def test_last_sentence_policy(completion, gold, reason):
    v = verify_gsm8k(completion, gold)
    assert v.reason == reason, v
    if reason not in (NO_ANSWER, "unclosed_reasoning"):
        assert v.details["method"] == "last_sentence"


def test_modes_differ_only_where_the_docstring_says():
    # strict and flexible agree whenever strict finds an answer
    for text, gold in [(c[0], c[1]) for c in LAST_SENTENCE + HEDGED + SPELLINGS[:3]]:
        s, f = verify_gsm8k(text, gold), verify_gsm8k(text, gold, mode="flexible")
        if s.reason != NO_ANSWER:
            assert (s.correct, s.reason, s.extracted) == (f.correct, f.reason, f.extracted), text


RUN_ON = [  # answers, then invents a new few-shot block with its own answer: judged on the first
    ("Natalia sold 48 + 24 = 72 clips.\n#### 72\n\nQuestion: Weng earns $12 an hour. How much did she earn "
     "for 50 minutes?\nAnswer: 12 / 60 * 50 = 10\n#### 10", "72"),
    ("The answer is 18.\n\nQ: A robe takes 2 bolts of blue fiber. How many bolts in total?\nA: The answer is 3.",
     "18"),
    ("<think>9 * 2 = 18</think>\n<answer>18</answer><|im_end|>\n<|im_start|>user\nNext question: 3 + 4?"
     "<|im_end|>\n<|im_start|>assistant\n<think>easy</think>\n<answer>7</answer>", "18"),
    ("So she makes $18 every day.\nQuestion 2: James runs 3 sprints of 60 meters. How far?\n"
     "3 * 60 = 180\n#### 180", "18"),
    ("#### 5<|endoftext|>Problem: What is 2 + 2?\nSolution: #### 4", "5"),
    ("The final answer is 42.\n\n### Question:\nTom has 3 cats. How many legs?\n### Answer:\n#### 12", "42"),
]


@pytest.mark.parametrize("completion,gold", RUN_ON)
def test_run_on_block_is_not_the_answer(completion, gold):
    for mode in ("strict", "flexible"):
        v = verify_gsm8k(completion, gold, mode=mode)
        assert v.reason == CORRECT, (mode, v)
        assert v.details["cut_at"]


CHAT_TOKENS = ["<|im_end|>", "<|endoftext|>", "<|end_of_text|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "</s>",
               "<|im_start|>", "<|user|>", "[INST]", "<start_of_turn>"]


@pytest.mark.parametrize("token", CHAT_TOKENS)
def test_every_chat_template_token_ends_the_reply(token):
    # the token scan is skipped when none of the tokens' parts occurs: each token must still cut
    v = verify_gsm8k(f"Tom has 18 apples.\n#### 18{token}\n#### 5", "18")
    assert (v.reason, v.details["cut_at"]) == (CORRECT, token)


@pytest.mark.parametrize("text,lowered", [
    ("The ANSWER Is 18", "the answer is 18"),
    ("\u0130S \u212a \u00c9A", "\u0130s \u212a \u00c9a"),  # only A-Z are lowered: offsets and other letters kept
    ("\ud800A\u00e9Z", "\ud800a\u00e9z"),  # a lone surrogate survives
])
def test_ascii_lower_lowers_only_ascii_letters(text, lowered):
    assert ascii_lower(text) == lowered and len(ascii_lower(text)) == len(text)


def test_run_on_without_an_answer_before_it_is_no_answer():
    text = "Let me see.\n\nQuestion: What is 2 + 2?\nAnswer: #### 4"
    assert verify_gsm8k(text, "4").reason == NO_ANSWER


FLOATS = [  # tool output: relative error < 1e-9 is right, larger is wrong
    ("```python\nprint(0.1 + 0.2)\n```\n0.30000000000000004\n#### 0.30000000000000004", "0.3", True),
    ("The average is 72.00000000000001.\n#### 72.00000000000001", "72", True),
    ("<answer>33.333333333333336</answer>", "33.333333333333333", True),
    ("Using the calculator: 1.1 * 3 = 3.3000000000000003\nThe answer is 3.3000000000000003", "3.3", True),
    ("<answer>72.001</answer>", "72", False),
    ("<answer>0.3001</answer>", "0.3", False),
    ("#### 1e-12", "0", False),
]


@pytest.mark.parametrize("completion,gold,right", FLOATS)
def test_float_artifacts(completion, gold, right):
    for mode in ("strict", "flexible"):
        assert verify_gsm8k(completion, gold, mode=mode).correct is right


# gsm8k_computed (anti-hacking): completions of the GRPO re-run on rg:basic_arithmetic (2026-12-07), held-out,
# after the pre-fill "<think>\n</think>\n<answer>"; gsm8k paid every one of the first five.
COMPUTED_TABLE = [
    # (completion after the pre-fill, gold, gsm8k correct, gsm8k_computed correct, gsm8k_computed reason)
    (" -1 / 1\n</answer>", "-1", True, False, "unevaluated"),       # "Calculate -1 / 1."
    (" -9 / 9\n</answer>", "-1", True, False, "unevaluated"),       # "Calculate ( -9 / 9 )."
    ("5 - 3</answer>", "2", True, False, "unevaluated"),            # "Calculate 5 - 3."
    (" -8 - 5\n</answer>", "-13", True, False, "unevaluated"),      # "Calculate -8 + -5." rewritten
    (" -9 - 7\n</answer>", "-16", True, False, "unevaluated"),
    ("5 - 3 = 2\n</answer>", "2", True, True, "correct"),          # the sum written out, then its value
    ("-6 * 5 = -30 The final answer is -30.", "-30", True, True, "correct"),
    ("-5 * 9 = 45\n</answer>", "-45", False, False, "not_equal"),
    (" 3/4\n</answer>", "3/4", True, True, "correct"),              # a fraction in lowest terms is a number
    (" 2 1/2\n</answer>", "2.5", True, True, "correct"),            # a mixed number too
]


@pytest.mark.parametrize("completion, gold, plain, computed, reason", COMPUTED_TABLE)
def test_gsm8k_computed_refuses_the_question_given_back(completion, gold, plain, computed, reason):
    from reasonkit.verifiers import get_verifier

    text = "<think>\n</think>\n<answer>" + completion
    assert get_verifier("gsm8k")(text, answer=gold).correct is plain
    v = get_verifier("gsm8k_computed")(text, answer=gold)
    assert (v.correct, v.reason) == (computed, reason)


def test_gsm8k_computed_on_a_gsm8k_reply_left_as_arithmetic():
    from reasonkit.verifiers import get_verifier

    reply = "She had 20 eggs and gave away 2, so the answer is 20 - 2."
    assert get_verifier("gsm8k")(reply, answer="18").correct is True
    assert get_verifier("gsm8k_computed")(reply, answer="18").reason == "unevaluated"
    assert get_verifier("gsm8k_computed")("So she has 20 - 2 = 18 eggs. #### 18", answer="18").correct is True
