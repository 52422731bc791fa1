"""Which span of a completion math-verify reads for :mod:`.math`, and the hedges found on the way.

This is the policy's "Prediction" and "Several answers and hedges" part (see :mod:`.math`'s
docstring): the reply is prepared by the shared reading contract (:mod:`._reply`, :mod:`._final`);
the last ``<answer>`` block, else the last live ``\\boxed{}``, else the plain-text statement that
gsm8k's claims machinery (:func:`._claims.statement`) picks -- its sentence only, with the same
hedge, second-claim, correction and sign-off rules as gsm8k -- is the span. ``details`` carries
the candidates of a hedge (``answers``, ``afterthought``, ``claims``) for the verifier to judge
against the gold's shape (one part or several).
"""
from __future__ import annotations

import re
from itertools import islice
from typing import Any

from ._claims import drop_paren_asides, statement
from ._extract import boxed_contents, last_boxed_content, tag_contents
from ._final import _ENDS, CORRECTION, ascii_lower, drop_asides, end_of_turn, last_sentence, own_turn
from ._final import _connects as connects
from ._mathfast import same_text, simple_answer
from ._numbers import format_fraction
from ._reply import normalize, split_reasoning

__all__ = ["prediction_spans", "multi_part", "hedge", "MAX_CHARS", "AMBIGUOUS", "UNCLOSED_REASONING"]

MAX_CHARS = 2_000

_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def _clean_answer(content: str) -> str:
    """``<answer>`` content as a bare LaTeX expression: no Markdown bold, trailing period or outer
    math delimiters; a lone ``$`` left inside is a currency sign (``$18.00``) and is escaped."""
    s = content.strip()
    while len(s) > 4 and s.startswith("**") and s.endswith("**"):
        s = s[2:-2].strip()
    s = s.rstrip(".").rstrip()
    for left, right in _DELIMITERS:
        if len(s) > len(left) + len(right) and s.startswith(left) and s.endswith(right):
            s = s[len(left):-len(right)].strip().rstrip(".").rstrip()
            break
    return s.replace("\\$", "$").replace("$", "\\$")


_COMMAND_OR_TEXT = re.compile(r"\\(?:text\w*|math\w*|mbox|operatorname|begin|end)\s*\{[^{}]*\}|\\[A-Za-z]+")
_WORD = re.compile(r"[A-Za-z]{3,}")
_MATH_WORDS = frozenset("sin cos tan cot sec csc log exp sqrt arcsin arccos arctan sinh cosh tanh det gcd lcm "
                        "mod max min and inf".split())


def _is_prose(s: str) -> bool:
    """A word of 3+ letters outside LaTeX commands and ``\\text{}`` that is no function name
    (``the answer is 7``, ``18 dollars``): math-verify's own extraction reads such a block better
    than LaTeX parsing, which would take the words for products of symbols."""
    return any(w.lower() not in _MATH_WORDS for w in _WORD.findall(_COMMAND_OR_TEXT.sub(" ", s)))


_MAX_BOXES = 16
_TEXT_CLAIMS = ("answer_is", "####")
AMBIGUOUS = "ambiguous"
UNCLOSED_REASONING = "unclosed_reasoning"
_THOUSANDS_COMMA = re.compile(r"\d,\d{3}(?!\d)")
_MULTI_PART = re.compile(r",|\\pm|\\mp|\bor\b|\band\b|\\text\{\s*(?:or|and)\s*\}|\\cup|\\in\b")


#: an alternative offered right after the final box: "$\\boxed{4}$ or maybe 5", "\\boxed{4}. Possibly 5."
_AFTERTHOUGHT = re.compile(r"[\s$)\\\]}.,;]{0,8}(?:or|maybe|perhaps|possibly|alternatively|otherwise)\b[ \t,]*"
                           r"(?:(?:it|it's|its|is|was|could|might|be|even|also|just|the|answer|maybe|perhaps|possibly|"
                           r"actually|rather)\b[ \t,]*){0,5}[$\\(]*(\d[\d,/]*(?:\.\d+)?|\\boxed)")


