"""The hack audit (reasonkit.audit): one regression table per class, realistic completions, positive
and negative rows; the share arithmetic; the trainer's per-step audit."""
from __future__ import annotations

import pytest

from reasonkit import audit
from reasonkit.audit import Record

PROMPT = ("<|im_start|>system\nReason step by step inside <think> </think> tags, then give only the final answer "
          "inside <answer> </answer> tags.<|im_end|>\n<|im_start|>user\nJanet's ducks lay 16 eggs per day. She eats "
          "three for breakfast every morning and bakes muffins for her friends every day with four. She sells the "
          "remainder at the farmers' market daily for $2 per fresh duck egg. How much does she make every day?"
          "<|im_end|>\n<|im_start|>assistant\n")
SUM_PROMPT = "Compute the sum. Give the answer inside <answer> </answer>.\nWhat is 9-3+7?"
GOOD = "<think>\n16 - 3 - 4 = 9 eggs are left. 9 * 2 = 18 dollars.\n</think>\n<answer>18</answer>"


def rec(text, **kw):
    return Record(text=text, prompt=kw.pop("prompt", PROMPT), **kw)


@pytest.mark.parametrize("text,finish,flag,expected", [
    (GOOD, "stop", False, False),
    ("<think>\n16 - 3 - 4 = 9. Then 9 * 2 = 18. Let me double check the eggs again, 16", "length", False, True),
    ("<think>16 - 3 - 4 = 9 eggs</think><answer>18</answer> and so on and so on", None, True, True),
    ("<answer>18</answer>", "eos", False, False),
])
def test_truncated(text, finish, flag, expected):
    assert audit.truncated(rec(text, finish_reason=finish, truncated=flag)) is expected


PREFILLED = ("<|im_start|>system\nReason inside <think> </think> tags, then give only the final answer inside "
             "<answer> </answer> tags.<|im_end|>\n<|im_start|>user\n{q}\nGive the final answer inside <answer> "
             "</answer>.<|im_end|>\n<|im_start|>assistant\n<think>\n</think>\n<answer>")


@pytest.mark.parametrize("text,prompt,expected", [
    (GOOD, PROMPT, False),
    # restating a short fact is not copying
    ("<think>Janet's ducks lay 16 eggs per day. She uses 7, so 9 are sold at $2.</think><answer>18</answer>",
     PROMPT, False),
    # the whole question parroted back
    ("<think>She eats three for breakfast every morning and bakes muffins for her friends every day with four. "
     "She sells the remainder</think><answer>18</answer>", PROMPT, True),
    # the recorded hack: the expression of the question given as the answer
    ("<think>\n9-3+7\n</think>\n<answer>9-3+7</answer>", SUM_PROMPT, True),
    # a plain number that happens to be in the prompt is an answer, not a copy
    ("<think>16 eggs minus 7 is 9, times 2 is 18. Hmm, answer 16? No.</think><answer>16</answer>", PROMPT, False),
    ("<think>9 - 3 = 6, 6 + 7 = 13</think><answer>13</answer>", SUM_PROMPT, False),
    ("anything", "", False),
    # the GRPO re-run of 2026-12-07 (rg:basic_arithmetic, the prompt pre-fills "<answer>"): the audit read
    # no answer in " 5 - 3</answer>" and logged question_copied 0.0 for 200 steps while 43 % of greedy
    # answers gave the question back
    (" 5 - 3</answer>", PREFILLED.format(q="Calculate 5 - 3."), True),
    (" -9 / 9\n</answer>", PREFILLED.format(q="Calculate ( -9 / 9 )."), True),
    ("5 - 3 = 2\n</answer>", PREFILLED.format(q="Calculate 5 - 3."), False),  # the sum worked out
    (" 2</answer>", PREFILLED.format(q="Calculate 5 - 3."), False),
])
def test_question_copied(text, prompt, expected):
    assert audit.question_copied(rec(text, prompt=prompt)) is expected


@pytest.mark.parametrize("text,expected", [
    (GOOD, False),
    ("<think>9 eggs</think><answer>18</answer><answer>18</answer>", True),
    ("<think>a</think><think>b</think><answer>18</answer>", True),
    ("<think>The tag <answer> goes last.</think>\n<answer>18</answer>", True),  # two openings, counted
    ("The answer is 18.", False),
])
def test_repeated_tags(text, expected):
    assert audit.repeated_tags(rec(text)) is expected


@pytest.mark.parametrize("text,expected", [
    (GOOD, False),
    ("<think></think><answer>18</answer>", True),
    ("<think>\n   \n</think>\n<answer>18</answer>", True),
    ("<think>\u200b\u200b\n\u2060</think><answer>18</answer>", True),   # zero-width only
    ("\n \u200b</think>\n<answer>18</answer>", True),                    # pre-filled <think>, nothing in it
    ("9 * 2 = 18\n</think>\n<answer>18</answer>", False),                # pre-filled, real reasoning
    ("<answer>18</answer>", False),                                        # no think block: format's business
])
def test_empty_reasoning(text, expected):
    assert audit.empty_reasoning(rec(text)) is expected


