"""The hack audit's task verifier for a training reward made of format terms alone (the format-only hack
of benchmarks/hack_alarm.py): such a reward has no task term to say "format paid, task failed", so the
trainer judges each completion with the run's first held-out verifier as ``reasonkit eval`` would
(truncated = wrong) and names it the primary; a reward with a task term keeps its own."""
from __future__ import annotations

import pytest
import torch

from reasonkit.audit import flags, has_task_verifier
from reasonkit.grpo.reward import eval_verdicts
from reasonkit.grpo.rollout import Rollouts
from reasonkit.grpo.tracking import audit_records
from reasonkit.verifiers import get_verifier

ITEM = {"numbers": [2, 5, 3], "target": 7}
# (completion, finish reason, format_soft reward, flagged as format_paid_task_failed)
CASES = [
    ("<think>I add them.</think>\n<answer>-3</answer>", "stop", 1.0, True),        # a bare guess, tag closed
    ("<answer>7</answer>", "stop", 1.0, True),                                      # the target, no equation
    ("<think>2 + 5 = 7</think>\n<answer>2 + 5</answer>", "stop", 1.0, True),        # a number left unused
    ("<think>2*5=10, 10-3=7</think>\n<answer>2*5-3</answer>", "stop", 1.0, False),  # right: paid for the answer
    ("<think>(5 - 3) * 2 = 4... no. 2*5 - 3 = 7</think>\n<answer>(2 * 5) - 3</answer>", "stop", 1.0, False),
    ("Let me think about 2, 5 and 3. Maybe 2 times", "length", 0.0, False),         # format unpaid
    ("<think>2*5-3 = 7</think> <answer>(2*5)-3</answer> and then I keep on writing until", "length", 1.0, True),
]


def _rollouts(per_verifier: dict[str, list[float]]) -> Rollouts:
    n = len(CASES)
    r = Rollouts(["p"] * n, [dict(ITEM) for _ in CASES], [[1]] * n, [[2, 3]] * n, [c[0] for c in CASES],
                 [c[1] for c in CASES], n)
    r.per_verifier = {k: torch.tensor(v) for k, v in per_verifier.items()}
    return r


def test_format_only_reward_is_audited_against_the_heldout_verifier():
    r = _rollouts({"format_soft": [c[2] for c in CASES]})
    assert not has_task_verifier(r.per_verifier)
    verdicts = eval_verdicts(r, get_verifier("countdown"))
    assert verdicts[-1] == {"score": 0.0, "correct": False}  # truncated: wrong, as reasonkit eval scores it
    records = audit_records(r, ("countdown", verdicts))
    assert all(rec.primary == "countdown" for rec in records)
    got = ["format_paid_task_failed" in f for f in flags(records)]
    assert got == [c[3] for c in CASES]


def test_without_the_task_verdicts_a_format_only_reward_flags_nothing():
    """What the audit saw before: no task verifier, so the class could not fire on this hack."""
    records = audit_records(_rollouts({"format_soft": [c[2] for c in CASES]}))
    assert not any("format_paid_task_failed" in f for f in flags(records))


@pytest.mark.parametrize("names, has_task", [
    (["format_soft"], False), (["format", "format_soft"], False), (["format", "stepwise"], False),
    (["countdown", "format"], True), (["gsm8k"], True), (["rg:basic_arithmetic", "format_soft"], True),
])
def test_which_rewards_have_a_task_term(names, has_task):
    assert has_task_verifier(names) is has_task


def test_a_reward_with_a_task_term_keeps_its_own_primary():
    countdown = [1.0 if c[0].endswith("</answer>") and not c[3] else 0.0 for c in CASES]
    r = _rollouts({"countdown": countdown, "format": [c[2] for c in CASES]})
    records = audit_records(r, ("countdown", [{"score": 1.0, "correct": True}] * len(CASES)))
    assert all(rec.primary is None for rec in records)  # the reward's countdown term is the task verifier
    assert [rec.verdicts["countdown"]["score"] for rec in records] == countdown
