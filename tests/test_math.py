"""math verifier: regression table, agreement with plain math-verify, and timeouts that work in the
main thread, in other threads and in worker processes."""
from __future__ import annotations

import concurrent.futures as cf
import signal
import threading
import time

import pytest

from reasonkit.verifiers import get_verifier, verify_math
from reasonkit.verifiers.base import BAD_GOLD, CORRECT, NO_ANSWER, NOT_EQUAL, TIMEOUT
from reasonkit.verifiers.math import gold_to_latex, shutdown_workers

# Makes sympy evaluate a power tower: math-verify never returns on it by itself.
SLOW = r"The answer is $\boxed{9^{9^{9^{9}}}}$"

# (id: why the case exists, completion, gold, reason)
CASES = [
    ("frac_vs_decimal", r"So $\boxed{0.5}$.", r"\frac{1}{2}", CORRECT),
    ("dfrac_short", r"$\boxed{\dfrac12}$", r"\frac{1}{2}", CORRECT),
    ("sqrt_simplified", r"$\boxed{2\sqrt{2}}$", r"\sqrt{8}", CORRECT),
    ("sqrt_wrong", r"$\boxed{10}$", r"10\sqrt{2}", NOT_EQUAL),
    ("sqrt_in_frac", r"$\boxed{\frac{\sqrt{3}}{2}}$", r"\frac{\sqrt3}{2}", CORRECT),
    ("interval_same", r"$\boxed{(1, 2]}$", r"(1,2]", CORRECT),
    ("interval_open_closed_swapped", r"$\boxed{[1, 2)}$", r"(1,2]", NOT_EQUAL),
    ("interval_infinity_membership", r"$\boxed{x \in (-\infty, 3)}$", r"(-\infty, 3)", CORRECT),
    ("set_order_irrelevant", r"$\boxed{\{1, 2, 3\}}$", r"\{3,2,1\}", CORRECT),
    ("list_order_irrelevant", r"$\boxed{3, 2, 1}$", r"1,2,3", CORRECT),
    ("text_answer", r"$\boxed{\text{Evelyn}}$", r"\text{Evelyn}", CORRECT),
    ("text_answer_without_text_macro", r"$\boxed{Evelyn}$", r"\text{Evelyn}", CORRECT),
    ("multiple_choice_letter", r"$\boxed{C}$", r"\text{(C)}", CORRECT),
    ("degrees", r"$\boxed{30^\circ}$", r"30^\circ", CORRECT),
    ("degrees_dropped", r"$\boxed{30}$", r"30^\circ", CORRECT),
    ("text_unit_in_answer", r"$\boxed{5\text{ cm}}$", "5", CORRECT),
    ("polynomial_expanded", r"$\boxed{x^2+2x+1}$", r"(x+1)^2", CORRECT),
    ("pi_symbolic", r"$\boxed{\pi}$", r"\pi", CORRECT),
    ("pi_approximation_rejected", r"$\boxed{3.14}$", r"\pi", NOT_EQUAL),
    ("assignment_rhs", r"$\boxed{x = 5}$", "5", CORRECT),
    ("equation_answer", r"$\boxed{y=2x+3}$", r"y = 2x + 3", CORRECT),
    ("percent_pred", r"$\boxed{50\%}$", "50", CORRECT),
    ("matrix", r"$\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}$", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", CORRECT),
    ("thousands_comma", r"$\boxed{1,000}$", "1000", CORRECT),
    ("dollar_in_box", r"$\boxed{\$18}$", "18", CORRECT),
    ("imaginary_unit", r"$\boxed{i}$", "i", CORRECT),
    ("last_boxed_wins", r"First $\boxed{3}$, but correcting: $\boxed{4}$", "4", CORRECT),
    ("plain_text_answer", "The answer is 7", "7", CORRECT),
    ("wrong_number", r"$\boxed{8}$", "7", NOT_EQUAL),
    ("no_answer_text", "no answer here", "7", NO_ANSWER),
    ("empty_box", r"$\boxed{}$", "7", NO_ANSWER),
    ("empty_completion", "", "7", NO_ANSWER),
    ("bad_gold_empty", r"$\boxed{7}$", "", BAD_GOLD),
    ("bad_gold_empty_text", r"$\boxed{7}$", r"\text{}", BAD_GOLD),
    ("bad_gold_whitespace", r"$\boxed{7}$", "   ", BAD_GOLD),
    ("gold_already_boxed", r"$\boxed{7}$", r"\boxed{7}", CORRECT),
]


@pytest.mark.parametrize("completion,gold,reason", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_math_table(completion, gold, reason):
    v = verify_math(completion, gold)
    assert v.reason == reason, v
    assert v.correct is (None if reason == BAD_GOLD else reason == CORRECT)
    assert v.score == (1.0 if reason == CORRECT else 0.0)


def test_agrees_with_plain_math_verify():
    """Same verdicts as math-verify's own parse + verify (its recommended gold wrapping)."""
    from math_verify import parse, verify

    compared = 0
    for _, completion, gold, reason in CASES:
        if reason == BAD_GOLD:
            continue
        g = parse(gold_to_latex(gold))
        expected = bool(g) and verify(g, parse(completion))
        assert verify_math(completion, gold).correct is expected, (completion, gold)
        compared += 1
    assert compared >= 30


def test_registered():
    spec = get_verifier("math")
    assert spec.fields == ("answer",)
    assert spec(r"$\boxed{\frac{1}{2}}$", answer="0.5").correct is True


def test_huge_completion_truncated_to_tail():
    v = verify_math("blah " * 100_000 + r"$\boxed{42}$", "42")
    assert v.correct is True and v.details["truncated"] is True


# ------------------------------------------------------------------------------------------ timeouts
def test_timeout_main_thread_uses_alarm_and_restores_handler():
    def outer(signum, frame):  # an outer SIGALRM user, e.g. pytest-timeout
        raise AssertionError("outer handler must not fire")

    old = signal.signal(signal.SIGALRM, outer)
    signal.setitimer(signal.ITIMER_REAL, 60)  # an outer timer still running
    try:
        t = time.perf_counter()
        v = verify_math(SLOW, "1", timeout=1)
        assert time.perf_counter() - t < 3
        assert v.reason == TIMEOUT and v.correct is None and v.details["deadline"] == "alarm"
        assert signal.getsignal(signal.SIGALRM) is outer
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 50 < remaining <= 60  # re-armed with what it had left
        assert verify_math(r"$\boxed{2}$", "2", timeout=1).correct is True  # still usable afterwards
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_works_and_times_out_in_threads():
    results: dict[str, object] = {}

    def job(name, completion, gold):
        try:
            results[name] = verify_math(completion, gold, timeout=2)
        except BaseException as e:  # noqa: BLE001 - surfaced by the asserts below
            results[name] = e

    threads = [threading.Thread(target=job, args=("ok", r"$\boxed{\frac{1}{2}}$", "0.5")),
               threading.Thread(target=job, args=("wrong", r"$\boxed{3}$", "0.5")),
               threading.Thread(target=job, args=("slow", SLOW, "1"))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert results["ok"].correct is True and results["ok"].details["deadline"] == "worker", results["ok"]
    assert results["wrong"].reason == NOT_EQUAL, results["wrong"]
    assert results["slow"].reason == TIMEOUT and results["slow"].correct is None, results["slow"]
    # the pool replaced the killed worker: a later call in a thread still works
    with cf.ThreadPoolExecutor(2) as ex:
        verdicts = list(ex.map(lambda c: verify_math(c, "7"), [r"$\boxed{7}$", r"$\boxed{8}$"]))
    assert [v.correct for v in verdicts] == [True, False]
    shutdown_workers()


def _in_process(args):
    completion, gold = args
    v = verify_math(completion, gold, timeout=1)
    return v.correct, v.reason, v.details["deadline"]


def test_works_and_times_out_in_worker_processes():
    jobs = [(r"$\boxed{\frac{1}{2}}$", "0.5"), (SLOW, "1"), (r"$\boxed{3}$", "0.5")]
    with cf.ProcessPoolExecutor(2) as ex:
        out = list(ex.map(_in_process, jobs, timeout=120))
    assert out[0] == (True, CORRECT, "alarm")
    assert out[1] == (None, TIMEOUT, "alarm")
    assert out[2] == (False, NOT_EQUAL, "alarm")


def test_timeout_none_disables_bound():
    v = verify_math(r"$\boxed{2}$", "2", timeout=None)
    assert v.correct is True and v.details["deadline"] == "unbounded"


def _thread_in_forked_child(args):
    completion, gold = args
    out = []
    th = threading.Thread(target=lambda: out.append(verify_math(completion, gold, timeout=5)))
    th.start()
    th.join(120)
    return out[0].correct, out[0].details["deadline"]


def test_forked_child_gets_its_own_helper_processes():
    # the parent already holds a pooled helper process; a forked child using threads must not share it
    parent = []
    th = threading.Thread(target=lambda: parent.append(verify_math(r"$\boxed{1}$", "1")))
    th.start()
    th.join(60)
    assert parent[0].correct is True
    import multiprocessing as mp

    with cf.ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as ex:
        assert ex.submit(_thread_in_forked_child, (r"$\boxed{2}$", "2")).result(timeout=120) == (True, "worker")
    th = threading.Thread(target=lambda: parent.append(verify_math(r"$\boxed{3}$", "3")))
    th.start()
    th.join(60)
    assert parent[1].correct is True  # the parent's helper is intact
    shutdown_workers()
