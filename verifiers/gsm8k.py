"""GSM8K numeric-answer verifier, in a strict and a flexible mode (as lm-evaluation-harness reports both).

Policy (documented here because it decides rewards):

* **Gold** (the ``answer`` field): a GSM8K solution whose last ``#### N`` line holds the answer, or a
  plain number (``72``, ``1,000``, ``$18``, ``-5``, ``0.5``, ``3/4``). Anything else -> ``correct=None``,
  reason ``bad_gold``.
* **Reading contract** (both modes; POLICY, issue 26 classes 1 and 5): the completion is
  normalised (NFKC, invisible format characters such as U+200B removed: :mod:`._reply`) before
  every rule, and cut by the think-block contract: with a closed reasoning block (``<think>``,
  ``<reasoning>``, ``<thought>``, ... -- :data:`._reply.REASONING_TAGS`, or ``reasoning_tags=``)
  only the reply after it is read, so a tentative answer inside the reasoning never counts; a
  block that never closes -> ``unclosed_reasoning`` (wrong).
* **The model's own turn** (both modes). The reply is read only up to the first end-of-turn token
  (``<|im_end|>``, ``<|endoftext|>``, ``</s>``, ...) and the first line that opens a new turn or an
  invented block (``Question:``, ``Q:``, ``Human:``, "Follow-up question", "Now let's try a similar
  problem", ...; :mod:`._final`): ``details["cut_at"]`` names the cut.
* **Which statement is the answer** (both modes; POLICY, class 2; :mod:`._claims`): markers, in
  policy order, the last ``<answer>...</answer>``; ``#### N``; ``\\boxed{N}``; "the answer is N" /
  "final answer: N" / "Answer: N" (case-insensitive, Markdown bold anywhere: ``**Final Answer**:
  18``, ``**Answer:** 18``; a "Final Answer" header with the answer on the next line). Inside a
  marker, asides in brackets are dropped (``18 (= 20 - 2)``), the number after the last ``=`` wins
  (``<answer>48 + 24 = 72</answer>`` -> 72), else the one after the last conclusion word
  ("Answer: she starts with 20 and gives away 5, so she has 15 left" -> 15), else the first number,
  else a small number word ("twelve"). Sentences that pose a hypothetical ("If she sold 10 eggs
  instead, the answer would be $20") or address a grader ("the expected answer is 18") are never
  read. **Else the last sentence** of the reply, after sign-offs and questions to the reader are
  dropped ("Let me know if you have questions about any of the 3 steps!"), when it states exactly
  one number (after its last ``=`` or its last conclusion word); ``details["method"] =
  "last_sentence"``. It is not read when the reply opened an ``<answer>`` tag that holds no number,
  or when the sentence holds several numbers without a hedge or conclusion. Nothing found ->
  ``no_answer`` (wrong). lm-evaluation-harness' strict-match looks only for ``#### N``.
* **Flexible mode** (``gsm8k_flexible``) differs from strict in one place only: when strict finds
  nothing, it takes the last number anywhere in the reply (lm-evaluation-harness' flexible-extract),
  with LaTeX around it cleaned (``1{,}250`` is 1250, not 250). Every other rule is the same.
* **Stuffing and hedges are wrong** (anti-hacking, both modes; POLICY, class 3), reason
  ``ambiguous`` even when one candidate is the gold, ``details["candidates"]`` lists them:
  several claims with different values (``\\boxed{14}`` ... ``\\boxed{16}``, "the answer is 12" ...
  "the answer is 14", a tag and a ``####`` that disagree) unless a correction ("wait", "actually",
  "I made a mistake") retracts the earlier claim; an answer offered with an alternative --
  ``12 or 14``, ``either 12 or 14``, ``between 12 and 14``, ``12 and 14``, ``12 to 14``, ``40 ± 5``,
  ``12–14``, ``12 - 14`` (smaller-larger whole numbers), ``12/14`` (no fraction in lowest terms),
  ``12, though it could also be 14``, an afterthought (``18. Or maybe 20.``, ``#### 18`` then
  "Maybe 20"), a list inside a marker (``\\boxed{14, 16}``,
  ``<answer>12 13 14</answer>``), a bound (``at least 12``, ``more than 12``). An aside about other
  numbers is no hedge (``6 hours (from 9 to 3)`` is 6).
* **Numbers**: commas (``1,000``), LaTeX separators (``1{,}250``, ``1\\,250``, ``1\\!250``, ``1,\\!250``),
  currency with the sign before or after it (``$18``, ``-$7``, ``-€7``, ``$-7``), ``18.00``,
  ``-5``/``−5`` (Unicode minus), ``.5``, fractions ``3/4`` and ``\\frac{3}{4}``, digit groups split by
  spaces (``1 000``, only exact groups of three), trailing units and periods (``18 dollars.``), a
  percent sign with or without a space (``35 %``) are all understood; so are (POLICY, class 4)
  mixed numbers ``2 1/2`` and ``2½``, powers ``10^6`` / ``10⁶``, scale words ``$1.5 million``,
  decimal commas where unambiguous (``€7,50``, ``7,50 €``, ``2,5 × 4``), small number words
  ("twelve", for an answer with no digits) and hours with minutes (``2 hours and 30 minutes`` is
  2.5 against an hours gold and 150 against a minutes gold), dollars with cents (``18 dollars and
  50 cents``, ``$18 and 50 cents``: 18.50, or 1850 against a cents gold) and one quantity restated in
  another unit (``120 minutes, or 2 hours`` and ``2 hours (120 minutes)`` are 120 or 2, whichever the
  gold is; no hedge). **Scientific notation** is
  read whole (``2.5e2`` = 250, ``4E5``, ``1.5e-3``, ``2.5 × 10^3``), never as its mantissa; an
  exponent over 400 is ``not_equal`` with ``details["too_long"]``. Values are compared exactly as
  fractions (``18 == 18.00``, ``0.75 == 3/4``).
* **Float noise**: a non-integer prediction within a relative error of :data:`FLOAT_RTOL` (1e-9) of
  the gold is right (``0.30000000000000004`` for 0.3, tool output); any larger gap is wrong. A
  gold of 0 is matched exactly.
* **Percent**: ``50%`` is read as the number written, 50 -- GSM8K golds are plain numbers, so a
  question asking for a percentage has gold ``50``. ``0.5`` does not match gold ``50``.
* A number with more than ``MAX_DIGITS`` digits is never converted; it is ``not_equal``
  (``details["too_long"]``).
* **Computed answers only** (``gsm8k_computed``; anti-hacking, ``arithmetic=False``): an answer
  written as arithmetic left undone (``<answer>5 - 3</answer>``, "the answer is 20 - 2") or as a
  fraction that is not in lowest terms or has denominator 1 (``-9 / 9``, ``6/8``) is wrong, reason
  ``unevaluated``. ``gsm8k`` reads such an answer as its value, which suits GSM8K replies; on a task
  whose question *is* the arithmetic ("Calculate 5 - 3.") it pays a policy for giving the question
  back, and a recorded GRPO run on 2-term arithmetic learned exactly that
  (``docs/results/learning.md``). Use ``gsm8k_computed`` as the reward and judge of such tasks.

Reasons: ``correct``, ``not_equal``, ``no_answer``, ``unclosed_reasoning``, ``ambiguous``, ``bad_gold``,
``unevaluated`` (``gsm8k_computed`` only).

One call reports both modes: the verdict is for the requested ``mode`` and
``details["strict"]`` / ``details["flexible"]`` hold ``{correct, extracted, reason}`` for each.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache

from ._claims import Answer, answers, prepare_reply, show
from ._numbers import NumberMatch, clean_latex, first_number, format_fraction
from .base import BAD_GOLD, CORRECT, NO_ANSWER, NOT_EQUAL, Verdict, register

__all__ = ["verify_gsm8k", "extract_gsm8k_answer", "parse_gsm8k_gold", "unevaluated"]

_MODES = ("strict", "flexible")
AMBIGUOUS = "ambiguous"
UNCLOSED_REASONING = "unclosed_reasoning"
UNEVALUATED = "unevaluated"
_FRACTION = re.compile(r"\s*[-\u2212]?\s*(\d+)\s*/\s*(\d+)\s*")
#: Relative error under which a non-integer prediction is float noise from tool use, not a new value.
FLOAT_RTOL = 1e-9


def _extract(completion: str, flexible: bool, tags=None) -> tuple[Answer | None, dict]:
    reply, info = prepare_reply(completion, tags)
    return answers(reply)[1 if flexible else 0], info


def extract_gsm8k_answer(completion: str, flexible: bool = False) -> tuple[NumberMatch | None, str | None]:
    """The predicted number and where it came from (``answer_tag``, ``####``, ``boxed``,
    ``answer_is``, ``last_sentence``, ``last_number``), or ``(None, None)``."""
    ans, _ = _extract(completion, flexible)
    return (ans.number, ans.method) if ans is not None else (None, None)


def parse_gsm8k_gold(answer) -> Fraction | None:
    """Gold value from a GSM8K solution (``... #### 72``) or a plain number (str, int, float);
    None if unparseable."""
    if type(answer) is str:  # the common case first (isinstance against Fraction, an ABC, is slow)
        return _parse_gold_text(answer)
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


def _gold(answer) -> tuple[Fraction | None, str | None]:
    """(gold value, its canonical text); read once per gold text (golds repeat across an item's
    samples; a Fraction's own hash is too slow to key a cache on)."""
    if type(answer) is str:
        return _shown_gold_text(answer)
    gold = parse_gsm8k_gold(answer)
    return gold, format_fraction(gold)


@lru_cache(maxsize=8192)
def _shown_gold_text(answer: str) -> tuple[Fraction | None, str | None]:
    gold = _parse_gold_text(answer)
    return gold, format_fraction(gold)


def unevaluated(number: NumberMatch | None) -> bool:
    """``number`` was written as arithmetic left undone (``5 - 3``) or as a fraction not in lowest
    terms or over 1 (``-9 / 9``, ``6/8``): not a computed answer (``gsm8k_computed`` refuses it)."""
    if number is None:
        return False
    if number.arithmetic:
        return True
    frac = _FRACTION.fullmatch(number.text)
    return bool(frac) and (int(frac.group(2)) <= 1 or math.gcd(int(frac.group(1)), int(frac.group(2))) != 1)


def _judge(ans: Answer | None, gold: Fraction, unclosed: bool = False, arithmetic: bool = True) -> tuple[bool, str]:
    if ans is None:
        return False, UNCLOSED_REASONING if unclosed else NO_ANSWER
    if ans.candidates is not None:
        return False, AMBIGUOUS
    if not arithmetic and unevaluated(ans.number):
        return False, UNEVALUATED
    value = ans.number.value
    if value is not None and (value == gold or gold in ans.number.alts or _float_artifact(value, gold)):
        return True, CORRECT
    return False, NOT_EQUAL


def _float_artifact(value: Fraction, gold: Fraction) -> bool:
    """Relative error below :data:`FLOAT_RTOL` (``0.30000000000000004`` for 0.3); gold 0 is exact."""
    return gold != 0 and value.denominator != 1 and abs(value - gold) < FLOAT_RTOL * abs(gold)


def verify_gsm8k(completion: str, answer, *, mode: str = "strict", reasoning_tags=None,
                 arithmetic: bool = True) -> Verdict:
    """GSM8K numeric answer: strict (answer markers, else a one-number last sentence) or flexible
    (else the last number).

    Score 1.0 when the predicted number equals the gold (exactly, or within float noise), else 0.0.
    ``arithmetic=False`` (``gsm8k_computed``): an answer left as arithmetic is wrong (``unevaluated``).
    See the module docstring for the extraction, number and anti-hacking policy.
    """
    if mode not in _MODES:
        raise ValueError(f"gsm8k mode must be one of {_MODES}, got {mode!r}")
    if not isinstance(completion, str):
        completion = "" if completion is None else str(completion)
    reply, info = prepare_reply(completion, reasoning_tags)
    strict, flex = answers(reply)
    gold, gold_text = _gold(answer)
    chosen = strict if mode == "strict" else flex
    m = chosen.number if chosen else None
    details = {"mode": mode, "method": chosen.method if chosen else None,
               "value": format_fraction(m.value) if m else None, **info}
    if chosen is not None and chosen.candidates is not None:
        details["candidates"] = chosen.candidates
    if m is not None and m.too_long:
        details["too_long"] = True
    if gold is None:
        details["gold"] = None
        return Verdict(0.0, None, show(m), BAD_GOLD, details)
    details["gold"] = gold_text
    results = {}
    for name, ans in (("strict", strict), ("flexible", flex)):
        if name == "flexible" and flex is strict:  # the same answer: the same judgement
            results[name] = dict(results["strict"])
            continue
        ok, reason = _judge(ans, gold, bool(info.get("reasoning")), arithmetic)
        results[name] = {"correct": ok, "extracted": show(ans.number if ans else None), "reason": reason}
    details["strict"] = results["strict"]
    details["flexible"] = results["flexible"]
    r = results[mode]
    return Verdict(1.0 if r["correct"] else 0.0, r["correct"], r["extracted"], r["reason"], details)


register("gsm8k", verify_gsm8k, fields=("answer",), mode="strict",
         description="GSM8K numeric answer, strict: <answer>, ####, \\boxed, 'the answer is' markers, "
                     "else a last sentence stating one number")
register("gsm8k_flexible", verify_gsm8k, fields=("answer",), mode="flexible",
         description="GSM8K numeric answer, flexible: as strict, else the last number in the text")
register("gsm8k_computed", verify_gsm8k, fields=("answer",), mode="strict", arithmetic=False,
         description="as gsm8k (strict), but an answer left as arithmetic ('5 - 3', '-9 / 9') is wrong: "
                     "the reward for tasks whose question is arithmetic")
