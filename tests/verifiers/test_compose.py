"""Composition: weighted sums of verifiers by name (``countdown+format`` as in the seed recipe)."""
from __future__ import annotations

import pickle

import pytest

from reasonkit.verifiers import (
    CompositeSpec, UnknownNameError, Verdict, VerifierSpec, compose, get_verifier, parse_expression, resolve,
)

GOOD_BOTH = "<think>\n6 * 4 = 24\n</think>\n<answer>6 * 4</answer>"
GOOD_EQ_BAD_FORMAT = "Sure!\n<answer>6 * 4</answer>"
BAD_EQ_GOOD_FORMAT = "<think>\nhmm\n</think>\n<answer>6 + 4</answer>"
BAD_BOTH = "I think it is 6 + 4."
REPEATED = "<think>a</think>\n<answer>6 * 4</answer>\n<think>b</think>\n<answer>6 * 4</answer>"


@pytest.mark.parametrize("expression,weights", [
    ("countdown+format", {"countdown": 1.0, "format": 1.0}),
    ("countdown + 0.5*format", {"countdown": 1.0, "format": 0.5}),
    ("format*0.5+countdown", {"format": 0.5, "countdown": 1.0}),
    ("2 * countdown", {"countdown": 2.0}),
    ("countdown+-0.1*format_soft", {"countdown": 1.0, "format_soft": -0.1}),
    ("1e-1*format", {"format": 0.1}),
    (".5*format", {"format": 0.5}),
    ("+countdown", {"countdown": 1.0}),
], ids=["seed_recipe", "spaces_and_weight", "weight_after_name", "single_weighted", "negative_weight",
        "exponent_weight", "leading_dot_weight", "leading_plus"])
def test_parse_expression(expression, weights):
    assert parse_expression(expression) == weights


@pytest.mark.parametrize("expression,match", [
    ("countdown++format", "empty term"),
    ("countdown+", "empty term"),
    ("0.5*", "cannot read"),
    ("*format", "cannot read"),
    ("countdown format", "cannot read"),
    ("countdown-format", "cannot read"),
    ("0.5*format*2", "cannot read"),
    ("countdown+countdown", "listed twice"),
], ids=["double_plus", "trailing_plus", "weight_without_name", "star_without_weight", "missing_plus",
        "minus_is_not_an_operator", "two_weights", "duplicate_name"])
def test_malformed_expressions(expression, match):
    with pytest.raises(ValueError, match=match):
        compose(expression)


@pytest.mark.parametrize("spec,suggestion", [
    ("countdwn+format", "countdown"),
    ("countdown+fromat", "format"),
    ({"count_down": 1.0}, "countdown"),
], ids=["typo_primary", "typo_second", "typo_in_dict"])
def test_unknown_names_suggest(spec, suggestion):
    with pytest.raises(UnknownNameError, match=f"did you mean '{suggestion}'"):
        compose(spec)


@pytest.mark.parametrize("completion,score,correct,reason", [
    (GOOD_BOTH, 2.0, True, "correct"),
    (GOOD_EQ_BAD_FORMAT, 1.0, True, "correct"),
    (BAD_EQ_GOOD_FORMAT, 1.0, False, "not_equal"),
    (BAD_BOTH, 0.0, False, "no_answer"),
    (REPEATED, 1.0, True, "correct"),  # equation right, strict format pays nothing for repeated blocks
], ids=["both_right_scores_2", "equation_only", "format_only", "neither", "repeated_blocks_lose_format"])
def test_seed_recipe_countdown_plus_format(completion, score, correct, reason):
    spec = compose("countdown+format")
    v = spec(completion, numbers=[6, 4], target=24)
    assert (v.score, v.correct, v.reason) == (score, correct, reason)
    assert set(v.details["components"]) == {"countdown", "format"}
    assert spec.max_score == 2.0


