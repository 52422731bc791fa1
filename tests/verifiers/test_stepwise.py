"""Regression table for the stepwise arithmetic verifier from realistic reasoning text."""
from __future__ import annotations

import time

import pytest

from reasonkit.verifiers import find_steps, get_verifier, verify_stepwise
from reasonkit.verifiers.stepwise import NO_STEPS, UNVERIFIABLE_STEPS, WRONG_STEPS

# (id: why the case exists, completion, n_correct, n_steps)
CASES = [
    ("single_step", "She sold 48 + 24 = 72 clips.", 1, 1),
    ("wrong_step", "She sold 48 + 24 = 73 clips.", 0, 1),
    ("precedence", "2 + 3 * 4 = 14", 1, 1),
    ("precedence_wrong_left_to_right", "2 + 3 * 4 = 20", 0, 1),
    ("chain_two_steps", "2 + 3 * 4 = 2 + 12 = 14", 2, 2),
    ("parentheses_and_div_sign", "(12 + 8) \u00f7 4 = 5", 1, 1),
    ("times_sign", "6 \u00d7 7 = 42", 1, 1),
    ("x_as_times", "$5 x 3 = $15", 1, 1),
    ("x_glued", "5x3=15", 1, 1),
    ("star_times", "12 * 3 = 36", 1, 1),
    ("cdot_latex", "$6 \\cdot 7 = 42$", 1, 1),
    ("latex_times_frac", "$\\frac{1}{2} \\times 4 = 2$", 1, 1),
    ("commas_in_numbers", "1,000 * 2 = 2,000", 1, 1),
    ("dollars", "He pays $12 + $8 = $20 in total.", 1, 1),
    ("units_between", "5 cm + 3 cm = 8 cm", 1, 1),
    ("units_per_hour", "$5 per hour * 3 hours = $15", 1, 1),
    ("trailing_unit_and_period", "16 - 3 - 4 = 9 eggs.", 1, 1),
    ("unicode_minus", "5 \u2212 3 = 2", 1, 1),
    ("negative_numbers", "-5 + 3 = -2", 1, 1),
    ("decimals_exact", "2.5 * 4 = 10.0", 1, 1),
    ("rounded_two_places", "10/3 = 3.33", 1, 1),
    ("rounded_up", "2/3 = 0.67", 1, 1),
    ("truncated_one_place", "10/3 = 3.3", 1, 1),
    ("integer_rounding_rejected", "10/3 = 3", 0, 1),
    ("rounding_too_far", "10/3 = 3.5", 0, 1),
    ("percent_as_fraction", "20% * 50 = 10", 1, 1),
    ("percent_as_unit", "100% - 20% = 80%", 1, 1),
    ("percent_claim_on_right", "50 * 0.2 = 10", 1, 1),
    ("power_caret", "2^10 = 1024", 1, 1),
    ("power_double_star", "2 ** 3 = 8", 1, 1),
    ("power_tower_unverifiable", "9^9^9^9 = 1", 0, 1),
    ("division_by_zero_is_wrong", "5/0 = 0", 0, 1),
    ("calculator_note", "<<48/2=24>>", 1, 1),
    ("note_and_visible_counted_once", "Natalia sold 48/2 = <<48/2=24>>24 clips in May.", 1, 1),
    ("gsm8k_solution", "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
                       "She makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18", 2, 2),
    ("wrong_note", "<<3*4=13>>", 0, 1),
    ("trivial_note_not_a_step", "x = <<8=8>>8", 0, 0),
    ("claim_on_left", "12 = 3 * 4", 1, 1),
    ("label_with_unit_not_claim", "2 hours = 2 * 60 = 120 minutes", 1, 1),
    ("mixed_number", "5 - 1 - 1/2 = 3 1/2", 1, 1),
    ("vulgar_fraction", "\u00be x 3/3 = 9/12", 1, 1),
    ("implicit_multiplication_glued", "The perimeter is 2(40+9) = 98", 1, 1),
    ("aside_in_parentheses", "60 / 15 = 4 (15 minutes)", 1, 1),
    ("space_thousands_with_dollar", "$350 000 x 5/100 = $17500", 1, 1),
    ("algebra_not_checked", "2x + 3 = 7", 0, 0),
    ("variable_chain", "x = 5 + 3 = 8", 1, 1),
    ("algebra_division_not_checked", "3x/3 = 24/3", 0, 0),
    ("words_as_operand_not_checked", "9 = (3/4)*number of novels", 0, 0),
    ("words_before_minus_not_checked", "his 25 classmates + his 1 teacher + 1 himself = 27 people", 0, 0),
    ("step_number_prefix", "1. 5+3=8\n2. 8*2=16", 2, 2),
    ("markdown_bold", "**Step 1:** 5 + 3 = **8**", 1, 1),
    ("assignment_not_a_step", "total = 15", 0, 0),
    ("approx_sign", "22/7 \u2248 3.14", 1, 1),
    ("think_scope_only", "<think>3*3=9</think> <answer>1+1=3</answer>", 1, 1),
    ("prefilled_think", "3*3=9\n</think>\n<answer>9</answer>", 1, 1),
    ("percent_of", "25% of 80 = 20", 1, 1),
    ("fraction_of", "3/4 of 364 = 273", 1, 1),
    ("times_word", "5 times 3 = 15", 1, 1),
    ("plain_of_not_times", "2 of 5 = 10", 0, 0),
    ("markdown_bullet_not_minus", "- 5 + 3 = 8\n- 8 * 2 = 16", 2, 2),
    ("star_bullet", "* 5 + 3 = 8", 1, 1),
    ("enumerator_paren", "1) 5+3=8", 1, 1),
    ("latex_inline_parens", "\\( 5 \\times 4 = 20 \\)", 1, 1),
    ("latex_display_frac", "$$\\frac{48}{2} = 24$$", 1, 1),
    ("latex_text_units", "\\( 12 \\text{ apples} + 3 \\text{ apples} = 15 \\text{ apples} \\)", 1, 1),
    ("latex_escaped_dollars", "\\[ 3 \\times \\$5 = \\$15 \\]", 1, 1),
    ("two_steps_one_line", "5 + 3 = 8, 8 * 2 = 16", 2, 2),
    ("half_right", "2+2=4\n3+3=7", 1, 2),
    ("no_math", "I think the answer is nine.", 0, 0),
]


