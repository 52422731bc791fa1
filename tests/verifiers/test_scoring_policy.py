"""One truncation policy and one verifier-crash policy (reasonkit.verifiers.policy), held on both sides
that score: ``reasonkit eval``'s verdict columns and the GRPO reward. Each row: what the verifier does,
the finish reason, ``score_truncated`` -> the verdict and the reward."""
import math

import pytest

from reasonkit.verifiers.base import VerifierSpec, Verdict


def _right(completion, answer):
    return Verdict(1.0, True, "18", "correct")


def _wrong(completion, answer):
    return Verdict(0.0, False, "17", "not_equal")


def _bad_gold(completion, answer):
    return Verdict(0.0, None, "18", "bad_gold")


def _crash(completion, answer):
    return 1 / 0


SPECS = {f.__name__[1:]: VerifierSpec(f.__name__[1:], f, ("answer",), "test") for f in (_right, _wrong, _bad_gold,
                                                                                           _crash)}
NAN = math.nan
CRASH = "verifier_error:ZeroDivisionError"

# verifier, finish, score_truncated -> correct, reason, eval's score column, reward, truncated mark
TABLE = [
    ("right", "stop", False, True, "correct", 1.0, 1.0, False),
    ("right", "length", False, False, "truncated", 0.0, 0.0, False),
    ("right", "length", True, True, "correct", 1.0, 1.0, False),
    ("wrong", "stop", False, False, "not_equal", 0.0, 0.0, False),
    ("wrong", "length", False, False, "truncated", 0.0, 0.0, False),
    ("bad_gold", "stop", False, None, "bad_gold", 0.0, NAN, False),
    ("bad_gold", "length", False, None, "bad_gold", 0.0, NAN, True),  # unscored, not wrong (issue 23)
    ("bad_gold", "length", True, None, "bad_gold", 0.0, NAN, False),
    ("crash", "stop", False, None, CRASH, None, NAN, False),  # never a silent 0
    ("crash", "length", False, None, CRASH, None, NAN, True),
    ("crash", "length", True, None, CRASH, None, NAN, False),
]


@pytest.mark.parametrize("name, finish, score_truncated, correct, reason, eval_score, reward, marked", TABLE)
def test_eval_columns_follow_the_policy(name, finish, score_truncated, correct, reason, eval_score, reward, marked):
    from reasonkit.eval.scoring import score_completion

    out = score_completion({"v": SPECS[name]}, "... 18", finish, {"answer": "18"}, score_truncated=score_truncated)
    assert out["v.correct"] is correct and out["v.reason"] == reason and out["v.score"] == eval_score
    assert bool((out["v.details"] or {}).get("truncated")) is marked
    if reason == "truncated":  # what the verifier would have said is kept
        assert out["v.details"]["untruncated"]["reason"] == SPECS[name]("", answer="").reason
    if name == "crash":
        assert "ZeroDivisionError" in out["v.details"]["error"]


@pytest.mark.parametrize("name, finish, score_truncated, correct, reason, eval_score, reward, marked", TABLE)
def test_grpo_reward_follows_the_policy(name, finish, score_truncated, correct, reason, eval_score, reward, marked):
    from reasonkit.grpo.reward import score
    from reasonkit.grpo.rollout import Rollouts

    r = Rollouts(["p"], [{"answer": "18"}], [[1]], [[2]], ["... 18"], [finish], 1)
    score(r, SPECS[name], score_truncated=score_truncated)
    got = r.rewards[0].item()
    assert (math.isnan(got) and math.isnan(reward)) or got == reward
    assert r.unscored == int(correct is None)
    if name == "crash":
        assert "ZeroDivisionError" in r.unscored_reasons[0]


@pytest.mark.parametrize("finish, score_truncated, countdown, fmt", [
    ("stop", False, 1.0, 1.0),
    ("length", False, 0.0, 0.0),  # every scored component of a truncated completion earns 0
    ("length", True, 1.0, 1.0),
])
def test_grpo_components_follow_the_policy(finish, score_truncated, countdown, fmt):
    from reasonkit.grpo.reward import score
    from reasonkit.grpo.rollout import Rollouts
    from reasonkit.verifiers.compose import compose

    good = " 3 + 5 = 8\n</think>\n<answer>3 + 5</answer>"
    r = Rollouts(["p"], [{"numbers": [3, 5], "target": 8}], [[1]], [[2]], [good], [finish], 1)
    score(r, compose("countdown+0.5*format"), prefix="<think>", score_truncated=score_truncated)
    assert r.per_verifier["countdown"].tolist() == [countdown] and r.per_verifier["format"].tolist() == [fmt]


@pytest.mark.parametrize("reason, error", [("verifier_error:KeyError", True), ("error", True),
                                           ("bad_gold", False), ("truncated", False), (None, False)])
def test_is_error(reason, error):
    from reasonkit.verifiers.policy import is_error

    assert is_error(reason) is error
