"""MATH-style answer verifier (LaTeX, ``\\boxed{}``) built on math-verify, with timeouts that work
in threads and worker processes.

Policy:

* **Gold**: the ``answer`` field as MATH-500 writes it (``\\frac{1}{2}``, ``\\left( 3, \\frac{\\pi}{2}
  \\right)``, ``\\text{(C)}``, ...). It is wrapped in ``$\\boxed{...}$`` as math-verify recommends
  (left alone when it already holds a ``\\boxed``) and parsed with math-verify's default LaTeX +
  expression extraction. A gold that does not parse -> ``correct=None``, reason ``bad_gold``. Parsed
  golds are cached (a gold is scored once per sample of its item); a parse cut short by the deadline
  is not cached.
* **Prediction**: only the *final answer* is read, never numbers met on the way. math-verify's own
  extraction takes any LaTeX or number in the text when it finds nothing better, so a completion whose
  reasoning says 18 and whose ``<answer>`` says 19 would pass against gold 18; here the answer span is
  picked first (by the linear scans of :mod:`._extract`) and math-verify parses only that span:

  1. the completion is normalised (NFKC, invisible format characters removed) and cut by the
     think-block contract of :mod:`._reply` (POLICY, classes 1 and 5): the text after the last
     closing reasoning tag (``</think>``, ``</reasoning>``, ... or ``reasoning_tags=``; the whole
     completion when there is none) is the *reply*, up to an end-of-turn token or an invented next
     question (:func:`._final.own_turn`), without sentences that pose a hypothetical or address a
     grader (:func:`._final.drop_asides`); a reasoning block that never closes has no reply
     (``unclosed_reasoning``, ``details["source"] = "unclosed_think"``): it was cut off while
     reasoning, and numbers met on the way are not its answer;
  2. the reply's last ``<answer>...</answer>`` block (``details["source"] = "answer_tag"``): its last
     ``\\boxed{}`` when it holds one, else its content with outer ``$``/``\\(``/``\\[`` delimiters, a
     trailing period and Markdown bold removed, read as ``$\\boxed{content}$`` (the form the gold is
     read in); when that yields no expression, math-verify's default extraction over the block's
     content alone. A block with words in it (``the answer is 7``, ``18 dollars``) is read the other
     way round: math-verify's extraction first, then the boxed form. An empty block -> ``no_answer``;
  3. else the reply's last ``\\boxed{}`` / ``\\fbox{}`` (``"boxed"``), read as ``$\\boxed{...}$``; an
     empty box -> ``no_answer``. math-verify ranks ``\\boxed`` with "final answer ... is" (priority
     50, rightmost wins) below only "final answer is $X$. I hope" (0); we take the box;
  4. else the reply's plain-text answer statement (``"text"``; or of what follows its last
     ``<answer>`` when that block was never closed: the completion was cut off), found by the SAME
     claims machinery as gsm8k (:func:`._claims.statement`; POLICY, issue 26 classes 2 and 3):
     the chosen marker's claim ("the final answer is", "Final Answer:", ``####``) read from the
     start of its paragraph to the end of its sentence -- so a sign-off after it ("I'm happy to
     help with 2 or 3 more.") is never read -- else the reply without its sign-offs; math-verify's
     default extraction parses that text. A claim that a correction ("wait", "actually", "I made a
     mistake") retracts gives way to the later claim, also when the retracted answer was boxed
     (``$\\boxed{21}$ ... Wait, I made a mistake. The answer is 31.`` reads 31). A claim that gsm8k's
     number reader reads as one compound quantity (``18 dollars and 50 cents``, ``2 hours and 30
     minutes``) is that value (18.50, 2.5; ``details["compound"]``), never its first number; its
     other-unit reading (1850 cents, 150 minutes) is not tried (gsm8k's is).

  Nothing extracted -> reason ``no_answer`` (wrong).
* **Several answers and hedges** (anti-hacking; POLICY, class 3): the reply's boxes (or its
  ``<answer>`` blocks) that no correction ("wait", "actually", "correcting", "I made a mistake")
  retracts are its claims. For a gold with one part, two claims with different values (``either
  $\\boxed{4}$ or $\\boxed{5}$``) or one claim that lists several simple answers (``\\boxed{14, 16}``,
  ``\\boxed{4 \\text{ or } 5}``, ``\\boxed{40 \\pm 5}``) are ``ambiguous`` (wrong; ``details["candidates"]``).
  In a plain-text statement (step 4) the gsm8k rules apply: an unretracted second claim with a
  different value ("The final answer is 21. ... The answer is 31."), a hedge on a plain number
  ("5 or 1", "at least 12", "18. Or maybe 20.") and a LaTeX answer offered with another
  ("$210$, though it could also be $219$", "$x = 2$ or $x = 5$") are ``ambiguous``; gsm8k's
  number rules are not applied to a LaTeX or algebraic answer (``\\frac{270}7``, ``1 - 12i``)
  unless a hedge word offers the alternative (``2516_8, or maybe 2517_8``: ``ambiguous``).
  For a multi-part gold (a comma, ``\\pm``, "or", an interval or set), several boxes are compared as
  the tuple they form (``$x=\\boxed{2}$, $y=\\boxed{5}$`` against ``(2,5)``). A span longer than :data:`MAX_CHARS` (2,000)
  is cut to its last :data:`MAX_CHARS` characters (``details["truncated"]``): answers sit at the
  end, and some of math-verify's regexes take time growing with the square of the text (5,000
  characters of ``\\(`` cost 0.4 s in one regex call, which no signal can interrupt).
* **Fast path**: when the gold and the chosen span are both integers, fractions, simple radicals
  or short tuples of those (most MATH-500 golds), they are compared exactly without math-verify
  (:mod:`._mathfast`; ``details["path"] = "fast"``), giving math-verify's verdict: anything it
  cannot decide with certainty (a float that is not exactly equal, reordered tuples, anything
  else) goes to math-verify. A unit after the number or a unit command (``6\\,\\mathrm{m}``,
  ``30\\,\\mathrm{s}``, ``12 \\text{ cm}``) always goes to math-verify (POLICY, class 7).
  Its wider rules (W1-W5 of :mod:`._mathfast`) also settle wrong answers that would cost
  math-verify a sympy ``simplify``: a number against a non-constant polynomial in a variable
  (``2k``, ``15x - 80``, ``\\cot x``; :mod:`._mathpoly`), an equation answer by its right side, and
  a simple number against a gold that math-verify's cached parse shows to be a set or interval, a
  non-constant polynomial, or a number a clear gap away (:mod:`._mathgold`: facts computed once
  per gold, with the parse and under its deadline, and cached with it).
  ``benchmarks/bench_verifiers.py`` checks the two agree on every row of its MATH-500 corpus and
  records the throughput; ``tests/verifiers/test_verifier_classes.py`` checks them on unit forms.
* **Comparison**: ``math_verify.verify(gold, prediction)`` with its defaults (numeric tolerance,
  symbolic equality, sets, intervals, matrices, ``\\text`` answers as strings). Verdicts are
  math-verify's own on the chosen span; we only add the bounds below.
* **Timeouts**: one deadline, :data:`DEFAULT_TIMEOUT` (0.9 s), for gold parse + prediction parse +
  verify together, so that a verdict -- ``timeout`` included -- comes back within the 1 s per
  completion of the issue. The slowest MATH-500 item (an interval with ``\\pi^2`` ends, its gold
  not yet cached) needs ~0.15 s of CPU: 0.25-0.3 s of wall time on a shared 2-core machine, ~0.6-0.8 s
  when it is oversubscribed 3-4 times over. The deadline is wall time. math-verify bounds each call
  with ``signal.alarm``, which raises ``ValueError`` off the main thread (Math-Verify issues #50 and
  #55), so we call it with its timeouts disabled (``parsing_timeout=None, timeout_seconds=None``) and
  enforce the deadline ourselves with :mod:`._deadline`: a ``SIGALRM`` timer in the main thread of a
  process (scripts, ``ProcessPoolExecutor`` / multiprocessing workers), else a pooled helper
  process (``python -m reasonkit.verifiers._math_worker``) that is killed at the deadline.

  A timeout -> ``correct=None``, reason ``timeout``. ``timeout=None`` (or ``<= 0``) disables the bound.
  Known limits: a single non-interruptible C call (one regex over :data:`MAX_CHARS` characters:
  tens of ms) delays the verdict past the deadline by its own length; on a machine oversubscribed
  more than ~4 times, a legitimate answer can run into the (wall-time) deadline -- pass a larger
  ``timeout`` there.
"""
from __future__ import annotations