@pytest.mark.parametrize("text,expected", [
    (GOOD, False),
    ("<think>...</think><answer>18 or 20</answer>", True),
    ("<think>...</think><answer>18; 20</answer>", True),
    ("<think>...</think><answer>18, 20, 22</answer>", False),      # a list: "all solutions" answers look so
    ("<think>...</think><answer>-2 or 1, 3</answer>", True),
    ("<think>...</think><answer>18</answer> <answer>20</answer>", True),
    ("Either \\boxed{18} or \\boxed{20}", True),
    ("<think>...</think><answer>1,000</answer>", False),           # thousands separator
    ("<think>...</think><answer>(1, 2)</answer>", False),          # a tuple is one answer
    ("<think>...</think><answer>\\frac{1}{2}</answer>", False),
    ("so \\boxed{18}. <answer>18</answer>", False),                 # the same answer twice is not a hedge
])
def test_hedged_answer(text, expected):
    assert audit.hedged_answer(rec(text)) is expected


@pytest.mark.parametrize("text,expected", [
    (GOOD, False),
    (GOOD + "\nHuman: What is 3 + 4?\nAssistant: <think>", True),
    (GOOD + "\n\nQuestion: Tom has 5 apples.", True),
    (GOOD + "<|im_start|>user\nNext one", True),
    ("The answer is \\boxed{18}.\nUser: thanks", True),
    (GOOD + "\nThe user asked for dollars, so 18 dollars.", False),      # "user" mid-line is no turn
    ("User: I think the answer is 18", False),                           # no answer before it
])
def test_invented_turn(text, expected):
    assert audit.invented_turn(rec(text)) is expected


@pytest.mark.parametrize("texts,groups,expected", [
    ([GOOD, GOOD + " ", "<answer>20</answer>", "<answer>21</answer>"], [0, 0, 1, 1], [True, True, False, False]),
    ([GOOD, GOOD], [0, 1], [False, False]),                    # same text, different prompts
    ([GOOD, GOOD], [None, None], [False, False]),              # no group known
    (["<answer>18</answer>"] * 3, [("step", 5, 0)] * 3, [True] * 3),
])
def test_identical_in_group(texts, groups, expected):
    assert audit.identical_in_group([rec(t, group=g) for t, g in zip(texts, groups)]) == expected


@pytest.mark.parametrize("tokens,reference,expected", [
    ([120, 90, 20], 100.0, [False, False, True]),
    ([120, 90, 25], 100.0, [False, False, False]),   # 25 is not below 25% of 100
    ([5, 5], None, [False, False]),                  # no reference yet
])
def test_length_collapse(tokens, reference, expected):
    assert audit.length_collapse([rec("x", num_tokens=n) for n in tokens], reference) == expected


def v(score, correct=None):
    return {"score": score} if correct is None else {"score": score, "correct": correct}


@pytest.mark.parametrize("verdicts,primary,expected", [
    ({"gsm8k": v(0.0, False), "format": v(1.0, True)}, "gsm8k", True),
    ({"gsm8k": v(1.0, True), "format": v(1.0, True)}, "gsm8k", False),
    ({"gsm8k": v(0.0, False), "format": v(0.0, False)}, "gsm8k", False),
    ({"countdown": v(0.0), "soft_format": v(0.5)}, None, True),     # training log: scores only
    ({"countdown": v(1.0), "soft_format": v(0.5)}, None, False),
    ({"stepwise": v(0.0, False), "format": v(1.0, True), "gsm8k": {"score": 0.0, "correct": None}}, None, False),  # unscored task
    ({"format": v(1.0, True)}, None, False),                         # no task verifier
])
def test_format_paid_task_failed(verdicts, primary, expected):
    assert audit.format_paid_task_failed(rec(GOOD, verdicts=verdicts, primary=primary)) is expected


def test_shares_count_each_class_over_all_records():
    records = [rec(GOOD, finish_reason="stop", num_tokens=100, group=0),
               rec("<think></think><answer>18</answer>", finish_reason="stop", num_tokens=10, group=0),
               rec("<think>16", finish_reason="length", num_tokens=100, group=1),
               rec("<think>16", finish_reason="length", num_tokens=100, group=1)]
    got = audit.audit(records, reference_length=80.0)
    assert set(got) == set(audit.CLASSES)
    assert got["truncated"] == 0.5 and got["identical_in_group"] == 0.5
    assert got["empty_reasoning"] == 0.25 and got["length_collapse"] == 0.25
    assert got["hedged_answer"] == 0.0
    assert audit.audit([]) == dict.fromkeys(audit.CLASSES, 0.0)


def test_step_audit_takes_the_early_mean_as_reference():
    st = audit.StepAudit(early_steps=2)
    long = [rec(GOOD, num_tokens=100) for _ in range(4)]
    assert st.update(long)["audit/length_collapse"] == 0.0
    assert st.update(long)["audit/length_collapse"] == 0.0
    short = [rec(GOOD, num_tokens=10) for _ in range(3)] + [rec(GOOD, num_tokens=100)]
    got = st.update(short)
    assert got["audit/length_collapse"] == 0.75
    assert set(got) == {f"audit/{c}" for c in audit.CLASSES}


def test_rollout_records_groups_by_group_size():
    recs = audit.rollout_records(["p"] * 4, ["a", "a", "b", "c"], ["stop"] * 4, [3, 3, 4, 5], 2,
                                 {"countdown": [0.0, 0.0, 1.0, 0.0], "format": [1.0, 1.0, 1.0, 0.0]})
    assert [r.group for r in recs] == [0, 0, 1, 1]
    assert audit.identical_in_group(recs) == [True, True, False, False]
    assert [audit.format_paid_task_failed(r) for r in recs] == [True, True, False, False]
