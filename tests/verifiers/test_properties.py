"""Property-based tests (hypothesis) over every registered verifier: arbitrary text never raises
and always returns a well-formed Verdict; constructed right answers verify correct.

Latency is not asserted here (a timing assertion on a shared machine is a flaky test): the worst
adversarial latency per verifier (bound 1 s) is measured and recorded by
``benchmarks/bench_verifiers.py``, which runs the ADVERSARIAL inputs below among its own."""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reasonkit.verifiers import Verdict, get_verifier, is_error, resolve, verifier_names
from reasonkit.verifiers.math import DEFAULT_TIMEOUT as _MATH_TIMEOUT

NAMES = verifier_names()
TIME_BOUND_S = 1.0  # the benchmark's per-call bound


def test_math_deadline_leaves_room_in_the_bound():
    # the math verifier's own deadline (gold parse + parse + verify) must fit the 1 s bound with room
    # for the clean-up after it; the benchmark measures the latency itself
    assert 0 < _MATH_TIMEOUT <= 0.9 * TIME_BOUND_S, _MATH_TIMEOUT


# No hypothesis deadline: latency is the benchmark's job (see the module docstring).
PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                 derandomize=True)

FRAGMENTS = [
    "<think>", "</think>", "<answer>", "</answer>", "<answer></answer>", "\n", " ", "####", "#### ",
    "\\boxed{", "}", "{", "\\frac{", "}{", "\\sqrt{", "\\left(", "\\right)", "$", "$$", "\\(", "\\)",
    "^", "_", "\\pi", "\\infty", "\\text{", "\\dfrac", "\\cdot", "\\times", "\\div", "=", "+", "-", "*", "/",
    "**", "(", ")", "<<", ">>", "%", ",", ".", "1,000", "−", "×", "÷", "The answer is ", "0", "1", "7", "42",
    "3.14", "1e308", "9**9**9", "x", "y", "\\begin{pmatrix}", "\\end{pmatrix}", "&", "\\\\", "[", "]",
]
mixed_text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), max_size=40).map("".join)
any_text = st.one_of(st.text(max_size=300), mixed_text)


def _reference_strategy(field: str) -> st.SearchStrategy:
    if field == "numbers":
        return st.lists(st.integers(min_value=-5, max_value=200), min_size=0, max_size=7)
    if field == "target":
        return st.one_of(st.integers(min_value=-1000, max_value=10_000), st.sampled_from(["24", "x", ""]))
    if field == "answer":  # a plain number, a GSM8K solution, a LaTeX answer, or junk
        return st.one_of(
            st.integers(-10**6, 10**6).map(str),
            st.integers(0, 10**4).map(lambda n: f"She pays 2 * 3 = <<2*3=6>>6 dollars.\n#### {n}"),
            st.sampled_from(["\\frac{1}{2}", "\\left( 3, \\frac{\\pi}{2} \\right)", "x^2+1", "\\text{(C)}",
                             "10\\%", "\\sqrt{2}", "", "####"]),
            any_text,
        )
    return any_text


def _check(verdict, what):
    assert isinstance(verdict, Verdict), f"{what}: returned {type(verdict).__name__}, not a Verdict"
    assert isinstance(verdict.score, (int, float)) and not math.isnan(verdict.score), what
    assert verdict.correct in (True, False, None), what
    assert isinstance(verdict.reason, str) and verdict.reason, what
    assert not is_error(verdict.reason), f"{what}: verifier reported its own crash: {verdict.details}"


def test_suite_is_registered():
    expected = {"countdown", "format", "format_soft", "gsm8k", "gsm8k_flexible", "stepwise", "math"}
    assert expected <= set(NAMES), f"not registered: {sorted(expected - set(NAMES))}"


COMPOSITES = ["countdown+0.5*format", "gsm8k+0.2*format_soft"]


@pytest.mark.parametrize("name", NAMES + COMPOSITES)
def test_arbitrary_text_never_raises(name):
    spec = resolve(name)

    @PROPS
    @given(completion=any_text, data=st.data())
    def prop(completion, data):
        refs = {f: data.draw(_reference_strategy(f), label=f) for f in spec.fields}
        _check(spec(completion, **refs), f"{name}({completion!r:.80}, {refs!r:.80})")

    prop()


ADVERSARIAL = {
    "power_tower": "<answer>9**9**9**9</answer>",
    "big_literal": "<answer>" + "9" * 100_000 + "</answer>",
    "nested_parens": "<answer>" + "(" * 10_000 + "1" + ")" * 10_000 + "</answer>",
    "one_megabyte": "<think>" + ("2 + 2 = 4. " * 100_000)[:1_000_000] + "</think>\n<answer>4</answer>",
    "think_repeated": "<think>" * 100_000 + "<answer>1</answer>",
    "deep_latex": "\\boxed{" + "\\frac{1}{" * 2_000 + "2" + "}" * 4_001,
    # a model stuck in a loop; a brace-matching scan from every start is quadratic here
    "boxed_unclosed_x2000": "\\boxed{" * 2_000,
    "answer_unclosed_x100k": "<answer>" * 100_000,
    "calc_notes_x10k": "<<48/2=24>>" * 10_000,
}


