"""GSM8K numeric-answer verifier, in a strict and a flexible mode (as lm-evaluation-harness reports both).

Policy (documented here because it decides rewards):

* **Gold** (the ``answer`` field): a GSM8K solution whose last ``#### N`` line holds the answer, or a
  plain number (``72``, ``1,000``, ``$18``, ``-5``, ``0.5``, ``3/4``). Anything else -> ``correct=None``,
  reason ``bad_gold``.
* **The model's own turn** (both modes). The completion is read only up to the first end-of-turn
  token (``<|im_end|>``, ``<|endoftext|>``, ``</s>``, ...) and the first line that opens a new turn
  or an invented few-shot block (``Question:``, ``Q:``, ``Problem:``, ``Human:``, ``<|im_start|>``,
  ...; see :mod:`._final`): a policy that answers and then writes a new question with its own
  answer is judged on the answer before it (``details["cut_at"]`` names the cut), never on the last
  number of the invented block.
* **Prediction, strict mode** (``gsm8k``, the headline) -- the first of these answer markers that is
  present *and holds a number*, each taken at its **last** occurrence (a model that corrects itself
  ends with the final answer): the last ``<answer>...</answer>`` block; ``#### N``; ``\\boxed{N}``;
  "the answer is N" / "final answer: N" / "Answer: N" (case-insensitive). Inside a marker's span,
  text after the last ``=`` wins (``<answer>48 + 24 = 72</answer>`` -> 72), then its first number.
  **Else the last sentence** (what instruct models write: "... so the bill comes to $41.00."): the
  last sentence of the reply after ``</think>`` is read when it states exactly one number (after its
  last ``=``, or after its last conclusion word -- "so", "therefore", "which is", "comes to", "in
  total", ... -- when it holds several); ``details["method"] = "last_sentence"``, reasons as for a
  marker. It is not read when
  the reasoning was never closed (``<think>`` without ``</think>``), when the reply opened an
  ``<answer>`` tag that holds no number, or when the sentence holds several numbers without a
  hedge or conclusion (``She buys 4 boxes at $3 each and pays $12``). Nothing found -> ``no_answer`` (wrong).
  lm-evaluation-harness' strict-match looks only for ``#### N`` (and takes the first); we accept the
  explicit markers reasoning models use, take the last, and read a one-number final sentence.
* **Flexible mode** (``gsm8k_flexible``) differs from strict in one place only: when strict finds
  nothing, it takes the last number anywhere in the reply (lm-evaluation-harness' flexible-extract),
  with LaTeX around it cleaned (``1{,}250`` is 1250, not 250). Every other rule (own turn, hedging,
  numbers, float noise) is the same in both modes.
* **Hedged answers are wrong** (anti-hacking, both modes): a final answer that offers more than one
  distinct candidate -- ``12 or 14``, ``either 12 or 14``, ``between 12 and 14``, ``12 to 14``,
  ``40 ± 5``, ``40 +/- 5``, ``12–14``, ``12-14`` (smaller-larger whole numbers), ``12/14`` (a
  slash that is no fraction in lowest terms) -- is ``ambiguous`` (``correct=False``) even when one
  candidate is the gold; ``details["candidates"]`` lists them. Checked in the answer's clause (a
  marker's span up to the end of its sentence; the last sentence; the last number's sentence).
* **Numbers**: commas (``1,000``), LaTeX separators (``1{,}250``, ``1\\,250``, ``1\\!250``),
  currency with the sign before or after it (``$18``, ``-$7``, ``-€7``, ``$-7``), ``18.00``,
  ``-5``/``−5`` (Unicode minus), ``.5``, fractions ``3/4`` and ``\\frac{3}{4}``, digit groups split by
  spaces (``1 000``, only exact groups of three), trailing units and periods (``18 dollars.``), a
  percent sign with or without a space (``35 %``) are all understood. **Scientific notation** is
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

Reasons: ``correct``, ``not_equal``, ``no_answer``, ``ambiguous``, ``bad_gold``.

One call reports both modes: the verdict is for the requested ``mode`` and
``details["strict"]`` / ``details["flexible"]`` hold ``{correct, extracted, reason}`` for each.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from itertools import islice

from ._extract import boxed_contents, last_tag_content
from ._final import CORRECTION as _CORRECTION
from ._final import ascii_lower, drop_asides, drop_signoff, end_of_turn, hedged, last_sentence, own_turn, word_numbers
from ._numbers import NumberMatch, clean_latex, find_numbers, first_number, format_fraction, last_number
from ._reply import normalize, split_reasoning
from .base import BAD_GOLD, CORRECT, NO_ANSWER, NOT_EQUAL, Verdict, register

__all__ = ["verify_gsm8k", "extract_gsm8k_answer", "parse_gsm8k_gold"]

_MODES = ("strict", "flexible")
_ANSWER_IS = re.compile(
    r"(?:\b(?:final\s+)?answer\s+(?:is|would\s+be|=)|\bfinal\s+answer\s*(?::|(?=[ \t]*\n))|\banswer\s*:)\s*:?",
    re.IGNORECASE,
)
_SPAN_CHARS = 200  # how far after "the answer is" / "####" we look for the number
_MAX_MENTIONS = 64
_MAX_CLAIMS = 16
_TAIL_CHARS = 400  # flexible mode cleans LaTeX in this many characters before the last digit
_CLAUSE_END = re.compile(r"[.!?;](?=\s|$)|\n")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
_LAST_DIGIT = re.compile(r"\d")
_CONCLUSION = re.compile(r"\b(?:so|therefore|thus|hence|which (?:is|means|makes|gives)|that (?:is|makes)|"
                         r"for a total of|comes? to|in total|altogether|leaving|leaves|left with|remains?)\b",
                         0)
#: a parenthetical that offers no alternative is an aside: "18 (= 20 - 2)", "6 hours (from 9 to 3)"
_PAREN = re.compile(r"\([^()\n]{0,120}\)")
_PAREN_HEDGE = re.compile(r"\b(?:or|maybe|perhaps|possibly|could|might|alternatively)\b", 0)
AMBIGUOUS = "ambiguous"
UNCLOSED_REASONING = "unclosed_reasoning"
#: Relative error under which a non-integer prediction is float noise from tool use, not a new value.
FLOAT_RTOL = 1e-9


@dataclass(frozen=True)
class _Answer:
    number: NumberMatch | None
    method: str | None
    candidates: list[str] | None = None  # set when the answer hedges (reason "ambiguous")
    pos: int = 0  # where the claim sits in the reply (to order claims)


def _drop_paren_asides(span: str) -> str:
    if "(" not in span:
        return span
    return _PAREN.sub(lambda m: m.group() if _PAREN_HEDGE.search(ascii_lower(m.group())) else " ", span)


def _clause_answer(span: str, method: str, pos: int = 0, sentence: bool = False) -> _Answer | None:
    """The answer in a span of answer text (POLICY, "which statement is the answer"): asides in
    brackets are dropped; then the number after the last '=' when one follows it, else after the
    last conclusion word ("so", "therefore", "which is", "leaving" ...), else the first number
    (a small number word when there is no digit). ``sentence``: the span ends with the sentence
    that holds its first number. The clause up to that number's sentence end is checked for
    hedging (:func:`._final.hedged`)."""
    span = _drop_paren_asides(clean_latex(span))
    first = first_number(span)
    if sentence and first is not None:
        end = _SENTENCE_END.search(span, first.end)
        if end is not None:
            span = span[:end.start()]
            first = first_number(span)
    eq = span.rfind("=")
    m = first_number(span, eq + 1) if eq >= 0 else None
    start = eq + 1 if m is not None else 0
    if m is None and first is not None:
        conclusion = None
        for conclusion in _CONCLUSION.finditer(ascii_lower(span)):
            pass
        if conclusion is not None:
            m = first_number(span, conclusion.end())
        if m is None:
            m = first
    if m is None:
        words = word_numbers(span[start:start + _SPAN_CHARS])
        if not words:
            return None
        w = words[0]
        m = NumberMatch(start + w.start, start + w.end, w.text, w.value, False)
    end = _CLAUSE_END.search(span, m.end)
    clause = span[:end.start() if end else len(span)]
    return _Answer(m, method, hedged(clause, m), pos)


def _after_marker(text: str, marker_end: int) -> str:
    """The rest of the line after a marker (bounded); the next non-empty line when the marker ends
    its line (a Markdown header "## Final Answer" above the answer)."""
    span = text[marker_end:marker_end + _SPAN_CHARS]
    stripped = span.lstrip(" \t:")
    if stripped.startswith("\n"):
        span = stripped.lstrip()
    nl = span.find("\n")
    return span if nl < 0 else span[:nl]


def _answer_is_ends(text: str) -> list[int]:
    """Ends of the "the answer is" style markers, last first. Looks only around the last
    :data:`_MAX_MENTIONS` occurrences of "answer", so repeated mentions cannot make it slow."""
    low = ascii_lower(text)
    pos = len(low)
    ends: list[int] = []
    for _ in range(_MAX_MENTIONS):
        pos = low.rfind("answer", 0, pos)
        if pos < 0:
            break
        m = _ANSWER_IS.search(low, max(0, pos - 12), pos + 40)
        if m is not None and m.end() > pos and (not ends or m.end() < ends[-1]):
            ends.append(m.end())
            if len(ends) >= _MAX_CLAIMS:
                break
    return ends


def _claims(text: str) -> list[_Answer]:
    """Every final-answer claim of the reply, in policy order: the last ``<answer>`` block, the
    ``#### N`` lines (last first), the ``\\boxed{}`` (last first), the "answer is" markers (last
    first); each holding a number."""
    out: list[_Answer] = []
    tag_end = text.rfind("</answer>")
    tag = last_tag_content(text, "answer")
    if tag is not None:
        ans = _clause_answer(tag[-_SPAN_CHARS * 5:], "answer_tag", tag_end)
        if ans is not None:
            out.append(ans)
    pos = len(text)
    for _ in range(_MAX_CLAIMS):
        pos = text.rfind("####", 0, pos)
        if pos < 0:
            break
        ans = _clause_answer(_after_marker(text, pos + 4), "####", pos)
        if ans is not None:
            out.append(ans)
    if "boxed" in text or "fbox" in text:
        for begin, box in reversed(boxed_contents(text, _MAX_CLAIMS)):
            ans = _clause_answer(box[-_SPAN_CHARS * 5:], "boxed", begin)
            if ans is not None:
                out.append(ans)
    for end in _answer_is_ends(text):
        ans = _clause_answer(text[end:end + _SPAN_CHARS].split("\n\n", 1)[0], "answer_is", end, sentence=True)
        if ans is not None:
            out.append(ans)
    return out


def _same(a: _Answer, b: _Answer) -> bool:
    x, y = a.number, b.number
    return x.value is not None and (x.value == y.value or y.value in x.alts or x.value in y.alts)


def _marked(text: str) -> _Answer | None:
    """The claim of the first marker (in policy order) that holds a number. POLICY (stuffing):
    when the reply makes other claims with a different value that no correction ("wait",
    "actually", "I made a mistake" ...) retracts, the answer is ``ambiguous``; a claim retracted by
    a later one gives way to the latest claim."""
    claims = _claims(text)
    if not claims:
        return None
    by_pos = sorted(claims, key=lambda c: c.pos)
    live = [c for c, nxt in zip(by_pos, by_pos[1:] + [None])
            if nxt is None or _same(c, nxt) or not _CORRECTION.search(ascii_lower(text[c.pos:nxt.pos]))]
    chosen = next((c for c in claims if c in live), by_pos[-1])
    if chosen.candidates is None:
        other = next((c for c in live if not _same(chosen, c) and c.number.value is not None), None)
        if other is not None:
            return _Answer(chosen.number, chosen.method, [_show(chosen.number), _show(other.number)], chosen.pos)
    return chosen


def _sentence_answer(text: str) -> _Answer | None:
    """The last sentence's number when that sentence states one number (after its last '=', or its
    last conclusion word), or hedges between several; None when it holds none or several unrelated
    numbers."""
    if "<answer>" in text:
        return None  # the tag format was chosen; an unclosed or number-less tag is no answer
    sentence = _drop_paren_asides(clean_latex(last_sentence(text)))
    eq = sentence.rfind("=")
    clause = sentence[eq + 1:] if eq >= 0 and first_number(sentence, eq + 1) is not None else sentence
    nums = list(islice(find_numbers(clause), 3))
    if not nums:
        words = word_numbers(clause)
        if len(words) != 1:
            return None
        return _Answer(words[0], "last_sentence", None)
    candidates = hedged(clause, nums[0], lists=False)
    if len(nums) > 1 and candidates is None:
        conclusion = None
        for conclusion in _CONCLUSION.finditer(ascii_lower(clause)):
            pass
        if conclusion is None:
            return None
        clause = clause[conclusion.end():]
        nums = list(islice(find_numbers(clause), 3))
        candidates = hedged(clause, nums[0], lists=False) if nums else None
        if not nums or (len(nums) > 1 and candidates is None):
            return None
    return _Answer(nums[0], "last_sentence", candidates)


def _last_number_answer(text: str) -> _Answer | None:
    """The last number anywhere (LaTeX around it cleaned), hedging checked in its sentence."""
    digit = _LAST_DIGIT.search(text[::-1]) if text else None
    if digit is None:
        return None
    tail = clean_latex(text[max(0, len(text) - digit.start() - _TAIL_CHARS):])
    m = last_number(tail)
    if m is None:
        return None
    sentence = last_sentence(tail[:m.end] + " ")
    nums = list(find_numbers(sentence))
    candidates = hedged(sentence[nums[-2].start:], lists=False) if len(nums) > 1 else None
    return _Answer(m, "last_number", candidates)


def _reply(completion: str, tags=None) -> tuple[str | None, dict]:
    """The reply every rule reads (normalised, reasoning block cut off, own turn only, Markdown
    emphasis and asides dropped); None when the reasoning never closed."""
    text, cut = end_of_turn(normalize(completion))
    split = split_reasoning(text, tags)
    if split.reply is None:
        return None, {"reasoning": "unclosed"}
    reply, cut2 = own_turn(split.reply)
    cut = cut or cut2
    info = {"cut_at": cut} if cut else {}
    if "**" in reply or "__" in reply:
        reply = reply.replace("**", "").replace("__", "")
    return drop_asides(reply), info


def _answers(reply: str | None) -> tuple[_Answer | None, _Answer | None]:
    """(strict answer, flexible answer) of a prepared reply."""
    if reply is None:
        return None, None
    ans = _marked(reply)
    if ans is not None:
        return ans, ans
    reply = drop_signoff(reply)
    ans = _sentence_answer(reply)
    return ans, ans if ans is not None else _last_number_answer(reply)


def _extract(completion: str, flexible: bool, tags=None) -> tuple[_Answer | None, dict]:
    reply, info = _reply(completion, tags)
    return _answers(reply)[1 if flexible else 0], info


def extract_gsm8k_answer(completion: str, flexible: bool = False) -> tuple[NumberMatch | None, str | None]:
    """The predicted number and where it came from (``answer_tag``, ``####``, ``boxed``,
    ``answer_is``, ``last_sentence``, ``last_number``), or ``(None, None)``."""
    ans, _ = _extract(completion, flexible)
    return (ans.number, ans.method) if ans is not None else (None, None)


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


def _judge(ans: _Answer | None, gold: Fraction, unclosed: bool = False) -> tuple[bool, str]:
    if ans is None:
        return False, UNCLOSED_REASONING if unclosed else NO_ANSWER
    if ans.candidates is not None:
        return False, AMBIGUOUS
    value = ans.number.value
    if value is not None and (value == gold or gold in ans.number.alts or _float_artifact(value, gold)):
        return True, CORRECT
    return False, NOT_EQUAL


def _float_artifact(value: Fraction, gold: Fraction) -> bool:
    """Relative error below :data:`FLOAT_RTOL` (``0.30000000000000004`` for 0.3); gold 0 is exact."""
    return gold != 0 and value.denominator != 1 and abs(value - gold) < FLOAT_RTOL * abs(gold)


def _show(m: NumberMatch | None) -> str | None:
    if m is None:
        return None
    return m.text.strip() if len(m.text) <= 100 else m.text[:100] + "..."


def verify_gsm8k(completion: str, answer, *, mode: str = "strict", reasoning_tags=None) -> Verdict:
    """GSM8K numeric answer: strict (answer markers, else a one-number last sentence) or flexible
    (else the last number).

    Score 1.0 when the predicted number equals the gold (exactly, or within float noise), else 0.0.
    See the module docstring for the extraction, number and anti-hacking policy.
    """
    if mode not in _MODES:
        raise ValueError(f"gsm8k mode must be one of {_MODES}, got {mode!r}")
    if not isinstance(completion, str):
        completion = "" if completion is None else str(completion)
    reply, info = _reply(completion, reasoning_tags)
    strict, flex = _answers(reply)
    gold = parse_gsm8k_gold(answer)
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
        return Verdict(0.0, None, _show(m), BAD_GOLD, details)
    details["gold"] = format_fraction(gold)
    results = {}
    for name, ans in (("strict", strict), ("flexible", flex)):
        ok, reason = _judge(ans, gold, bool(info.get("reasoning")))
        results[name] = {"correct": ok, "extracted": _show(ans.number if ans else None), "reason": reason}
    details["strict"] = results["strict"]
    details["flexible"] = results["flexible"]
    r = results[mode]
    return Verdict(1.0 if r["correct"] else 0.0, r["correct"], r["extracted"], r["reason"], details)


register("gsm8k", verify_gsm8k, fields=("answer",), mode="strict",
         description="GSM8K numeric answer, strict: <answer>, ####, \\boxed, 'the answer is' markers, "
                     "else a last sentence stating one number")
register("gsm8k_flexible", verify_gsm8k, fields=("answer",), mode="flexible",
         description="GSM8K numeric answer, flexible: as strict, else the last number in the text")