def _live(reply: str, found: list[tuple[int, str]]) -> list[str]:
    """The answers of ``found`` (``(start, text)`` in order) that no correction retracts: one followed
    by "wait", "actually", "correcting", "I made a mistake" ... before the next gives way to it."""
    return [b for (p, b), nxt in zip(found, found[1:] + [None])
            if nxt is None or not CORRECTION.search(ascii_lower(reply[p + len(b):nxt[0]]))]


def _distinct(boxes: list[str]) -> list[str]:
    """The boxes' answers without repeats (same text, or the same simple number written twice)."""
    if len(boxes) < 2:
        return list(boxes)
    out: list[str] = []
    keys: list = []
    for b in boxes:
        key = _value_key(b)
        if not any(same_text(b, o) or k == key for o, k in zip(out, keys)):
            out.append(b)
            keys.append(key)
    return out


def _value_key(box: str):
    simple = simple_answer(box)
    if simple is None:
        return box
    return (simple[0], simple[1][:2]) if simple[0] == "scalar" else (simple[0], tuple(x[:2] for x in simple[1]))


def multi_part(answer: str) -> bool:
    """A gold with several parts (``2, 5``, ``(1,2)``, ``3 \\pm \\sqrt 2``, an interval or set)."""
    return _MULTI_PART.search(_THOUSANDS_COMMA.sub("", answer)) is not None


_SEPARATORS = re.compile(r"\s*(?:,|;|\\text\{\s*(?:or|and)\s*\}|\\(?:quad|qquad|pm|mp)\b|\bor\b|\band\b)\s*|\s+")


def hedge(span: str) -> list[str] | None:
    """POLICY (hedges, for a gold with one part): a span that is a list of several different simple
    answers (``14, 16``, ``4 \\text{ or } 5``, ``12 13 14``, ``40 \\pm 5``) is ``ambiguous``."""
    span = span.strip().strip("$").strip()
    if len(span) > 200 or simple_answer(span) is not None:
        return None
    parts = [p for p in _SEPARATORS.split(_THOUSANDS_COMMA.sub(lambda m: m.group().replace(",", ""), span)) if p]
    if len(parts) < 2 or any(simple_answer(p) is None for p in parts):
        return None
    distinct = _distinct(parts)
    return distinct if len(distinct) > 1 else None


#: a LaTeX or algebraic answer ("\\frac{270}7", "x^8 + x^7", "1 - 12i"), whose numbers the numeric hedge rules misread
_LATEX = re.compile(r"\\[A-Za-z]|[\^{_]|\d[A-Za-z]\b")
_MATH_SEGMENT = re.compile(r"\$([^$]{1,200})\$|\\\((.{1,200}?)\\\)")


def _latex_alternatives(stated: str) -> list[str] | None:
    """POLICY (hedges in a plain-text statement, for a gold with one part): the statement's first
    math segment offered with another by the connectors gsm8k reads as a hedge
    (:func:`._final.hedged`: "$1+2\\sqrt{3}$, though it could also be $12$", "$x = 2$ or
    $x = 5$"); asides in brackets are dropped first, equal simple answers are no alternative."""
    if stated.count("$") < 4 and "\\(" not in stated:
        return None
    stated = drop_paren_asides(stated)
    segs = list(islice(_MATH_SEGMENT.finditer(stated), 2))
    if len(segs) < 2:
        return None
    a, b = segs
    between = stated[a.end():b.start()]
    x, y = (a.group(1) or a.group(2)).strip(), (b.group(1) or b.group(2)).strip()
    if len(between) > 60 or "\n" in between or len(_distinct([x, y])) < 2:
        return None
    return [x, y] if connects(between, _ENDS.match(stated, b.end()) is not None) else None


def _tail(text: str, details: dict) -> str:
    if len(text) > MAX_CHARS:
        details["truncated"] = True
        return text[-MAX_CHARS:]
    return text