@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
@pytest.mark.parametrize("name", NAMES + COMPOSITES[:1])
def test_adversarial_inputs_give_a_verdict(name, case):
    spec = resolve(name)
    refs = {"numbers": [9, 9, 9, 9], "target": 24, "answer": "#### 4"}
    verdict = spec(ADVERSARIAL[case], **{f: refs.get(f, "4") for f in spec.fields})
    _check(verdict, f"{name} on {case}")
    if name == "stepwise":  # right arithmetic scores by its share of right steps; a repeat counts once
        assert verdict.details["n_steps"] <= 2
    else:
        assert verdict.score == 0.0 or case == "one_megabyte", f"{name} pays {verdict.score} on {case}"


# --- countdown: random tasks; an equation built from the numbers and evaluated exactly is correct ---

@st.composite
def countdown_task(draw):
    numbers = draw(st.lists(st.integers(1, 100), min_size=2, max_size=6))
    order = draw(st.permutations(numbers))
    ops = draw(st.lists(st.sampled_from("+-*/"), min_size=len(numbers) - 1, max_size=len(numbers) - 1))
    expr, value = str(order[0]), Fraction(order[0])
    for op, n in zip(ops, order[1:]):  # left to right, fully parenthesised: exact value known
        if op == "/" and n == 0:
            op = "+"
        value = {"+": value + n, "-": value - n, "*": value * n, "/": value / n}[op]
        expr = f"({expr} {op} {n})"
    return numbers, expr, value


def _need(name):
    if name not in NAMES:
        pytest.skip(f"verifier {name!r} not registered yet")
    return get_verifier(name)


@PROPS
@given(task=countdown_task())
def test_countdown_constructed_equation(task):
    spec = _need("countdown")
    numbers, expr, value = task
    completion = f"<think>try it</think>\n<answer>{expr}</answer>"
    if value.denominator == 1:
        verdict = spec(completion, numbers=numbers, target=int(value))
        _check(verdict, f"countdown {expr} = {value}")
        assert verdict.correct is True, (expr, numbers, value, verdict)
    # off by one is never correct
    wrong = int(value) + 1
    verdict = spec(completion, numbers=numbers, target=wrong)
    _check(verdict, f"countdown {expr} vs {wrong}")
    assert verdict.correct is False, (expr, numbers, wrong, verdict)


@PROPS
@given(numbers=st.lists(st.integers(1, 100), min_size=2, max_size=6), target=st.integers(1, 1000),
       body=mixed_text)
def test_countdown_random_tasks(numbers, target, body):
    spec = _need("countdown")
    for completion in (body, f"<answer>{body}</answer>"):
        verdict = spec(completion, numbers=numbers, target=target)
        _check(verdict, f"countdown({completion!r:.80})")


@PROPS
@given(n=st.integers(-10**9, 10**9), style=st.sampled_from(["tag", "hash", "boxed", "sentence"]))
def test_gsm8k_right_answer_in_every_style(n, style):
    text = {"tag": f"<think>so</think>\n<answer>{n}</answer>", "hash": f"Work.\n#### {n}",
            "boxed": f"So $\\boxed{{{n}}}$.", "sentence": f"... The answer is {n}."}[style]
    for name in ("gsm8k", "gsm8k_flexible"):
        spec = _need(name)
        verdict = spec(text, answer=f"Steps.\n#### {n}")
        _check(verdict, f"{name}({text!r})")
        assert verdict.correct is True, (name, text, verdict)
        verdict = spec(text, answer=str(n + 1))
        assert verdict.correct is False, (name, text, verdict)


@st.composite
def arithmetic_steps(draw):
    """Lines ``A op B = C`` with exact integer results (division only when it divides evenly)."""
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        a, b = draw(st.integers(0, 10_000)), draw(st.integers(1, 500))
        op = draw(st.sampled_from(["+", "-", "*", "×", "/"]))
        if op == "/":
            a = a - a % b
        value = {"+": a + b, "-": a - b, "*": a * b, "×": a * b, "/": a // b}[op]
        if (a, op, b) not in {line[:3] for line in lines}:  # a repeated step counts once (tested in test_stepwise)
            lines.append((a, op, b, value))
    return lines


@PROPS
@given(steps=arithmetic_steps(), wrong=st.data())
def test_stepwise_counts_right_and_wrong_steps(steps, wrong):
    spec = _need("stepwise")
    text = "\n".join(f"Then {a:,} {op} {b} = {v:,}." for a, op, b, v in steps)
    verdict = spec(f"<think>\n{text}\n</think>\n<answer>{steps[-1][3]}</answer>")
    _check(verdict, f"stepwise({text!r})")
    assert verdict.correct is True and verdict.score == 1.0, (text, verdict)
    assert verdict.details["n_steps"] == verdict.details["n_correct"] == len(steps)
    # break one step: off by one in the claimed result
    k = wrong.draw(st.integers(0, len(steps) - 1), label="broken step")
    broken = [(a, op, b, v + 1 if i == k else v) for i, (a, op, b, v) in enumerate(steps)]
    text = "\n".join(f"Then {a:,} {op} {b} = {v:,}." for a, op, b, v in broken)
    verdict = spec(f"<think>\n{text}\n</think>")
    assert verdict.correct is False and verdict.details["n_correct"] == len(steps) - 1, (text, verdict)
    assert verdict.score == pytest.approx((len(steps) - 1) / len(steps))
