"""Which statement of a reply is its answer: the claims of the numeric verifiers (:mod:`.gsm8k`).

POLICY lines (issue 26, class 2 "which statement is the answer" and class 3 "hedges and stuffing"):

* **Reply** (:func:`prepare_reply`): normalised, the reasoning block cut off (:mod:`._reply`), the
  model's own turn only (:func:`._final.end_of_turn`, :func:`._final.own_turn`: an invented next
  turn or follow-up exercise is cut), Markdown emphasis (``**``, ``__``) removed so that
  ``**Final Answer**: 18`` and ``**Answer:** 18`` are markers, and sentences that pose a
  hypothetical or address a grader removed (:func:`._final.drop_asides`).
* **Markers** (:func:`_claims`), in policy order: the last ``<answer>`` block, ``#### N``,
  ``\\boxed{}``, "the answer is N" / "final answer: N" / "Answer: N" / a "Final Answer" header
  line followed by the answer on the next line.
* **Inside a marker** (:func:`_clause_answer`): bracketed asides without an alternative are dropped
  (``18 (= 20 - 2)``, ``6 hours (from 9 to 3)``); the number after the last ``=`` wins, else the
  number after the last conclusion word (``so``, ``therefore``, ``which is``, ``leaving``...), else
  the first number, else a small number word ("twelve"); an answer written as unevaluated arithmetic
  ("the answer is 20 - 2", ``<answer>48 + 24</answer>``) is its exact value.
* **Several claims** (:func:`_marked`): the first marker in policy order answers; another claim
  with a different value makes the answer ``ambiguous`` (stuffing), unless a correction word
  between them ("wait", "actually", "I made a mistake", "correcting"...) retracts the earlier one,
  which then gives way to the latest claim; a claim repeated just before a retracted one ("Final
  Answer: The final answer is 21. ... Wait, actually the answer is 31.") is retracted with it.
* **Two units, one quantity** (:func:`._final.restated`): ``120 minutes, or 2 hours`` is no hedge;
  either value is the answer (whichever unit the gold is in); so is a restatement in brackets,
  ``2 hours (120 minutes)``, which is no aside (:func:`._final.restating_paren`).
* **For math** (:func:`statement`): the same claim, and the text of its statement (its paragraph up
  to its sentence end) for math-verify to parse.
* **No marker**: the last sentence (sign-offs and questions to the reader dropped first:
  :func:`._final.drop_signoff`) when it states one number (after ``=`` or a conclusion word),
  else -- flexible mode only -- the last number of the reply.
* **Hedges** (:func:`._final.hedged`): an answer offered with an alternative -- ``12 or 14``, a list
  ``12, 13, 14`` (inside a marker), ``12 - 14``, ``at least 12``, ``12, though it could also be
  14`` -- is ``ambiguous``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import islice

from ._extract import boxed_contents, tag_contents
from ._final import CORRECTION as _CORRECTION
from ._final import (ascii_lower, drop_asides, drop_signoff, end_of_turn, hedged, last_sentence, own_turn, restated,
                     restating_paren, word_numbers)
from ._numbers import NumberMatch, clean_latex, find_numbers, first_number, last_number
from ._reply import normalize, split_reasoning

__all__ = ["Answer", "prepare_reply", "answers", "statement", "show"]

_ANSWER_IS = re.compile(
    r"(?:\b(?:final\s+)?answer\s+(?:is|would\s+be|=)|\bfinal\s+answer\s*(?::|(?=[ \t]*\n))|\banswer\s*:)\s*:?",
    re.IGNORECASE,
)
#: every _ANSWER_IS match holds "answer" followed by a space or ':' (checked before the per-mention
#: searches; text that escaped normalisation may hold U+017F, which IGNORECASE matches as 's')
_ANSWER_FOLLOWED = re.compile(r"answer[\s:]")
_SPAN_CHARS = 200  # how far after "the answer is" / "####" we look for the number
_MAX_MENTIONS = 64
_MAX_CLAIMS = 16
_LOOKAHEAD = 12  # characters after a number that the number pattern's look-aheads may read
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


@dataclass(frozen=True, init=False)
class Answer:
    number: NumberMatch | None
    method: str | None
    candidates: list[str] | None = None  # set when the answer hedges (reason "ambiguous")
    pos: int = 0  # where the claim sits in the reply (to order claims)
    rival: bool = False  # the candidates are another, unretracted claim (not a hedge inside this one)

    def __init__(self, number: NumberMatch | None, method: str | None, candidates: list[str] | None = None,
                 pos: int = 0, rival: bool = False):
        # the frozen dataclass's own __init__ makes one object.__setattr__ call per field (about
        # three times slower); an Answer is made for every claim
        d = self.__dict__
        d["number"] = number
        d["method"] = method
        d["candidates"] = candidates
        d["pos"] = pos
        d["rival"] = rival


def drop_paren_asides(span: str) -> str:
    """``span`` without bracketed asides that offer no alternative ("18 (= 20 - 2)")."""
    if "(" not in span:
        return span
    return _PAREN.sub(lambda m: m.group() if _PAREN_HEDGE.search(ascii_lower(m.group())) or
                      restating_paren(span, m.start(), m.end()) else " ", span)


def _clause_answer(span: str, method: str, pos: int = 0, sentence: bool = False, tail: str = "") -> Answer | None:
    """The answer in a span of answer text (POLICY, "which statement is the answer"): asides in
    brackets are dropped; then the number after the last '=' when one follows it, else after the
    last conclusion word ("so", "therefore", "which is", "leaving" ...), else the first number
    (a small number word when there is no digit). ``sentence``: the span ends with the sentence
    that holds its first number. The clause up to that number's sentence end is checked for
    hedging (:func:`._final.hedged`)."""
    span = drop_paren_asides(clean_latex(span))
    full = span + tail  # what follows the marker's line, read only for an afterthought hedge
    first = first_number(span)
    if sentence and first is not None:
        end = _SENTENCE_END.search(span, first.end)
        if end is not None:
            span = span[:end.start()]
            if end.start() < first.end + _LOOKAHEAD:  # the cut may change how the number reads
                first = first_number(span)
    eq = span.rfind("=")
    m = first_number(span, eq + 1) if eq >= 0 else None
    start = eq + 1 if m is not None else 0
    if m is None and first is not None:
        conclusion = None
        if span.lower() != span.upper():  # no cased letter, no conclusion word: skip the scan
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
    candidates = hedged(clause, m)
    if candidates is None:
        m = restated(clause, m)
        after = _AFTERTHOUGHT.match(ascii_lower(full[len(clause):len(clause) + 80]))
        if after is not None:  # "The answer is 18. Or 20." / "18\nor maybe 20"
            candidates = [m.text.strip(), after.group(1)]
    if candidates is None and _OPERATOR.match(clause, m.end):
        m = _expression(clause, m) or m
    return Answer(m, method, candidates, pos)


#: an alternative offered right after the answer's clause, in the next sentence or line
_AFTERTHOUGHT = re.compile(r"[ \t]*[.!?;,]?[ \t]*\n?[ \t]*(?:or|maybe|perhaps|possibly|alternatively|otherwise)\b[ \t,]*"
                           + r"(?:(?:" + "|".join(("it", "it's", "its", "is", "was", "could", "might", "be", "even",
                                                   "also", "just", "about", "the", "answer", "maybe", "perhaps",
                                                   "possibly", "equal", "to", "actually", "rather")) + r")\b[ \t,]*){0,5}"
                           r"\$?(\d[\d,]*(?:\.\d+)?)")
_HEDGE_START = re.compile(_AFTERTHOUGHT.pattern.replace(r"[ \t]*[.!?;,]?[ \t]*\n?[ \t]*", r"[ \t*_(]*", 1))


_OPERATOR = re.compile(r"[ \t]*[-+*x\u00d7\u00b7\u00f7\u2212][ \t]*[$\d(]")
_TERM = re.compile(r"[ \t]*([-+*x\u00d7\u00b7\u00f7\u2212])[ \t]*")
_MAX_TERMS = 12


def _expression(clause: str, first: NumberMatch) -> NumberMatch | None:
    """An answer written as unevaluated arithmetic ("the answer is 20 - 2", ``<answer>48 +
    24</answer>``): its exact value, ``*``/``×``/``x``/``÷`` before ``+``/``-``; None when what
    follows is no plain arithmetic (a unit word between numbers, brackets, a percent)."""
    values, ops = [first.value], []
    pos = first.end
    for _ in range(_MAX_TERMS):
        op = _TERM.match(clause, pos)
        if op is None:
            break
        nxt = first_number(clause, op.end(), op.end() + 40)
        if nxt is None or nxt.start != op.end() or nxt.value is None or nxt.percent or nxt.alts:
            break
        ops.append(op.group(1))
        values.append(nxt.value)
        pos = nxt.end
    if not ops or any(v is None for v in values) or clause[pos:].strip(" \t.!*$") and \
            not clause[pos:].lstrip()[:1].isalpha():
        return None
    terms, signs = [values[0]], []
    for op, v in zip(ops, values[1:]):
        if op in "*x\u00d7\u00b7":
            terms[-1] = terms[-1] * v
        elif op == "\u00f7":
            if v == 0:
                return None
            terms[-1] = terms[-1] / v
        else:
            signs.append(-1 if op in "-\u2212" else 1)
            terms.append(v)
    total = terms[0] + sum(sg * t for sg, t in zip(signs, terms[1:]))
    return NumberMatch(first.start, pos, clause[first.start:pos], total, False, arithmetic=True)


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
    ends: list[int] = []
    if _ANSWER_FOLLOWED.search(low) is None and (low.isascii() or "\u017f" not in low):
        return ends
    pos = len(low)
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


def _claims(text: str) -> list[Answer]:
    """Every final-answer claim of the reply, in policy order: the last ``<answer>`` block, the
    ``#### N`` lines (last first), the ``\\boxed{}`` (last first), the "answer is" markers (last
    first); each holding a number."""
    out: list[Answer] = []
    if "</answer>" in text:
        for tag_end, tag in tag_contents(text, "answer", _MAX_CLAIMS):
            ans = _clause_answer(tag[-_SPAN_CHARS * 5:], "answer_tag", tag_end)
            if ans is not None:
                out.append(ans)
    pos = len(text)
    for _ in range(_MAX_CLAIMS):
        pos = text.rfind("####", 0, pos)
        if pos < 0:
            break
        line = _after_marker(text, pos + 4)
        ans = _clause_answer(line, "####", pos, tail=text[pos + 4 + len(line):pos + 84 + len(line)])
        if ans is not None:
            out.append(ans)
    boxes: dict[int, Answer] = {}
    if "boxed" in text or "fbox" in text:
        for begin, box in reversed(boxed_contents(text, _MAX_CLAIMS)):
            ans = _clause_answer(box[-_SPAN_CHARS * 5:], "boxed", begin)
            if ans is not None:
                out.append(ans)
                boxes[begin] = ans
    for end in _answer_is_ends(text):
        span = text[end:end + _SPAN_CHARS].split("\n\n", 1)[0]
        ans = _boxed_statement(span, end, boxes) if boxes else None
        if ans is None:
            ans = _clause_answer(span, "answer_is", end, sentence=True)
        if ans is not None:
            out.append(ans)
    return out


#: "the final answer is $\boxed{18}$." -- the statement is its box (a plain number) and nothing else
_BOX_ONLY = re.compile(r"[ \t]*(\$?)\\boxed\{(-?\d[\d,]*(?:\.\d+)?)\}\1[.!]?[ \t]*\Z")


def _boxed_statement(span: str, end: int, boxes: dict[int, Answer]) -> Answer | None:
    """The "answer is" claim whose whole statement is a box already read as a claim (a plain number
    in ``\\boxed{}``, nothing else up to the paragraph's end): the box's own reading at the
    statement's place (what :func:`_clause_answer` gives, without reading it twice); None otherwise."""
    m = _BOX_ONLY.match(span)
    box = boxes.get(end + m.start(2)) if m is not None else None
    if box is None or box.candidates is not None or box.number.alts:
        return None
    shift = m.start(2)
    n = box.number
    return Answer(NumberMatch(n.start + shift, n.end + shift, n.text, n.value, n.percent, n.too_long, n.alts,
                              n.arithmetic),
                  "answer_is", None, end)


def _same(a: Answer, b: Answer) -> bool:
    x, y = a.number, b.number
    return x.value is not None and (x.value == y.value or y.value in x.alts or x.value in y.alts)


def _marked(text: str) -> Answer | None:
    """The claim of the first marker (in policy order) that holds a number. POLICY (stuffing):
    when the reply makes other claims with a different value that no correction ("wait",
    "actually", "I made a mistake" ...) retracts, the answer is ``ambiguous``; a claim retracted by
    a later one gives way to the latest claim."""
    claims = _claims(text)
    if len(claims) <= 1:  # one claim: no rival, no retraction (the rules below return it unchanged)
        return claims[0] if claims else None
    first = claims[0]
    value = first.number.value
    if value is not None and all(c.candidates is None and not c.number.alts and c.number.value == value
                                 for c in claims):
        return first  # every claim the same value, none hedged: all live, no rival, no hedge (below)
    by_pos = sorted(claims, key=lambda c: c.pos)
    live = [by_pos[-1]]
    live_ids = {id(by_pos[-1])}  # claims are told apart by identity (each has its own place)
    for c, nxt in zip(reversed(by_pos[:-1]), reversed(by_pos[1:])):
        # a claim repeated before a correction is retracted with its repeat ("Final Answer: The
        # final answer is 21. ... Wait, actually the answer is 31.")
        if (id(nxt) in live_ids) if _same(c, nxt) else not _CORRECTION.search(ascii_lower(text[c.pos:nxt.pos])):
            live.append(c)
            live_ids.add(id(c))
    live.reverse()
    chosen = next((c for c in claims if id(c) in live_ids), by_pos[-1])
    if chosen.candidates is None:
        other = next((c for c in live if not _same(chosen, c) and c.number.value is not None), None)
        if other is not None:
            return Answer(chosen.number, chosen.method, [show(chosen.number), show(other.number)], chosen.pos, True)
        hedging = next((c for c in live if c.candidates is not None), None)
        if hedging is not None:  # "The answer is $\\boxed{18}$ or maybe 20": the box alone is no answer
            return Answer(chosen.number, chosen.method, hedging.candidates, chosen.pos)
    return chosen


def _sentence_answer(text: str) -> Answer | None:
    """The last sentence's number: the first after its last '=' (the result of a shown equation:
    "4 + 5 = 9 birds on the tree and 2 on the ground" -> 9), else the only number (after its last
    conclusion word when it holds several), or a hedge between several; None when it holds none or
    several unrelated numbers."""
    if "<answer>" in text:
        return None  # the tag format was chosen; an unclosed or number-less tag is no answer
    sentence = drop_paren_asides(clean_latex(last_sentence(text)))
    if _HEDGE_START.match(ascii_lower(sentence)):  # "She has 18 apples. Or maybe 20."
        num = first_number(sentence)
        return Answer(num, "last_sentence", [num.text.strip(), "an earlier statement"]) if num else None
    eq = sentence.rfind("=")
    clause = sentence[eq + 1:] if eq >= 0 and first_number(sentence, eq + 1) is not None else sentence
    nums = list(islice(find_numbers(clause), 3))
    if not nums:
        words = word_numbers(clause)
        if len(words) != 1:
            return None
        return Answer(words[0], "last_sentence", None)
    candidates = hedged(clause, nums[0], lists=False)
    if len(nums) == 2 and candidates is None:
        first = restated(clause, nums[0])
        if first is not nums[0]:  # "It takes 120 minutes, or 2 hours."
            return Answer(first, "last_sentence", None)
    if len(nums) > 1 and candidates is None and eq < 0:
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
    return Answer(nums[0], "last_sentence", candidates)


def _last_number_answer(text: str) -> Answer | None:
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
    return Answer(m, "last_number", candidates)


def prepare_reply(completion: str, tags=None) -> tuple[str | None, dict]:
    """The reply every rule reads (normalised, reasoning block cut off, own turn only, Markdown
    emphasis and asides dropped); None when the reasoning never closed."""
    text, cut = end_of_turn(normalize(completion))
    split = split_reasoning(text, tags)
    if split.reply is None:
        return None, {"reasoning": "unclosed"}
    reply, cut2 = own_turn(split.reply, tokens=False)  # end_of_turn already cut at the first token
    cut = cut or cut2
    info = {"cut_at": cut} if cut else {}
    if "**" in reply or "__" in reply:
        reply = reply.replace("**", "").replace("__", "")
    return drop_asides(reply), info


def answers(reply: str | None) -> tuple[Answer | None, Answer | None]:
    """(strict answer, flexible answer) of a prepared reply."""
    if reply is None:
        return None, None
    ans = _marked(reply)
    if ans is not None:
        return ans, ans
    reply = drop_signoff(reply)
    ans = _sentence_answer(reply)
    return ans, ans if ans is not None else _last_number_answer(reply)


_LEAD = re.compile(r"[\s:]*")
#: where a claim's statement ends: a blank line, a new sentence ("$\\frac{3}{2}$. I hope it is
#: correct."), or chatter run on after the number ("#### 3000 Let me know if ... the 3 steps!")
_STATEMENT_END = re.compile(r"\n[ \t]*\n|(?<=[.!?])\s+(?=[A-Z])|(?<=[\d$}])\s+(?=(?:Let|I|I'm|Hope|Feel|If|"
                            r"Please|Thanks?|Happy|Glad|Good|Enjoy|Would|Do|Does|Is|Are|Want|Need)\b)")


def statement(reply: str) -> tuple[Answer | None, str]:
    """For a verifier that parses the answer's text itself (:mod:`.math`): the strict answer of a
    reply it prepared (:func:`answers`, with Markdown emphasis masked in place) and the text that
    states it -- from the start of the chosen marker's paragraph to the end of its sentence
    (:data:`_STATEMENT_END`), so that a claim it retracted, a sign-off or an afterthought after it
    is never read; the reply without its sign-offs (:func:`._final.drop_signoff`) when no marker
    holds a number. Same rules as gsm8k's, one mechanism: a hedge shows as ``Answer.candidates``."""
    masked = reply.replace("**", "  ").replace("__", "  ") if "**" in reply or "__" in reply else reply
    ans = _marked(masked)
    if ans is None:
        trimmed = drop_signoff(masked)
        return _sentence_answer(trimmed), reply[:len(trimmed)]
    if ans.method not in ("answer_is", "####"):
        return ans, reply
    start = masked.rfind("\n\n", 0, ans.pos)
    content = _LEAD.match(masked, ans.pos + (4 if ans.method == "####" else 0)).end()
    end = _STATEMENT_END.search(masked, content)
    stop = len(reply) if end is None else end.start()
    if ans.method == "####":  # "#### 48" is its line
        line_end = masked.find("\n", content)
        stop = stop if line_end < 0 else min(stop, line_end)
    return ans, reply[0 if start < 0 else start + 2:stop]


def show(m: NumberMatch | None) -> str | None:
    if m is None:
        return None
    return m.text.strip() if len(m.text) <= 100 else m.text[:100] + "..."
