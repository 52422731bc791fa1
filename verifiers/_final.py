"""Where a model's own answer ends, and whether a final answer offers more than one candidate.

Shared by the numeric verifiers (:mod:`.gsm8k`; :mod:`.format` uses the end-of-turn list):

* :func:`own_turn` -- the part of a completion that is the model's reply to *this* question. It ends
  at the first known end-of-turn / end-of-text token (``<|im_end|>``, ``<|endoftext|>``, ``</s>``,
  ``<|eot_id|>``, ...) and at the first line that opens a new turn or a new few-shot block of the
  model's own invention (``Question:``, ``Q:``, ``Problem:``, ``Human:``, ``User:``, ``### Question``,
  ``<|im_start|>``, ``<|user|>``, ``[INST]``, ``<start_of_turn>``), so an invented question with its
  own answer is never read as the answer to this one. One regex search: linear time.
* :func:`last_sentence` -- the last sentence of a text (its last non-empty line, cut after the last
  ``.``/``!``/``?`` + space that is not inside a number), bounded to :data:`SENTENCE_CHARS`.
* :func:`hedged` -- a final-answer clause that offers two or more *distinct* numbers as the answer:
  ``12 or 14``, ``either 12 or 14``, ``between 12 and 14``, ``from 12 to 14``, ``40 ± 5``,
  ``40 +/- 5``, ``12–14`` (en/em dash), ``12-14`` (a hyphen between a smaller and a larger whole
  number: a range; ``10-5`` stays a subtraction), ``12/14`` (a slash between two whole numbers
  that is not a fraction in lowest terms and not a whole number, e.g. ``12/14``; ``3/4`` and
  ``120/2`` are values). Repeating one value (``12 or 12.0``) is not a hedge.
"""
from __future__ import annotations

import re
from math import gcd

from ._numbers import NumberMatch, find_numbers

__all__ = ["END_OF_TURN", "own_turn", "last_sentence", "hedged", "SENTENCE_CHARS"]

END_OF_TURN = ("<|im_end|>", "<|endoftext|>", "<|end_of_text|>", "<|eot_id|>", "<|end|>", "<end_of_turn>",
               "</s>")
SENTENCE_CHARS = 400

_NEW_TURN = re.compile(
    "|".join(re.escape(t) for t in END_OF_TURN)
    + r"|<\|im_start\|>|<\|user\|>|\[INST\]|<start_of_turn>"
    + r"|\n[ \t]*(?:#{1,4}[ \t]*)?(?:\*\*)?(?:Question|Problem|Q|Human|User)(?:[ \t]*\d{1,3})?[ \t]*(?:\*\*)?[:\uff1a]"
)
_SENTENCE_END = re.compile(r"[.!?](?:\*\*)?\s+(?=\S)")
_TOKENS = re.compile(r"[A-Za-z]+|\+/-|\+-|[^\sA-Za-z]")
_CONNECTORS = frozenset({"or", "to", "\u00b1", "~", "\u2013", "\u2014", "+/-", "+-"})
_FILLER = frozenset({"maybe", "perhaps", "possibly", "about", "even", "approximately", "roughly", "around",
                     "just", "(", ")", ",", ";", "$", "\u20ac", "\u00a3", "%", "*"})
_EITHER = re.compile(r"\b(?:either|between|from)\b", re.IGNORECASE)
_MAX_NUMBERS = 8


def own_turn(text: str) -> tuple[str, str | None]:
    """(the reply up to where a new turn / invented block starts, what cut it or None)."""
    m = _NEW_TURN.search(text, 1)
    if m is None:
        return text, None
    return text[:m.start()], m.group().strip()


def last_sentence(text: str) -> str:
    """The last sentence of ``text`` (see module docstring); "" when there is none."""
    tail = text.rstrip()[-SENTENCE_CHARS:]
    nl = tail.rfind("\n")
    line = tail[nl + 1:]
    start = 0
    for m in _SENTENCE_END.finditer(line):
        start = m.end()
    return line[start:]


def _slash_hedge(m: NumberMatch) -> bool:
    if "/" not in m.text or m.value is None or m.value.denominator == 1 or m.too_long:
        return False
    top, _, bottom = m.text.rpartition("/")
    digits_top = re.sub(r"\D", "", top)
    digits_bottom = re.sub(r"\D", "", bottom)
    if not digits_top or not digits_bottom or "." in top:
        return False
    return gcd(int(digits_top), int(digits_bottom)) > 1


def hedged(clause: str) -> list[str] | None:
    """The candidates when ``clause`` (an answer's text, LaTeX already cleaned) hedges, else None."""
    nums = []
    for n in find_numbers(clause):
        nums.append(n)
        if len(nums) >= _MAX_NUMBERS:
            break
    if nums and _slash_hedge(nums[0]):
        top, _, bottom = nums[0].text.rpartition("/")
        return [top.strip(), bottom.strip()]
    for a, b in zip(nums, nums[1:]):
        if a.value is None or b.value is None or a.value == b.value:
            continue
        between = clause[a.end:b.start]
        if len(between) > 40 or "\n" in between:
            continue
        hyphen_range = (between == "-" and a.value.denominator == b.value.denominator == 1
                        and 0 <= a.value < b.value)
        plus_minus = b.text[:1] in "-\u2212\u2013" and between.rstrip().endswith(("+/", "\u00b1", "+"))
        if hyphen_range or plus_minus or _connects(between, bool(_EITHER.search(clause, 0, a.start))):
            return [a.text.strip(), b.text.strip()]
    return None


def _connects(between: str, allow_and: bool) -> bool:
    """``between`` joins two numbers as alternatives: a connector (or, to, ±, a dash), with at most
    two unit words before it and only filler words ("maybe", "about", brackets) around it."""
    connector = False
    units = 0
    for tok in _TOKENS.findall(between):
        low = tok.lower()
        if low in _CONNECTORS or (allow_and and low == "and"):
            connector = True
        elif low in _FILLER:
            continue
        elif tok.isalpha() and not connector and units < 2:
            units += 1
        else:
            return False
    return connector
