"""Regression table for the format verifiers (strict ``format``, ``format_soft``)."""
from __future__ import annotations

import re
import time

import pytest

from reasonkit.verifiers import get_verifier
from reasonkit.verifiers.format import verify_format

GOOD = "<think>\n6 * 4 = 24, that uses both numbers.\n</think>\n<answer>6 * 4</answer>"

# (id, completion, strict reason, soft reason)
CASES = [
    ("canonical_agilerl_shape", GOOD, "correct", "correct"),
    ("one_line", "<think>easy</think>\n<answer>42</answer>", "correct", "correct"),
    ("surrounding_whitespace_stripped", "\n  " + GOOD + "\n\n", "correct", "correct"),
    ("blank_line_separator", "<think>a</think>\n\n<answer>b</answer>", "correct", "correct"),
    ("spaces_around_newline_separator", "<think>a</think>  \n\t<answer>b</answer>", "correct", "correct"),
    ("crlf_separator", "<think>a</think>\r\n<answer>b</answer>", "correct", "correct"),
    ("empty_think_refused", "<think></think>\n<answer>b</answer>", "empty_think", "correct"),
    ("multiline_answer", "<think>a</think>\n<answer>\nline 1\nline 2\n</answer>", "correct", "correct"),
    ("no_newline_between_blocks", "<think>a</think><answer>b</answer>", "bad_separator", "correct"),
    ("space_only_separator", "<think>a</think> <answer>b</answer>", "bad_separator", "correct"),
    ("text_between_blocks", "<think>a</think>\nSo the answer is:\n<answer>b</answer>", "bad_separator", "correct"),
    ("missing_think", "<answer>b</answer>", "missing_think", "missing_think"),
    ("missing_think_close", "<think>a\n<answer>b</answer>", "missing_think", "missing_think"),
    ("missing_answer", "<think>a</think>\nThe answer is 24.", "missing_answer", "missing_answer"),
    ("unclosed_answer_truncated", "<think>a</think>\n<answer>6 * 4", "missing_answer", "missing_answer"),
    ("plain_text", "The answer is 24.", "missing_think", "missing_think"),
    ("empty_completion", "", "missing_think", "missing_think"),
    ("repeated_think_blocks", "<think>a</think>\n<think>b</think>\n<answer>c</answer>", "repeated_tags",
     "repeated_blocks"),
    ("repeated_answer_blocks", "<think>a</think>\n<answer>b</answer>\n<answer>c</answer>", "repeated_tags",
     "repeated_blocks"),
    ("repeated_whole_pattern", (GOOD + "\n") * 2, "repeated_tags", "repeated_blocks"),
    ("nested_think_in_think", "<think>a<think>b</think></think>\n<answer>c</answer>", "repeated_tags",
     "repeated_blocks"),
    ("answer_nested_in_think", "<think>a <answer>b</answer> c</think>", "nested_tags", "wrong_order"),
    ("think_nested_in_answer", "<answer>x <think>a</think> y</answer>", "nested_tags", "wrong_order"),
    ("answer_before_think", "<answer>b</answer>\n<think>a</think>", "wrong_order", "wrong_order"),
    ("empty_answer", "<think>a</think>\n<answer></answer>", "empty_answer", "empty_answer"),
    ("whitespace_answer", "<think>a</think>\n<answer> \n </answer>", "empty_answer", "empty_answer"),
    ("leading_chatter", "Sure! Let me think.\n" + GOOD, "leading_text", "correct"),
    ("trailing_chatter", GOOD + "\nHope this helps!", "trailing_text", "correct"),
    ("trailing_eos_token_removed", GOOD + "<|im_end|>", "correct", "correct"),
    ("eos_token_then_chatter", GOOD + "<|im_end|>\nuser: thanks", "trailing_text", "correct"),
    ("uppercase_tags", "<THINK>a</THINK>\n<ANSWER>b</ANSWER>", "missing_think", "missing_think"),
    ("spaced_tag", "<think >a</think>\n<answer>b</answer>", "missing_think", "missing_think"),
    ("self_closing_lookalike", "<think/>\n<answer>b</answer>", "missing_think", "missing_think"),
]