import logging
import re
import time
from functools import lru_cache
from typing import Any

from ._deadline import MAX_WORKERS, NO_SIGNALS, call_in_worker, call_with_alarm, can_use_alarm, shutdown_workers
from ._mathfast import boxed_span, fast_verdict, kind, same_text, simple_answer
from ._mathgold import GoldFacts, gold_facts
from ._mathpoly import nonconstant, read_polynomial
from ._mathspan import AMBIGUOUS, MAX_CHARS, UNCLOSED_REASONING, hedge, multi_part, prediction_spans
from .base import BAD_GOLD, CORRECT, NO_ANSWER, NOT_EQUAL, TIMEOUT, Verdict, register

__all__ = ["verify_math", "gold_to_latex", "prediction_spans", "DEFAULT_TIMEOUT", "MAX_CHARS",
           "MAX_WORKERS", "shutdown_workers"]

#: Seconds for gold parse + prediction parse + verify together; under the issue's 1 s per completion
#: with room for the handler's latency and the clean-up after it.
DEFAULT_TIMEOUT = 0.9
_WORKER_MODULE = "reasonkit.verifiers._math_worker"
_GOLD_CACHE_SIZE = 4096

_mv: Any = None


def _math_verify():
    """Import math-verify lazily (it pulls in sympy: ~1 s) and silence its 'timeout disabled' warning,
    which is expected here because we enforce the deadline ourselves."""
    global _mv
    if _mv is None:
        import math_verify
        import math_verify.grader
        import math_verify.parser

        math_verify.parser.TIMEOUT_WARNING_SHOWN = True
        math_verify.grader.TIMEOUT_WARNING_SHOWN = True
        logging.getLogger("math_verify").setLevel(logging.ERROR)
        _mv = math_verify
        _warm_up()
    return _mv


