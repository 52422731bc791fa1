"""GSM8K numeric-answer verifier, in a strict and a flexible mode (as lm-evaluation-harness reports both).

Policy (documented here because it decides rewards):

* **Gold** (the ``answer`` field): a GSM8K solution whose last ``#### N`` line holds the answer, or a
  plain number (``72``, ``1,000``, ``$18``, ``-5``, ``0.5``, ``3/4``). Anything else -> ``correct=None``,
  reason ``bad_gold``.
* **Prediction, strict mode** -- the first of these answer markers that is present *and holds a
  number*, each taken at its **last** occurrence (a model that corrects itself ends with the final
  answer): the last ``<answer>...</answer>`` block; ``#### N``; ``\\boxed{N}``; "the answer is N" /
  "final answer: N" / "Answer: N" (case-insensitive). Inside a marker's span, text after the last
  ``=`` wins (``<answer>48 + 24 = 72</answer>`` -> 72), then the first number in it. No marker ->
  reason ``no_answer`` (a wrong answer: ``correct=False``).
  lm-evaluation-harness' strict-match looks only for ``#### N`` (and takes the first); we accept the
  other explicit markers that reasoning models use and take the last.
* **Flexible mode**: the strict prediction when there is one, else the last number anywhere in the
  completion (lm-evaluation-harness' flexible-extract).
* **Numbers**: commas (``1,000``), currency (``$18``), ``18.00``, ``-5``/``−5`` (Unicode minus),
  ``.5``, fractions ``3/4`` and ``\\frac{3}{4}``, digit groups split by spaces (``1 000``, only exact
  groups of three), trailing units and periods (``18 dollars.``) are all understood, and values are
  compared exactly as fractions (``18 == 18.00``, ``0.75 == 3/4``); no float tolerance, since GSM8K
  golds are exact.
* **Percent**: ``50%`` is read as the number written, 50 -- GSM8K golds are plain numbers, so a
  question asking for a percentage has gold ``50``. ``0.5`` does not match gold ``50``.
* A number with more than ``MAX_DIGITS`` digits is never converted; it is ``not_equal``
  (``details["too_long"]``).

One call reports both modes: the verdict is for the requested ``mode`` and
``details["strict"]`` / ``details["flexible"]`` hold ``{correct, extracted, reason}`` for each.
"""
from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

from ._extract import last_boxed_content, last_tag_content
from ._numbers import NumberMatch, clean_latex, first_number, format_fraction, last_number
from .base import BAD_GOLD, CORRECT, NO_ANSWER, NOT_EQUAL, Verdict, register

__all__ = ["verify_gsm8k", "extract_gsm8k_answer", "parse_gsm8k_gold"]

_MODES = ("strict", "flexible")
_ANSWER_IS = re.compile(
    r"(?:\b(?:final\s+)?answer\s+(?:is|would\s+be|=)|\bfinal\s+answer\s*:|(?:^|\n)[ \t]*\**answer\**\s*:)\s*:?",
    re.IGNORECASE,
)
_SPAN_CHARS = 200  # how far after "the answer is" / "####" we look for the number
_MAX_MENTIONS = 64
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _number_in_span(span: str) -> NumberMatch | None:
    """The answer number in a marker's span: text after the last '=' wins, then its first number."""
    span = clean_latex(span)
    eq = span.rfind("=")
    if eq >= 0:
        m = first_number(span, eq + 1)
        if m is not None:
            return m
    return first_number(span)


def _after_marker(text: str, marker_end: int) -> str:
    """The rest of the line after a marker (bounded)."""
    span = text[marker_end:marker_end + _SPAN_CHARS]
    nl = span.find("\n", 1 if span.startswith("\n") else 0)
    return span if nl < 0 else span[:nl]


def _last_answer_is(text: str) -> int | None:
    """End of the last "the answer is" style marker. Looks only around the last
    :data:`_MAX_MENTIONS` occurrences of "answer", so repeated mentions cannot make it slow."""
    low = text.lower()
    if len(low) != len(text):  # a few Unicode letters change length when lowered: keep offsets
        low = text.translate(_ASCII_LOWER)
    pos = len(low)
    for _ in range(_MAX_MENTIONS):
        pos = low.rfind("answer", 0, pos)
        if pos < 0:
            return None
        m = _ANSWER_IS.search(low, max(0, pos - 12), pos + 40)
        if m is not None and m.end() > pos:
            return m.end()
    return None