@pytest.mark.parametrize("completion,n_correct,n_steps", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_stepwise_table(completion, n_correct, n_steps):
    v = verify_stepwise(completion)
    assert (v.details["n_correct"], v.details["n_steps"]) == (n_correct, n_steps), v.details["steps"]
    assert len(v.details["steps"]) == n_steps
    if n_steps == 0:
        assert v.correct is None and v.reason == NO_STEPS and v.score == 0.0
    else:
        assert v.score == pytest.approx(n_correct / n_steps)
        assert v.correct is (n_correct == n_steps)
        unverifiable = v.details["n_unverifiable"]
        assert v.reason == ("correct" if n_correct == n_steps else WRONG_STEPS if n_correct + unverifiable < n_steps
                            else UNVERIFIABLE_STEPS)
        assert v.extracted == f"{n_correct}/{n_steps}"


def test_step_details():
    (step,) = verify_stepwise("She sold 48 + 24 = 73 clips.").details["steps"]
    assert step == {"text": "48 + 24 = 73", "expected": "72", "claimed": "73", "ok": False, "source": "text"}
    (note,) = find_steps("<<10/4=2.5>>")
    assert note["source"] == "note" and note["expected"] == "2.5" and note["ok"]


def test_registered():
    spec = get_verifier("stepwise")
    assert spec.fields == ()
    assert spec("2+2=4").correct is True


def test_per_step_reward_count():
    # the seed recipe's "+0.2 per correct step" reward reads n_correct
    v = verify_stepwise("<think>2+2=4\n3+3=6\n4+4=9</think>")
    assert 0.2 * v.details["n_correct"] == pytest.approx(0.4)


@pytest.mark.parametrize("text", ["1+" * 300_000 + "1=2", "(" * 10_000 + "1" + ")" * 10_000 + "=1",
                                  "9" * 100_000 + "*2=" + "9" * 100_000, "2^" * 5000 + "2=4",
                                  "1 = " * 200_000, "<<" * 100_000 + "1+1=2" + ">>" * 100_000, "\x00\ufffd" * 500_000,
                                  "-" * 1_000_000 + "1=1"],
                         ids=["long_chain", "deep_parens", "giant_numbers", "power_tower", "many_equals",
                              "nested_notes", "binary_garbage", "minus_run"])
def test_pathological_inputs_fast(text):
    t = time.process_time()  # CPU time: a busy shared host does not fail it
    v = verify_stepwise(text)
    assert time.process_time() - t < 2.0
    assert v.correct in (True, False, None)
    assert v.details["n_steps"] <= 2000


# --- anti-hacking regression blocks (reasoning as instruct models and GRPO policies write it) ----

# A decimal claim is right when it is the exact value rounded to the digits it shows.
ROUNDING = [
    ("Each friend gets 7 / 3 = 2.33 pizzas.", True),
    ("Each friend gets 7 / 3 = 2.34 pizzas.", False),
    ("<<100/3=33.33>> so each part is 33.33 kg", True),
    ("The average speed is 50 / 7 = 7.14 km/h.", True),
    ("The average speed is 50 / 7 = 7.15 km/h.", False),
    ("She spends 2/3 of $10 = $6.67 on lunch.", True),
    ("She spends 2/3 * 10 = 6.66 dollars, rounding down.", False),
    ("So 1/8 = 0.125 exactly, or 0.13 rounded: 1/8 = 0.13", True),  # an exact half rounds either way
    ("Tax: 19.99 * 0.07 = 1.40", True),
    ("Tax: 19.99 * 0.07 = 1.39", False),
]


@pytest.mark.parametrize("text,right", ROUNDING)
def test_rounding_to_the_shown_precision(text, right):
    v = verify_stepwise(text)
    assert v.correct is right, v.details["steps"]


# a = b = c checks every link; a wrong later link is caught
CHAINS = [
    ("So 7 * 3 = 21 = 22 apples in total.", 1, 2),
    ("Total = 12 + 8 = 20 = 2 * 10", 2, 2),
    ("2 + 3 * 4 = 2 + 12 = 15", 1, 2),
    ("<<5*6=30>> then 30 + 5 = 35 = 36", 2, 3),
    ("The perimeter is 2 * (3 + 4) = 2 * 7 = 14 = 16 cm", 2, 3),
    ("Speed = 120 / 2 = 60 = 60 km/h", 2, 2),
    ("Saskay can lift it 12*1=12 inches=1 foot.", 1, 1),  # a unit conversion link is not a claim
]


@pytest.mark.parametrize("text,n_correct,n_steps", CHAINS)
def test_chains_check_every_link(text, n_correct, n_steps):
    v = verify_stepwise(text)
    assert (v.details["n_correct"], v.details["n_steps"]) == (n_correct, n_steps), v.details["steps"]


# A step we cannot evaluate is listed as unverifiable and counts as not right.
UNVERIFIABLE = [
    "<think>\nThere are 5! = 120 ways to line them up.\n</think>\n<answer>120</answer>",
    "The side is \u221a16 = 4 cm, so the area is 4 * 4 = 16.",
    "sqrt(49) = 7, and 7 + 3 = 10",
    "10 mod 3 = 1 remainder",
    "So 2^2^2^2^2 = 65536 and 9^9^9^9 = 100.",
    "log 1000 = 3, so 3 + 3 = 6",
    "%s * 2 = %s" % ("9" * 1500, "1" + "8" * 1500),
]


@pytest.mark.parametrize("text", UNVERIFIABLE)
def test_unverifiable_steps_are_counted_not_dropped(text):
    v = verify_stepwise(text)
    assert v.details["n_unverifiable"] >= 1, v.details["steps"]
    assert v.correct is False and v.score < 1.0
    assert any(s.get("unverifiable") and s["ok"] is None for s in v.details["steps"])
    if v.details["n_correct"] + v.details["n_unverifiable"] == v.details["n_steps"]:
        assert v.reason == UNVERIFIABLE_STEPS


# Padding: repeating a step (or the whole block) never raises the score.
PADDING = [
    ("48 + 24 = 73\n" + "2 + 2 = 4\n" * 500, 0.5),
    ("She sold 48 + 24 = 73 clips. " + "That is 48 / 2 = 24. " * 200, 0.5),
    ("<<48/2=24>>" * 10_000, 1.0),
    ("5 * 3 = 16\n" + ("Check: 3 * 5 = 15. " * 50 + "\n") * 20, 0.5),
    ("<think>\n" + "1 + 1 = 2\n1+1=2\n1 + 1  =  2\n" * 300 + "9 * 9 = 80\n</think>", 0.5),
    ("Step: 6 * 7 = 42\n" * 1000 + "6 * 7 = 41", 0.5),
]


@pytest.mark.parametrize("text,score", PADDING)
def test_repeated_steps_count_once(text, score):
    v = verify_stepwise(text)
    assert v.score == pytest.approx(score), (v.details["n_correct"], v.details["n_steps"])
    assert v.details["n_repeated"] > 0
