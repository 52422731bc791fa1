"""Reward adapters: TRL ``reward_funcs`` signature and AgileRL ``reward_fn(completion, solution, prompt)``."""
from __future__ import annotations

import math
import pickle

import pytest

from reasonkit.verifiers import (
    MissingColumnError, TRLReward, Verdict, VerifierSpec, agilerl_reward, completion_text, compose, trl_reward,
    trl_reward_funcs,
)

RIGHT = "<think>\n6 * 4 = 24\n</think>\n<answer>6 * 4</answer>"
WRONG = "<think>\nhmm\n</think>\n<answer>6 + 4</answer>"
NO_TAGS = "It is 6 * 4."


class FakeState:  # stands in for transformers.TrainerState
    global_step = 3


def trl_kwargs(**columns):
    """What TRL 1.16 passes besides prompts/completions/completion_ids."""
    metrics, extra = [], []
    return {**columns, "trainer_state": FakeState(), "log_metric": lambda n, v: metrics.append((n, v)),
            "log_extra": lambda c, v: extra.append((c, v))}, metrics, extra


def test_trl_plain_completions_with_columns_as_lists():
    fn = trl_reward("countdown")
    kwargs, _, _ = trl_kwargs(numbers=[[6, 4], [6, 4], [1, 2, 8]], target=[24, 24, 24])
    rewards = fn(prompts=["p1", "p1", "p2"], completions=[RIGHT, WRONG, "<answer>(1+2)*8</answer>"],
                 completion_ids=[[1], [2], [3]], **kwargs)
    assert rewards == [1.0, 0.0, 1.0]
    assert fn.__name__ == "countdown_reward"


def test_trl_chat_message_completions():
    fn = trl_reward("countdown+format")
    completions = [[{"role": "assistant", "content": RIGHT}], [{"role": "assistant", "content": NO_TAGS}]]
    kwargs, metrics, extra = trl_kwargs(numbers=[[6, 4], [6, 4]], target=[24, 24])
    assert fn(completions=completions, prompts=[[{"role": "user", "content": "q"}]] * 2, **kwargs) == [2.0, 0.0]
    assert fn.__name__ == "countdown_format_reward"
    # per-component means through TRL's log_metric hook; reasons through log_extra
    assert dict(metrics) == {"countdown_format_reward/countdown": 0.5, "countdown_format_reward/format": 0.5}
    assert extra == [("countdown_format_reward_reason", ["correct", "no_answer"])]


def test_trl_unscored_is_none_not_zero():
    fn = trl_reward("countdown")
    rewards = fn([RIGHT, RIGHT], numbers=[[6, 4], [6, 4]], target=[24, "n/a"])
    assert rewards == [1.0, None]
    # in a composite the unscored term contributes 0 and the others still count (issue 23 item 7)
    assert trl_reward("countdown+format")([RIGHT, RIGHT], numbers=[[6, 4], [6, 4]], target=[24, "n/a"]) == [2.0, 1.0]


def test_trl_missing_column_fails_loudly():
    fn = trl_reward("countdown")
    kwargs, _, _ = trl_kwargs(target=[24])
    with pytest.raises(MissingColumnError) as info:
        fn([RIGHT], prompts=["p"], **kwargs)
    message = str(info.value)
    assert "'numbers'" in message and "countdown_reward" in message and "['target']" in message
    assert "trainer_state" not in message


def test_trl_column_mapping_for_countdown_tasks_dataset():
    fn = trl_reward("countdown", columns={"numbers": "nums"})
    assert fn([RIGHT], nums=[[6, 4]], target=[24]) == [1.0]
    with pytest.raises(ValueError, match="does not read"):
        trl_reward("countdown", columns={"nums": "numbers"})


def test_trl_column_length_mismatch():
    with pytest.raises(ValueError, match="has 1 values for 2 completions"):
        trl_reward("countdown")([RIGHT, WRONG], numbers=[[6, 4]], target=[24, 24])


def test_trl_prefill_for_prompts_ending_in_think():
    completion = "6*4 = 24</think>\n<answer>6 * 4</answer>"
    assert trl_reward("format")([completion]) == [0.0]
    assert trl_reward("format", prefill="<think>")([completion]) == [1.0]


def _boom(completion: str, answer: str) -> Verdict:
    if completion == "crash":
        raise ZeroDivisionError("verifier bug")
    return Verdict(1.0, True, completion, "correct")


BOOM = VerifierSpec("boom", _boom, ("answer",), "crashes on 'crash'")