def extract_gsm8k_answer(completion: str, flexible: bool = False) -> tuple[NumberMatch | None, str | None]:
    """The predicted number and the marker it came from (``answer_tag``, ``####``, ``boxed``,
    ``answer_is``, ``last_number``), or ``(None, None)``."""
    tag = last_tag_content(completion, "answer")
    if tag is not None:
        m = _number_in_span(tag[-_SPAN_CHARS * 5:])
        if m is not None:
            return m, "answer_tag"
    pos = completion.rfind("####")
    if pos >= 0:
        m = _number_in_span(_after_marker(completion, pos + 4))
        if m is not None:
            return m, "####"
    if "boxed" in completion or "fbox" in completion:
        box = last_boxed_content(completion)
        if box is not None:
            m = _number_in_span(box[-_SPAN_CHARS * 5:])
            if m is not None:
                return m, "boxed"
    last = _last_answer_is(completion)
    if last is not None:
        span = completion[last:last + _SPAN_CHARS]
        m = _number_in_span(span.split("\n\n", 1)[0])
        if m is not None:
            return m, "answer_is"
    if flexible:
        m = last_number(completion)
        if m is not None:
            return m, "last_number"
    return None, None


def parse_gsm8k_gold(answer) -> Fraction | None:
    """Gold value from a GSM8K solution (``... #### 72``) or a plain number (str, int, float);
    None if unparseable."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, (int, Fraction)):
        return Fraction(answer)
    if isinstance(answer, float):
        return Fraction(str(answer)) if answer == answer and abs(answer) != float("inf") else None
    if not isinstance(answer, str):
        return None
    return _parse_gold_text(answer)


@lru_cache(maxsize=8192)
def _parse_gold_text(answer: str) -> Fraction | None:
    pos = answer.rfind("####")
    span = answer[pos + 4:] if pos >= 0 else answer
    span = clean_latex(span.strip().rstrip("."))
    m = first_number(span)
    if m is None or m.value is None:
        return None
    # the gold must be just the number (plus currency/unit words), not e.g. "3 and 4"
    if first_number(span, m.end) is not None:
        return None
    return m.value


def _judge(m: NumberMatch | None, gold: Fraction) -> tuple[bool, str]:
    if m is None:
        return False, NO_ANSWER
    if m.value is not None and m.value == gold:
        return True, CORRECT
    return False, NOT_EQUAL


def _show(m: NumberMatch | None) -> str | None:
    if m is None:
        return None
    return m.text.strip() if len(m.text) <= 100 else m.text[:100] + "..."


def verify_gsm8k(completion: str, answer, *, mode: str = "strict") -> Verdict:
    """GSM8K numeric answer: strict (explicit answer markers) or flexible (else the last number).

    Score 1.0 when the predicted number equals the gold exactly (as fractions), else 0.0. See the
    module docstring for the extraction and number policy.
    """
    if mode not in _MODES:
        raise ValueError(f"gsm8k mode must be one of {_MODES}, got {mode!r}")
    if not isinstance(completion, str):
        completion = "" if completion is None else str(completion)
    strict_m, strict_how = extract_gsm8k_answer(completion, flexible=False)
    if strict_m is not None:
        flex_m, flex_how = strict_m, strict_how
    else:
        flex_m = last_number(completion)
        flex_how = "last_number" if flex_m is not None else None
    gold = parse_gsm8k_gold(answer)
    chosen, how = (strict_m, strict_how) if mode == "strict" else (flex_m, flex_how)
    details = {"mode": mode, "method": how, "value": format_fraction(chosen.value) if chosen else None}
    if chosen is not None and chosen.too_long:
        details["too_long"] = True
    if gold is None:
        details["gold"] = None
        return Verdict(0.0, None, _show(chosen), BAD_GOLD, details)
    details["gold"] = format_fraction(gold)
    results = {}
    for name, m in (("strict", strict_m), ("flexible", flex_m)):
        ok, reason = _judge(m, gold)
        results[name] = {"correct": ok, "extracted": _show(m), "reason": reason}
    details["strict"] = results["strict"]
    details["flexible"] = results["flexible"]
    r = results[mode]
    return Verdict(1.0 if r["correct"] else 0.0, r["correct"], r["extracted"], r["reason"], details)


register("gsm8k", verify_gsm8k, fields=("answer",), mode="strict",
         description="GSM8K numeric answer, strict: <answer>, ####, \\boxed, 'the answer is' markers only")
register("gsm8k_flexible", verify_gsm8k, fields=("answer",), mode="flexible",
         description="GSM8K numeric answer, flexible: the strict markers, else the last number in the text")
