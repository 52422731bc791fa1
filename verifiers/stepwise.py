"""Stepwise arithmetic verifier: checks every ``A op B = C`` step a model writes in its reasoning.

What counts as a step (inside ``<think>...</think>`` when there is a ``</think>``, else the whole
completion):

* GSM8K calculator notes ``<<48/2=24>>``. In GSM8K solutions the note's result is repeated in the
  visible text (``48/2 = <<48/2=24>>24``); a visible step with the same value and claim as a note is
  the same step and is counted once.
* A claim written ``→``, ``->``, ``⇒``, "equals", "is", "gives", "makes", "yields" between an
  arithmetic left side and a number is read as ``=`` (POLICY, class 6: a wrong step is checked
  whatever the notation, so the reward never rises by writing "is" instead of "=").
* Runs of arithmetic inside a line, such as ``2 + 3 * 4 = 14``, ``$5 x 3 = $15``,
  ``16 - 3 - 4 = 9 eggs``, ``(12 + 8) ÷ 4 = 5`` or chains ``2 + 3 * 4 = 2 + 12 = 14`` (one step per
  ``=``; ``≈`` counts as ``=``). Operators: ``+ - − – * × x · / ÷ ^ **`` with the usual precedence
  and parentheses. A step needs at least one binary operator; ``x = 5`` or ``total = 15`` is not a step.
* Numbers: ``1,000``, ``$5``, ``.5``, ``50%``, mixed numbers ``3 1/2`` (only when the fraction is
  proper), ``½ ¼ ¾ ⅓ ⅔ ⅛`` (every vulgar fraction and superscript power, by :mod:`._reply`), decimal
  commas and scale words as :mod:`._numbers` reads them for gsm8k (``€7,50``, ``2,5 × 4``, ``$1.5
  million``; POLICY, class 4: one reading of a number for every verifier), ``\\frac{a}{b}``, and space-grouped thousands after a currency sign
  (``$350 000``). Implicit multiplication is read only when written glued (``2(40+9)``,
  ``27(1/3)``); a spaced parenthesis after a number (``= 4 (15 minutes)``, ``1/2 (68)``) is an aside:
  a claim keeps its leading number, a left side holding it is not checked.
* Unit words right after a number are skipped when the
  arithmetic continues (``5 cm + 3 cm = 8 cm``, ``$5 per hour * 3 hours = $15``). A single-letter
  word is a variable, not a unit, so ``2x + 3 = 7`` is not checked as ``2 + 3 = 7``; ``x`` or
  ``times`` between two numbers is multiplication, and so is ``of`` after a percentage or a
  fraction (``25% of 80 = 20``, ``3/4 of 364 = 273``). Markdown ``**bold**`` around numbers is ignored.

Policy:

* Arithmetic is exact (:class:`fractions.Fraction`, our own small parser -- never ``eval``).
* **Rounding** with ``≈``: an integer claim after ``≈`` is right within 1/2 (``1000 / 7 ≈ 143``; the
  shown precision is 0 decimals); ``143.5`` after ``≈`` follows the decimal rule below.
* **Rounding**: a claimed decimal with ``d`` decimals is right when it equals the exact value
  rounded to ``d`` decimals (``7 / 3 = 2.33`` right, ``2.34`` wrong, ``10/3 = 3.3`` right; an exact
  half may round either way). An integer claim must be exact (``10/3 = 3`` is wrong).
* **Chains**: ``a = b = c`` checks every link; a link between two bare numbers (``7 * 3 = 21 = 22``)
  is checked when the chain already held a step.
* **Percent**: a side is evaluated with ``x%`` read as ``x/100`` and, separately, with ``%`` read as a
  unit; the step is right if either reading makes both sides equal (``20% * 50 = 10`` and
  ``100% - 20% = 80%`` are right).
* Division by zero on the left of a claim makes the step wrong.
* **Unverifiable steps are never dropped** (anti-hacking): a step that cannot be evaluated -- a power
  tower or result over ~20k bits, a number over ``MAX_DIGITS`` digits, a root, an operator we do
  not evaluate (``5! = 120``, ``√16 = 4``, ``sqrt(16) = 4``, ``10 mod 3 = 1``, ``log 100 = 2``) -- is
  listed with ``ok=None, unverifiable=True`` and counts as *not right*; the reason is
  ``unverifiable_steps`` when there is no wrong step. Writing wrong arithmetic in a form we cannot
  check therefore never raises the score.
* **Padding** (anti-hacking): a step repeated word for word (whitespace aside) counts once
  (``details["n_repeated"]`` counts the copies), so repeating a right step -- or a whole reasoning
  block -- never raises the score. The score measures arithmetic accuracy, not progress: a block of
  many *distinct* trivial right steps (``1 + 1 = 2``, ``2 + 1 = 3``, ...) scores the share of them
  that are right, like any other steps. Use ``stepwise`` as a shaping term beside an outcome verifier
  (``gsm8k+0.2*stepwise``), never as the only reward.
* Input beyond :data:`MAX_CHARS` characters is not read (``details["truncated"]``); at most
  :data:`MAX_STEPS` distinct steps are checked. Cost is linear in the input.

Verdict: ``score`` = right distinct steps / distinct steps; ``details["steps"]`` lists ``{text,
expected, claimed, ok, source}``; ``details["n_correct"]`` / ``n_steps`` / ``n_unverifiable`` /
``n_repeated`` give the counts (for rewards such as "+0.2 per correct step"); ``correct`` is True
when every step is right, None with reason ``no_steps`` when there is nothing to check. Reasons:
``correct``, ``wrong_steps``, ``unverifiable_steps``, ``no_steps``.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from fractions import Fraction

from ._arith import _Bad, _Parser, _Skip, _tokenize
from ._reply import UNCLOSED, normalize, split_reasoning
from ._numbers import format_fraction, plain_numbers
from .base import CORRECT, Verdict, register

__all__ = ["verify_stepwise", "find_steps", "check_equation", "NO_STEPS", "WRONG_STEPS", "UNVERIFIABLE_STEPS"]

NO_STEPS = "no_steps"
WRONG_STEPS = "wrong_steps"
UNVERIFIABLE_STEPS = "unverifiable_steps"
MAX_CHARS = 100_000
MAX_STEPS = 2000
_MAX_PART_TOKENS = 200

_SPACES = re.compile(r"\s+")
_NOTE = re.compile(r"<<([^<>\n]{0,300}?)>>")
_LATEX = re.compile(r"\\(times|cdot|div|ast|left|right|\$|%|,|!|;)")
_LATEX_MAP = {"times": "×", "cdot": "·", "div": "÷", "ast": "*", "left": "", "right": "", "$": "$",
              "%": "%", ",": " ", "!": "", ";": " "}
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox|textrm)\s*\{([^{}]{0,200})\}")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]{1,60})\}\s*\{([^{}]{1,60})\}")
def _decimals(tok: tuple) -> int:
    s = tok[1][0]
    return len(s) - s.index(".") - 1 if "." in s else 0


def _literal(toks: list[tuple]) -> tuple | None:
    """The number token when a side is a single (optionally negated) number."""
    if len(toks) == 1 and toks[0][0] == "N":
        return toks[0]
    if len(toks) == 2 and toks[0][0] == "OP" and toks[0][1] == "u-" and toks[1][0] == "N":
        return toks[1]
    return None


def _has_binop(toks: list[tuple]) -> bool:
    return any(t[0] == "OP" and t[1] in "+-*/^" for t in toks)


def _has_pct(toks: list[tuple]) -> bool:
    return any(t[0] == "N" and t[1][1] for t in toks)


def _close(expected: Fraction, claimed: Fraction, claim_tok: tuple | None) -> bool:
    """Exact, or -- for a decimal claim with ``d`` decimals -- the exact value rounded to ``d``
    decimals (an exact half may round either way)."""
    if expected == claimed:
        return True
    if claim_tok is None:
        return False
    d = _decimals(claim_tok)
    if d == 0:
        return False
    scaled = expected * 10 ** d
    low = math.floor(scaled)
    rest = scaled - low
    nearest = {low} if rest < Fraction(1, 2) else {low + 1} if rest > Fraction(1, 2) else {low, low + 1}
    return claimed * 10 ** d in nearest


def _eval_side(toks: list[tuple], pct: bool) -> Fraction:
    return _Parser(toks, pct).parse()


def _parse_left(toks: list[tuple]) -> list[tuple]:
    """Longest parseable suffix of a left side (drops leading junk such as a step number); only a
    few start points are tried, so a long run of tokens stays linear."""
    if any(t[0] == "V" for t in toks):
        raise _Bad
    if any(t[0] == "U" for t in toks):
        raise _Skip  # an operator we do not evaluate: the step is unverifiable
    tries = 0
    for k, t in enumerate(toks):
        if t[0] in ("N", "LP") or (t[0] == "OP" and t[1] == "u-"):
            tries += 1
            if tries > 4:
                break
            try:
                _eval_side(toks[k:], True)
            except ZeroDivisionError:
                pass  # well-formed; the step is judged wrong later
            except _Bad:
                continue
            return toks[k:]
    raise _Bad


def _parse_right(toks: list[tuple]) -> list[tuple]:
    if any(t[0] == "U" for t in toks):
        raise _Skip
    k = 1 if toks and toks[0][0] == "OP" and toks[0][1] == "u-" else 0
    if any(t[0] == "V" for t in toks):
        # "= 4 (15 minutes)": the claim is the leading number when a variable/aside follows it
        if len(toks) > k + 1 and toks[k][0] == "N" and toks[k + 1][0] == "V":
            return toks[:k + 1]
        raise _Bad
    try:
        _eval_side(toks, True)
        return toks
    except ZeroDivisionError:
        return toks
    except _Bad:
        pass
    # "= 8 4 apples": keep just the leading number
    k = 1 if toks and toks[0][0] == "OP" and toks[0][1] == "u-" else 0
    if len(toks) > k and toks[k][0] == "N":
        return toks[:k + 1]
    raise _Bad


def check_equation(left: list[tuple], right: list[tuple]) -> tuple[Fraction | None, Fraction, bool] | None:
    """(expected, claimed, ok) for tokens ``left = right``, or None when it is not a checkable step."""
    if not _has_binop(left) and not _has_binop(right):
        return None
    lit_r, lit_l = _literal(right), _literal(left)
    if lit_r is None and lit_l is not None:  # "14 = 2 + 3 * 4": the claim is on the left
        if lit_l[1][2]:
            return None  # "2 hours = 2 * 60": a label with a unit, not a claim
        left, right, lit_r = right, left, lit_l
    readings = (True, False) if (_has_pct(left) or _has_pct(right)) else (True,)
    first = None
    for pct in readings:
        try:
            claimed = _eval_side(right, pct)
        except ZeroDivisionError:
            return None
        try:
            expected = _eval_side(left, pct)
        except ZeroDivisionError:
            expected = None
        ok = expected is not None and _close(expected, claimed, lit_r)
        if first is None:
            first = (expected, claimed, ok)
        if ok:
            return expected, claimed, True
    return first


def _steps_in(text: str, source: str, offset: int = 0):
    """Yield (text, expected, claimed, ok) for each equation in ``text``."""
    toks = _tokenize(text)
    run: list[tuple] = []
    for tok in toks + [("BREAK", "", len(text), len(text))]:
        if tok[0] != "BREAK":
            run.append(tok)
            continue
        if run:
            yield from _steps_in_run(text, run, source)
        run = []


def _steps_in_run(text: str, run: list[tuple], source: str):
    parts: list[list[tuple]] = [[]]
    eqs: list[str] = []
    for tok in run:
        if tok[0] == "EQ":
            parts.append([])
            eqs.append(tok[1])
        else:
            parts[-1].append(tok)
    if len(parts) < 2:
        return
    chained = False  # an earlier link of this chain was a step: a bare "= 21 = 22" link is checked too
    for left, right, eq in zip(parts, parts[1:], eqs):
        if not left or not right or len(left) > _MAX_PART_TOKENS or len(right) > _MAX_PART_TOKENS:
            chained = False
            continue
        raw = text[left[0][2]:right[-1][3]].strip()
        try:
            left = _parse_left(left)
            right = _parse_right(right)
            res = check_equation(left, right)
            if res is None and chained:
                res = _literal_link(left, right)
        except _Bad:
            chained = False
            continue
        except _Skip:
            chained = True
            yield raw, None, None, None, source
            continue
        if res is None:
            continue
        chained = True
        expected, claimed, ok = res
        if not ok and eq == "\u2248" and claimed.denominator == 1 and expected is not None:
            ok = abs(expected - claimed) <= Fraction(1, 2)  # "1000 / 7 ≈ 143": shown precision, 0 decimals
        yield text[left[0][2]:right[-1][3]].strip(), expected, claimed, ok, source


def _literal_link(left: list[tuple], right: list[tuple]) -> tuple[Fraction, Fraction, bool] | None:
    """A chain link between two bare numbers (``7 * 3 = 21 = 22``: the ``21 = 22`` link)."""
    lit_l, lit_r = _literal(left), _literal(right)
    if lit_l is None or lit_r is None or lit_l[1][2]:
        return None  # "= 12 inches = 1 foot": a unit conversion, not a claim
    expected, claimed = _eval_side(left, True), _eval_side(right, True)
    return expected, claimed, _close(expected, claimed, lit_r)


_VULGAR = re.compile(r"(\d?)([\u00bd\u00bc\u00be\u2153\u2154\u215b])")
_VULGAR_CHAR = re.compile(r"[\u00bd\u00bc\u00be\u2153\u2154\u215b]")  # the cheap pre-scan
_VULGAR_MAP = {"\u00bd": "1/2", "\u00bc": "1/4", "\u00be": "3/4", "\u2153": "1/3", "\u2154": "2/3", "\u215b": "1/8"}


#: claims written in words or arrows are claims like "=" (issue 26, class 6): "12 * 3 → 36",
#: "5 + 7 equals 12", "4 * 6 is 24", "3 * 5 gives 15"
#: (the character before the claim word is matched as group 1 -- not a look-behind -- so that the regex
#: engine scans for it instead of trying a look-behind at every position; the substitution keeps it)
_WORD_EQ = re.compile(r"([\d)%])[ \t]*(?:\u2192|->|=>|\u21d2|\u27f6|\bequals\b|\bis equal to\b|\bis\b|"
                      r"\bgives(?: us)?\b|"
                      r"\bmakes\b|\byields\b|\bresults in\b)[ \t]*(?=\$?[-\u2212]?\d|\(|\.\d)")


_WORD_EQ_HINTS = ("\u2192", "->", "=>", "\u21d2", "\u27f6", "equals", "equal to", " is ", "gives", "makes", "yields",
                  "results in")


def _prepare(text: str) -> str:
    text = plain_numbers(text)  # decimal commas and scale words, read as gsm8k reads them
    if any(map(text.__contains__, _WORD_EQ_HINTS)) and _WORD_EQ.search(text):
        text = _WORD_EQ.sub(lambda m: m.group(1) + " = ", text)
    if _VULGAR_CHAR.search(text):
        text = _VULGAR.sub(lambda m: (m.group(1) + " " if m.group(1) else "") + _VULGAR_MAP[m.group(2)], text)
    if "\\" in text:
        text = _LATEX_TEXT.sub(r" \1 ", text)
        text = _LATEX_FRAC.sub(r"(\1)/(\2)", text)
        text = _LATEX.sub(lambda m: _LATEX_MAP[m.group(1)], text)
    return text


def find_steps(text: str) -> list[dict]:
    """Every arithmetic step in ``text`` (no ``<think>`` handling), each ``{text, expected,
    claimed, ok, source}`` with ``source`` "note" (``<<a=b>>``) or "text"; ``ok`` is None for an
    unverifiable step. A step repeated word for word is listed once (``repeats`` counts the rest)."""
    steps: list[dict] = []
    seen: Counter = Counter()
    by_text: dict[str, dict] = {}
    notes = _NOTE.findall(text) if "<<" in text else []

    def add(s) -> bool:
        key = _SPACES.sub("", s[0])
        if key in by_text:
            by_text[key]["repeats"] = by_text[key].get("repeats", 0) + 1
            return False
        by_text[key] = _step_dict(*s)
        steps.append(by_text[key])
        return len(steps) >= MAX_STEPS

    memo: dict[tuple[str, str], list] = {}

    def steps_of(chunk: str, source: str) -> list:
        """Steps of one note or line; a repeated one is read once (runs of arithmetic end at a newline)."""
        key = (chunk, source)
        if key not in memo:
            memo[key] = list(_steps_in(_prepare(chunk), source))
        return memo[key]

    for note in notes:
        for s in steps_of(note, "note"):
            seen[(s[1], s[2])] += 1
            if add(s):
                return steps
    visible = _NOTE.sub(" ", text) if notes else text
    for line in visible.split("\n"):
        for s in steps_of(line, "text"):
            key = (s[1], s[2])
            if s[3] is not None and seen[key] > 0:  # the visible copy of a calculator note
                seen[key] -= 1
                continue
            if add(s):
                return steps
    return steps


def _step_dict(text, expected, claimed, ok, source) -> dict:
    step = {"text": text if len(text) <= 200 else text[:200] + "...", "expected": format_fraction(expected),
            "claimed": format_fraction(claimed), "ok": ok, "source": source}
    if ok is None:
        step["unverifiable"] = True
    return step


def verify_stepwise(completion: str, *, reasoning_tags=None) -> Verdict:
    """Stepwise arithmetic: share of the distinct ``A op B = C`` steps (and ``<<a=b>>`` notes) that
    are right; unverifiable steps count as not right.

    Checks the reasoning block when there is one (closed or not: the think-block contract of
    :mod:`._reply`; an unclosed block's steps are still steps), else the whole completion. See the module
    docstring for what counts as a step, the rounding, percent and padding policy.
    """
    if not isinstance(completion, str):
        completion = "" if completion is None else str(completion)
    split = split_reasoning(normalize(completion), reasoning_tags)
    think = split.reasoning
    text = think if think is not None else completion if split.reply is None else split.reply
    details: dict = {"scope": "think" if think is not None else "completion"}
    if split.state == UNCLOSED:
        details["reasoning"] = "unclosed"
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS]
        details["truncated"] = True
    steps = find_steps(text)
    n = len(steps)
    n_ok = sum(1 for s in steps if s["ok"])
    n_unverifiable = sum(1 for s in steps if s["ok"] is None)
    details.update(steps=steps, n_correct=n_ok, n_steps=n, n_unverifiable=n_unverifiable,
                   n_repeated=sum(s.get("repeats", 0) for s in steps))
    if n == 0:
        return Verdict(0.0, None, None, NO_STEPS, details)
    reason = CORRECT if n_ok == n else WRONG_STEPS if n_ok + n_unverifiable < n else UNVERIFIABLE_STEPS
    return Verdict(n_ok / n, n_ok == n, f"{n_ok}/{n}", reason, details)


register("stepwise", verify_stepwise, fields=(),
         description="Stepwise arithmetic: share of the distinct 'A op B = C' steps and <<a=b>> notes that are right")