def test_weights_apply_and_component_scores():
    spec = compose({"countdown": 1, "format": 0.5})
    v = spec(BAD_EQ_GOOD_FORMAT, numbers=[6, 4], target=24)
    assert v.score == 0.5 and v.correct is False
    assert spec.component_scores(v) == {"countdown": 0.0, "format": 1.0}
    assert v.details["weights"] == {"countdown": 1.0, "format": 0.5}
    assert v.details["components"]["format"]["reason"] == "correct"
    assert v.extracted == "6 + 4"  # from the primary component


def test_negative_weight_penalty():
    v = compose("countdown+-0.5*format")(GOOD_EQ_BAD_FORMAT.replace("Sure!\n", ""), numbers=[6, 4], target=24)
    assert v.score == 1.0  # format scores 0, so its negative weight takes nothing away
    v = compose("countdown+-0.5*format")(GOOD_BOTH, numbers=[6, 4], target=24)
    assert v.score == 0.5


def test_primary_is_first_component():
    spec = compose("format+countdown")
    v = spec(BAD_EQ_GOOD_FORMAT, numbers=[6, 4], target=24)
    assert v.correct is True and v.reason == "correct" and v.score == 1.0
    assert spec.fields == ("numbers", "target")


# Issue 23 item 7: a term that cannot score contributes 0; only a completion no term can score is
# unscored. (Before: one unscored term made the composite unscored, so under gsm8k+0.2*stepwise a
# right answer without arithmetic left the GRPO loss.)
@pytest.mark.parametrize("expression, completion, fields, score, correct, reason, unscored", [
    ("gsm8k+0.2*stepwise", "The answer is 18.", {"answer": "18"}, 1.0, True, "correct", ["stepwise"]),
    ("gsm8k+0.2*stepwise", "5 + 13 = 18. The answer is 18.", {"answer": "18"}, 1.2, True, "correct", None),
    ("gsm8k+0.2*stepwise", "The answer is 17.", {"answer": "18"}, 0.0, False, "not_equal", ["stepwise"]),
    ("countdown+format", GOOD_BOTH, {"numbers": [6, 4], "target": "not a number"}, 1.0, False,
     "countdown: bad_gold", ["countdown"]),
    ("stepwise+countdown", "no arithmetic here", {"numbers": [6, 4], "target": "x"}, 0.0, None, "no_steps",
     ["stepwise", "countdown"]),
], ids=["no_steps_right_answer", "steps_right_answer", "no_steps_wrong_answer", "primary_unscored",
        "no_term_scores"])
def test_issue23_item7_unscored_term_contributes_zero(expression, completion, fields, score, correct, reason,
                                                       unscored):
    spec = compose(expression)
    v = spec(completion, **fields)
    assert v.score == pytest.approx(score) and v.correct is correct and v.reason == reason
    assert v.scored is (correct is not None)
    assert v.details.get("unscored") == unscored
    scores = spec.component_scores(v)
    assert [name for name, s in scores.items() if s is None] == (unscored or [])


def test_each_component_receives_only_its_fields():
    # format takes no reference fields; passing numbers/target to it would raise TypeError
    v = compose("format+countdown")(GOOD_BOTH, numbers=[6, 4], target=24, answer="ignored")
    assert v.score == 2.0


def test_options_are_bound_per_component():
    prefilled = "6*4 works</think>\n<answer>6 * 4</answer>"
    plain = compose("countdown+format")(prefilled, numbers=[6, 4], target=24)
    bound = compose("countdown+format", options={"format": {"prefilled_think": True}})(
        prefilled, numbers=[6, 4], target=24)
    assert plain.score == 1.0 and bound.score == 2.0
    assert get_verifier("format").options == {"mode": "strict"}  # registry entry untouched
    with pytest.raises(ValueError, match="not a component"):
        compose("countdown", options={"format": {"prefilled_think": True}})


@pytest.mark.parametrize("bad,exc", [
    ({}, ValueError), ({"countdown": "1"}, ValueError), ({"countdown": True}, ValueError), (3, TypeError),
], ids=["empty_dict", "string_weight", "bool_weight", "not_a_spec"])
def test_bad_compose_arguments(bad, exc):
    with pytest.raises(exc):
        compose(bad)