def _warm_up() -> None:
    """First use compiles math-verify's regexes and builds the LaTeX parser and the sympy pieces a
    tuple / interval / pi answer needs (~0.5 s): done once here, outside any deadline, so that the
    first real call's budget is its own."""
    _score_unbounded(["$\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$"], "\\left[ 3, \\frac{\\pi}{2} \\right)",
                     on_gold=None)
    _score_unbounded(["x = 1.5"], "\\frac{3}{2}", on_gold=None)
    _score_unbounded(["$\\boxed{x^2+2x+1}$"], "(x+1)^2", on_gold=None)  # sympy's polynomial code


def gold_to_latex(answer: Any) -> str:
    """The gold answer as math-verify wants it: ``$\\boxed{...}$``."""
    s = str(answer).strip()
    if "\\boxed" in s:
        return s if "$" in s else f"${s}$"
    if s.startswith("$") and s.endswith("$") and len(s) > 1:
        s = s.strip("$")
    return f"$\\boxed{{{s}}}$"


# ------------------------------------------------------------------------------------ unbounded work
_gold_cache: dict[str, list] = {}
_gold_facts: dict[str, GoldFacts | None] = {}  # what the fast path may rely on (._mathgold), per gold


def _parse_gold(answer: str) -> list:
    """Parsed gold, cached. The caller stores it with :func:`_remember_gold` only when the parse
    finished before the deadline (a parse cut short may have come back empty)."""
    hit = _gold_cache.get(answer)
    if hit is not None:
        return hit
    return _math_verify().parse(gold_to_latex(answer), parsing_timeout=None)