@pytest.mark.parametrize("completion,strict,soft", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_format_table(completion, strict, soft):
    v = verify_format(completion)
    assert v.reason == strict, v
    assert v.correct is (strict == "correct") and v.score == (1.0 if strict == "correct" else 0.0)
    s = verify_format(completion, mode="soft")
    assert s.reason == soft, s
    assert s.correct is (soft in ("correct", "repeated_blocks"))
    assert s.score == (1.0 if soft == "correct" else 0.5 if soft == "repeated_blocks" else 0.0), s


def test_ids_unique():
    assert len({c[0] for c in CASES}) == len(CASES)


# Completions from a prompt that pre-fills "<think>": they start inside the think block.
PREFILLED = [
    ("prefilled_ok", "6 times 4 is 24.</think>\n<answer>6 * 4</answer>", "correct", "correct"),
    ("prefilled_model_reopens_think", "<think>6*4</think>\n<answer>6 * 4</answer>", "repeated_tags",
     "repeated_blocks"),
    ("prefilled_closed_at_once", "</think>\n<answer>6 * 4</answer>", "empty_think", "correct"),
    ("prefilled_no_close", "6 times 4 is 24.\n<answer>6 * 4</answer>", "missing_think", "missing_think"),
    ("prefilled_empty_answer", "ok</think>\n<answer> </answer>", "empty_answer", "empty_answer"),
    ("prefilled_leading_newline", "\nreasoning</think>\n<answer>1</answer>", "correct", "correct"),
]


@pytest.mark.parametrize("completion,strict,soft", [c[1:] for c in PREFILLED], ids=[c[0] for c in PREFILLED])
def test_prefilled_think(completion, strict, soft):
    assert verify_format(completion, prefilled_think=True).reason == strict
    assert verify_format(completion, mode="soft", prefilled_think=True).reason == soft


# --- anti-hacking regression blocks (completions as instruct models and GRPO policies write them) ---

# Empty or whitespace-only reasoning: never strict format.
EMPTY_REASONING = [
    "<think></think>\n<answer>72</answer>",
    "<think> </think>\n<answer>72</answer>",
    "<think>\n\n</think>\n<answer>(25 - 1) * 1</answer>",
    "<think>\t \n</think>\n\n<answer>$18</answer><|im_end|>",
    "<think>\u00a0</think>\n<answer>18</answer>",
    "\n<think></think>\n<answer>The answer is 5.</answer>\n",
]


@pytest.mark.parametrize("completion", EMPTY_REASONING)
def test_empty_reasoning_is_not_strict_format(completion):
    v = verify_format(completion)
    assert (v.correct, v.score, v.reason) == (False, 0.0, "empty_think"), v


# Decoded with special tokens kept: the end-of-turn token(s) at the very end do not zero the reward.
END_TOKENS = [
    GOOD + "<|im_end|>",
    GOOD + "<|endoftext|>",
    GOOD + "</s>",
    GOOD + "<|eot_id|>",
    GOOD + "\n<|im_end|>\n<|endoftext|>",
    GOOD + "<|im_end|><|endoftext|><|endoftext|><|endoftext|>",  # padded batch decoded as is
    GOOD + " </s>\n",
]


@pytest.mark.parametrize("completion", END_TOKENS)
def test_end_of_turn_tokens_at_the_end_are_removed(completion):
    assert verify_format(completion).reason == "correct"
    assert verify_format(completion, mode="soft").score == 1.0


# Repeated blocks: wrong in strict mode; counted in soft mode (score 1/k), so repeating never pays.
REPEATED = [
    ((GOOD + "\n") * 2, 2),
    (GOOD + "\n" + GOOD + "\n" + GOOD, 3),
    ("<think>6*4=24</think>\n<answer>6 * 4</answer>\n<think>double-check</think>\n<answer>6 * 4</answer>", 2),
    ("<think>a</think>\n<answer>24</answer><answer>24</answer><answer>24</answer><answer>24</answer>", 4),
    ("<think>Let me think.</think>\n<think>OK.</think>\n<answer>24</answer><|im_end|>", 2),
    ("Question: 2+2?\n<think>easy</think>\n<answer>4</answer>\nQuestion: 3+3?\n<think>easy</think>\n"
     "<answer>6</answer>", 2),
]


@pytest.mark.parametrize("completion,blocks", REPEATED)
def test_repeated_blocks(completion, blocks):
    assert verify_format(completion).reason == "repeated_tags"
    v = verify_format(completion, mode="soft")
    assert (v.correct, v.reason, v.details["blocks"]) == (True, "repeated_blocks", blocks)
    assert v.score == pytest.approx(1 / blocks)
    assert v.score < verify_format(GOOD, mode="soft").score


def test_strict_agrees_with_agilerl_regex_on_its_own_shape():
    # The recipe's regex (prefilled <think>, exactly "\n" between blocks) accepts these; so must we.
    regex = re.compile(r"^<think>([^<]*(?:<(?!/?think>)[^<]*)*)</think>\n<answer>([\s\S]*?)</answer>$")
    for completion in ["a</think>\n<answer>b</answer>", "x\ny</think>\n<answer>(1+2)*3</answer>"]:
        assert regex.search("<think>" + completion)
        assert verify_format(completion, prefilled_think=True).correct is True


def test_extracted_is_answer_content():
    assert verify_format(GOOD).extracted == "6 * 4"
    assert verify_format("no tags").extracted is None


def test_registered_names():
    strict, soft = get_verifier("format"), get_verifier("format_soft")
    assert strict.fields == () and soft.fields == ()
    assert strict("<think>a</think><answer>b</answer>").correct is False
    assert soft("<think>a</think><answer>b</answer>").correct is True
    assert get_verifier("format").options == {"mode": "strict"}


def test_bad_mode_and_non_string():
    with pytest.raises(ValueError, match="strict"):
        verify_format(GOOD, mode="lenient")
    v = verify_format(None)
    assert v.correct is False and v.score == 0.0


ADVERSARIAL = [
    ("one_mb_of_think_tags", "<think>" * 150_000),
    ("one_mb_alternating_tags", "<think></think><answer>" * 45_000),
    ("one_mb_inside_valid_blocks", "<think>" + "x" * 1_000_000 + "</think>\n<answer>1</answer>"),
    ("one_mb_of_less_than_signs", "<" * 1_000_000),
]


@pytest.mark.parametrize("completion", [c[1] for c in ADVERSARIAL], ids=[c[0] for c in ADVERSARIAL])
def test_adversarial_inputs_return_fast(completion):
    for mode in ("strict", "soft"):
        start = time.perf_counter()
        v = verify_format(completion, mode=mode)
        assert time.perf_counter() - start < 1.0
        assert v.correct in (True, False)


# The hack of an earlier recorded learning run (format_soft on Countdown, since removed): with the prompt
# pre-filling "<think>…</think>\n<answer>", the policy closed the answer at once and repeated tags.
LEARNED_HACK = [
    "</answer></answer></answer></answer>",
    "</answer>\n</answer>\n</answer>",
    "</answer><|im_end|>",
    " </answer>",
    "</answer><answer></answer><answer></answer>",
]


@pytest.mark.parametrize("completion", LEARNED_HACK)
def test_learned_empty_answer_hack_pays_nothing(completion):
    prefill = "<think>\nWe need 24 from [6, 4].\n</think>\n<answer>"
    for mode in ("strict", "soft"):
        v = verify_format(prefill + completion, mode=mode)
        assert v.score == 0.0 and v.reason in ("empty_answer", "repeated_tags"), (mode, v)


def test_soft_mode_counts_repeated_closing_tags():
    v = verify_format(GOOD + "</answer></answer>", mode="soft")
    assert (v.reason, v.score) == ("repeated_blocks", pytest.approx(1 / 3))