def test_name_and_description():
    assert compose("countdown + 0.5*format").name == "countdown+0.5*format"
    assert compose("countdown+format", name="seed").name == "seed"
    assert "0.5×format" in compose("countdown+0.5*format").description


def test_resolve_accepts_every_form():
    assert resolve("countdown") is get_verifier("countdown")
    assert isinstance(resolve("countdown+format"), CompositeSpec)
    assert isinstance(resolve({"countdown": 1}), CompositeSpec)
    spec = compose("countdown+format")
    assert resolve(spec) is spec
    with pytest.raises(UnknownNameError, match="did you mean 'countdown'"):
        resolve("countdow")
    with pytest.raises(TypeError):
        resolve(42)


def test_composite_pickles():
    spec = compose("countdown+0.5*format")
    again = pickle.loads(pickle.dumps(spec))
    assert again(GOOD_BOTH, numbers=[6, 4], target=24).score == 1.5


def test_composite_of_unregistered_spec_is_not_possible_by_name_but_specs_work_directly():
    def always(completion: str) -> Verdict:
        return Verdict(1.0, True, completion, "correct")

    spec = VerifierSpec("always", always, (), "always right")
    assert resolve(spec) is spec
    with pytest.raises(UnknownNameError):
        compose("always+format")


# --- one resolution API: names, families (prefix:ARG), expressions ----------------------------------
def test_family_prefix_resolves_through_the_one_api():
    from reasonkit.verifiers import VerifierLookupError, Verdict, register_family, resolve, verifier_families
    from reasonkit.verifiers.base import VerifierSpec

    def parity(completion, answer):
        ok = completion.strip() == str(answer)
        return Verdict(float(ok), ok, completion.strip(), "correct" if ok else "not_equal")

    def factory(task):
        if task not in ("even", "odd"):
            raise VerifierLookupError(f"test family has no task {task!r}")
        return VerifierSpec(f"tst:{task}", parity, ("answer",), f"parity task {task}")

    register_family("tst", factory, "test family")
    assert verifier_families()["tst"] == "test family"
    spec = resolve("tst:even")
    assert spec is resolve("tst:even") and spec.fields == ("answer",)  # built once, then cached
    assert spec("4", answer=4).correct is True
    both = resolve("tst:odd+0.5*format")
    assert both.fields == ("answer",) and both("3", answer=3).score == 1.0
    with pytest.raises(VerifierLookupError, match="no task 'three'"):
        resolve("tst:three")
    with pytest.raises(VerifierLookupError, match="did you mean"):
        resolve("tsx:even")
    with pytest.raises(ValueError, match="already registered"):
        register_family("tst", factory)


def test_lookup_errors_are_one_line_value_errors():
    from reasonkit.verifiers import UnknownNameError, VerifierLookupError, resolve

    for bad in ("gsm9k", "countdown++format", "countdown*x", "format+format"):
        with pytest.raises(VerifierLookupError) as info:
            resolve(bad)
        assert isinstance(info.value, ValueError) and "\n" not in str(info.value)
    with pytest.raises(UnknownNameError):  # still a KeyError for callers that catch that
        resolve("gsm9k")


def test_entry_points_resolve_the_same_way():
    from click.testing import CliRunner

    from reasonkit.cli import main
    from reasonkit.errors import ReasonkitError
    from reasonkit.tasks.registry import resolve_verifier
    from reasonkit.verifiers import resolve

    assert resolve_verifier("countdown+0.5*format").fields == resolve("countdown+0.5*format").fields
    with pytest.raises(ReasonkitError, match="did you mean 'gsm8k'"):
        resolve_verifier("gsm9k")
    result = CliRunner().invoke(main, ["verify", "gsm9k", "-"], input='{"completion": "1", "answer": "1"}\n')
    assert result.exit_code == 2 and "did you mean 'gsm8k'" in result.output