def _remember_gold(answer: str, gold: list, deadline: float | None = None) -> None:
    """Cache the parsed gold with its facts (:func:`._mathgold.gold_facts`, computed here: under the
    caller's deadline), unless ``deadline`` (``time.monotonic``) has passed by then."""
    if answer not in _gold_cache:
        facts = gold_facts(gold)
        if deadline is not None and time.monotonic() >= deadline:
            return
        if len(_gold_cache) >= _GOLD_CACHE_SIZE:
            old = next(iter(_gold_cache))  # oldest first (dicts keep insertion order)
            _gold_cache.pop(old, None)
            _gold_facts.pop(old, None)
        _gold_cache[answer] = gold
        _gold_facts[answer] = facts


def _score_unbounded(texts: list[str], answer: str,
                     on_gold=_remember_gold) -> tuple[bool | None, str | None, str, dict]:
    """(correct, extracted, reason, details) with no time bound -- callers add one.

    ``texts`` are the spans of :func:`prediction_spans`, tried in order: the first that math-verify
    parses to an expression wins; else the first that gave only a string (compared as a string).
    """
    mv = _math_verify()
    gold = _parse_gold(answer)
    if on_gold is not None:
        on_gold(answer, gold)
    if not gold:
        return None, None, BAD_GOLD, {}
    pred: list = []
    for text in texts:
        parsed = mv.parse(text, parsing_timeout=None)
        if parsed and not isinstance(parsed[0], str):
            pred = parsed
            break
        if parsed and not pred:
            pred = parsed
    if not pred:
        return False, None, NO_ANSWER, {}
    # parse() returns [sympy object, matched string]; show the string (str(sympy) can be slow)
    extracted = pred[-1] if isinstance(pred[-1], str) else str(pred[0])
    ok = bool(mv.verify(gold, pred, timeout_seconds=None))
    return ok, extracted[:500], CORRECT if ok else NOT_EQUAL, {}


# ---------------------------------------------------------------------------------------- deadlines
def _forget_interrupted_parses() -> None:
    """math-verify memoises its last LaTeX / expression parses; one cut short by the deadline (its
    exception swallowed half-way) must not be reused."""
    from math_verify import parser

    for fn in (getattr(parser, "parse_latex_cached", None), getattr(parser, "parse_expr_cached", None)):
        if fn is not None and hasattr(fn, "cache_clear"):
            fn.cache_clear()


def _score_with_alarm(texts: list[str], answer: str, timeout: float):
    """The result, None on timeout, or NO_SIGNALS (see :func:`._deadline.call_with_alarm`)."""

    def work(deadline: float):
        def remember_gold_in_time(ans: str, gold: list) -> None:
            if time.monotonic() < deadline:
                _remember_gold(ans, gold, deadline)

        return _score_unbounded(texts, answer, on_gold=remember_gold_in_time)

    return call_with_alarm(work, timeout, on_cut=_forget_interrupted_parses)


def _score_in_worker(texts: list[str], answer: str, timeout: float):
    res = call_in_worker(_WORKER_MODULE, {"texts": texts, "answer": answer}, timeout)
    return None if res is None else tuple(res)


# ----------------------------------------------------------------------------------------- verifier
_ASSIGNED_GOLD = re.compile(r"^[A-Za-z]=([^=]+)$")


@lru_cache(maxsize=4096)
def _simple_gold(answer: str) -> tuple:
    """(simple form, kind, a non-constant polynomial) of a gold's text (:mod:`._mathfast`, :mod:`._mathpoly`)."""
    s = answer.strip()
    return simple_answer(s), kind(s), nonconstant(read_polynomial(s))