def test_trl_verifier_crash_raises_by_default():
    with pytest.raises(RuntimeError, match="crashed on sample 1: ZeroDivisionError: verifier bug"):
        trl_reward(BOOM)(["fine", "crash"], answer=["a", "b"])


def test_trl_verifier_crash_can_be_none_with_warning():
    fn = trl_reward(BOOM, on_error="none")
    with pytest.warns(RuntimeWarning, match="verifier bug"):
        assert fn(["fine", "crash"], answer=["a", "b"]) == [1.0, None]
    with pytest.raises(ValueError):
        trl_reward(BOOM, on_error="zero")


def test_trl_reward_funcs_split_a_composite():
    funcs, weights = trl_reward_funcs("countdown+0.5*format")
    assert [f.__name__ for f in funcs] == ["countdown_reward", "format_reward"] and weights == [1.0, 0.5]
    assert funcs[1]([RIGHT, NO_TAGS], numbers=[[6, 4]] * 2, target=[24, 24]) == [1.0, 0.0]
    single, w = trl_reward_funcs("countdown")
    assert len(single) == 1 and w == [1.0]


def test_trl_reward_pickles_and_has_custom_name():
    fn = trl_reward("countdown+format", name="equation_and_format")
    again = pickle.loads(pickle.dumps(fn))
    assert again.__name__ == "equation_and_format" and isinstance(again, TRLReward)
    assert again([RIGHT], numbers=[[6, 4]], target=[24]) == [2.0]


@pytest.mark.parametrize("completion,text", [
    ("plain", "plain"),
    ([{"role": "assistant", "content": "a"}], "a"),
    ({"role": "assistant", "content": "b"}, "b"),
    ([{"role": "assistant", "content": [{"type": "text", "text": "c"}, {"type": "image"}]}], "c"),
    ([{"role": "assistant", "content": None}], ""),
], ids=["string", "messages", "single_message", "content_parts", "none_content"])
def test_completion_text(completion, text):
    assert completion_text(completion) == text


def test_completion_text_rejects_other_types():
    with pytest.raises(TypeError):
        completion_text(42)


# --- AgileRL recipe style: reward_fn(completion, solution=target, prompt=nums)
def test_agilerl_recipe_style_countdown_plus_format():
    torch = pytest.importorskip("torch")
    fn = agilerl_reward("countdown+format", prefill="<think>")  # the recipe pre-fills "<think>"
    completion = "6 * 4 = 24</think>\n<answer>6 * 4</answer>"
    assert fn(completion, torch.tensor(24), torch.tensor([6, 4])) == 2.0
    assert fn("6 + 4</think>\n<answer>6 + 4</answer>", torch.tensor(24), torch.tensor([6, 4])) == 1.0
    assert fn.last_verdict.details["components"]["countdown"]["reason"] == "not_equal"


def test_agilerl_plain_values_and_dict_solution():
    fn = agilerl_reward("countdown")
    assert fn(RIGHT, 24, [6, 4]) == 1.0
    assert fn(RIGHT, {"numbers": [6, 4], "target": 24}) == 1.0
    assert fn(RIGHT, '{"numbers": [6, 4], "target": 24}', None) == 1.0
    with pytest.raises(MissingColumnError, match="lacks"):
        fn(RIGHT, {"target": 24})


def test_agilerl_single_field_verifier_and_no_field_verifier():
    assert agilerl_reward(BOOM)("x", "gold", "prompt is ignored") == 1.0
    assert agilerl_reward("format")(RIGHT, None, None) == 1.0


def test_agilerl_unscored_raises_unless_told():
    with pytest.raises(ValueError, match="could not score"):
        agilerl_reward("countdown")(RIGHT, "n/a", [6, 4])
    assert agilerl_reward("countdown", on_unscored=-1.0)(RIGHT, "n/a", [6, 4]) == -1.0
    assert math.isnan(agilerl_reward("countdown", on_unscored="nan")(RIGHT, "n/a", [6, 4]))
    with pytest.raises(ValueError):
        agilerl_reward("countdown", on_unscored="zero")


def test_agilerl_crash_propagates():
    with pytest.raises(ZeroDivisionError):
        agilerl_reward(BOOM)("crash", "gold", None)


def test_agilerl_field_mapping_validation():
    fn = agilerl_reward("countdown", solution_field="numbers", prompt_field="target")
    assert fn(RIGHT, [6, 4], 24) == 1.0
    with pytest.raises(ValueError, match="not a field"):
        agilerl_reward("countdown", solution_field="answer")
    assert compose("countdown").fields == ("numbers", "target")