def prediction_spans(completion: str, tags=None) -> tuple[str, list[str], dict]:
    """(source, texts for math-verify to parse in order, details) -- the policy's steps 1-4.

    An empty list means there is no answer to read. Linear in the completion's length.
    """
    details: dict[str, Any] = {}
    text, cut = end_of_turn(normalize(completion))
    split = split_reasoning(text, tags)
    if split.reply is None:  # reasoning never closed: cut off before any answer
        details["source"] = "unclosed_think"
        return "unclosed_think", [], details
    reply, cut2 = own_turn(split.reply, tokens=False)  # end_of_turn already cut at the first token
    if cut or cut2:
        details["cut_at"] = cut or cut2
    reply = drop_asides(reply)
    tags = tag_contents(reply, "answer", _MAX_BOXES) if "</answer>" in reply else []
    content = tags[0][1] if tags else None
    if content is not None:
        details["source"] = "answer_tag"
        if len(tags) > 1:  # several answer blocks: each is a claim (same policy as several boxes)
            found = [(end - len(c), c) for end, c in reversed(tags)]
            distinct = _distinct(_live(reply, found))
            if len(distinct) > 1:
                details["answers"] = distinct
        boxed = last_boxed_content(content)
        if boxed is not None:
            return "answer_tag", ([f"$\\boxed{{{_tail(boxed, details)}}}$"] if boxed else []), details
        cleaned = _clean_answer(content)
        if not cleaned:
            return "answer_tag", [], details
        as_latex, as_text = f"$\\boxed{{{_tail(cleaned, details)}}}$", _tail(content, details)
        return "answer_tag", ([as_text, as_latex] if _is_prose(cleaned) else [as_latex, as_text]), details
    found = boxed_contents(reply, _MAX_BOXES)
    boxes = _live(reply, found)
    claim, stated = statement(reply)
    if boxes and claim is not None and claim.method in _TEXT_CLAIMS and claim.pos > found[-1][0] and \
            CORRECTION.search(ascii_lower(reply[found[-1][0]:claim.pos])):
        boxes = []  # "\boxed{21}. Wait, I made a mistake: the answer is 31." -- the later claim is read
    if boxes:
        boxed = boxes[-1]
        details["source"] = "boxed"
        distinct = _distinct(boxes)
        if len(distinct) > 1:
            details["answers"] = distinct
        after = found[-1][0] + len(found[-1][1]) + 1
        other = _AFTERTHOUGHT.match(ascii_lower(reply[after:after + 100]))
        if other is not None:  # "$\\boxed{4}$, or maybe 5"
            details["afterthought"] = [boxed, other.group(1)]
        return "boxed", ([f"$\\boxed{{{_tail(boxed, details)}}}$"] if boxed else []), details
    details["source"] = "text"
    opened = reply.rfind("<answer>")  # an answer cut off before its closing tag: read only that
    read = reply[opened + len("<answer>"):] if opened >= 0 else reply
    if opened >= 0:
        claim, stated = statement(read)
    reply = stated
    own = "" if claim is None else last_sentence(stated) if claim.method == "last_sentence" else \
        read[claim.pos:claim.pos + 200].split("\n\n", 1)[0]  # the claim's own text
    if claim is not None and claim.candidates is not None and (claim.rival or not _LATEX.search(own)
                                                               or _HEDGE_WORD.search(ascii_lower(own))):
        details["claims"] = claim.candidates  # gsm8k's hedge rules read numbers, not LaTeX (but a
        #                                       hedge word offers an alternative whatever the form)
    elif claim is not None and claim.method in _TEXT_CLAIMS:
        other = _latex_alternatives(reply)
        if other is not None:
            details["claims"] = other
    if "claims" not in details and claim is not None and _compound(claim):
        # "18 dollars and 50 cents", "2 hours and 30 minutes": one quantity in two units, read as
        # gsm8k reads it (18.50, 2.5), never as its first number
        details["compound"] = claim.number.text.strip()
        return "text", [f"${format_fraction(claim.number.value)}$"], details
    return "text", ([_tail(reply, details)] if reply.strip() else []), details


#: a word that offers an alternative to the answer ("2516_8, or maybe 2517_8", "$x^2$, though it could be 5")
_HEDGE_WORD = re.compile(r"\b(?:maybe|perhaps|possibly|alternatively|though|although|could|might)\b")


def _compound(claim) -> bool:
    """The claim's number is a compound quantity gsm8k's number reader joined (a unit word inside
    it: ``18 dollars and 50 cents``), with a value."""
    n = claim.number
    return n is not None and n.value is not None and bool(n.alts) and " and " in n.text and \
        any(c.isalpha() for c in n.text.split(" and ", 1)[0])