def _fast(answer: str, texts: list[str]) -> tuple[bool, str] | None:
    """The fast path (:mod:`._mathfast`): exact simple answers, a number against another kind of
    answer, its wider rules, or the gold's own text; a gold that is no simple number only once
    math-verify has parsed it (a gold it cannot parse stays ``bad_gold``), with the facts about that
    parse (:mod:`._mathgold`)."""
    simple, gold_kind, gold_nonconstant = _simple_gold(answer)
    span = boxed_span(texts)
    assigned = _ASSIGNED_GOLD.match(answer.replace(" ", ""))
    if assigned and span is not None and "=" not in span:  # gold "x=5": math-verify compares its right side
        simple, gold_kind, gold_nonconstant = _simple_gold(assigned.group(1))
    facts = None
    if simple is None:
        if not _gold_cache.get(answer):
            return None  # a gold math-verify has not parsed yet may be bad_gold: let it decide once
        if span is not None and same_text(span, answer):
            return True, span.strip()
        facts = _gold_facts.get(answer)
    return fast_verdict(simple, texts, gold_kind, facts, gold_nonconstant)


def verify_math(completion: str, answer, *, timeout: float | None = DEFAULT_TIMEOUT, fast: bool = True,
                reasoning_tags=None) -> Verdict:
    """MATH-style final answer checked by math-verify (``<answer>`` tag, ``\\boxed{}``, LaTeX), with
    a working timeout.

    Score 1.0 when math-verify finds the completion's final answer equal to the gold. ``correct=None``
    with reason ``bad_gold`` or ``timeout`` when it could not be scored. ``fast=False`` sends every
    pair to math-verify (the fast path's reference). See the module docstring.
    """
    if not isinstance(completion, str):
        completion = "" if completion is None else str(completion)
    if answer is None or not str(answer).strip():
        return Verdict(0.0, None, None, BAD_GOLD, {})
    answer = str(answer)
    source, texts, details = prediction_spans(completion, reasoning_tags)
    if source == "unclosed_think":
        return Verdict(0.0, False, None, UNCLOSED_REASONING, details)
    if not multi_part(answer):
        boxes = details.get("answers")
        span = boxed_span(texts) if texts else None
        candidates = boxes or details.get("afterthought") or details.get("claims") or (
            hedge(span if span is not None else texts[0]) if texts else None)
        if candidates:
            details["candidates"] = candidates[:8]
            return Verdict(0.0, False, (span or texts[0])[:500], AMBIGUOUS, details)
    elif details.get("answers"):  # a multi-part gold written as several boxes: compared as their tuple
        texts = [f"$\\boxed{{{', '.join(details['answers'])}}}$"]
    quick = _fast(answer, texts) if fast else None
    if quick is not None:
        details["path"] = "fast"
        return Verdict(1.0 if quick[0] else 0.0, quick[0], quick[1][:500], CORRECT if quick[0] else NOT_EQUAL,
                       details)
    if timeout is None or timeout <= 0:
        res, how = _score_unbounded(texts, answer), "unbounded"
    elif can_use_alarm():
        _math_verify()  # the one-time import and warm-up (~1.5 s) are not charged to the deadline
        res, how = _score_with_alarm(texts, answer, float(timeout)), "alarm"
        if res is NO_SIGNALS:
            res, how = _score_in_worker(texts, answer, float(timeout)), "worker"
    else:
        res, how = _score_in_worker(texts, answer, float(timeout)), "worker"
    details["deadline"] = how
    if res is None:
        details["timeout_s"] = timeout
        return Verdict(0.0, None, None, TIMEOUT, details)
    correct, extracted, reason, extra = res
    details.update(extra)
    return Verdict(1.0 if correct else 0.0, correct, extracted, reason, details)


register("math", verify_math, fields=("answer",),
         description="MATH-style final answer (<answer> tag, \\boxed{}, LaTeX) checked by math-verify, "
                     "with thread-safe timeouts")
