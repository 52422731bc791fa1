"""Stepwise arithmetic verifier: checks every ``A op B = C`` step a model writes in its reasoning.

What counts as a step (inside ``<think>...</think>`` when there is a ``</think>``, else the whole
completion):

* GSM8K calculator notes ``<<48/2=24>>``. In GSM8K solutions the note's result is repeated in the
  visible text (``48/2 = <<48/2=24>>24``); a visible step with the same value and claim as a note is
  the same step and is counted once.
* Runs of arithmetic inside a line, such as ``2 + 3 * 4 = 14``, ``$5 x 3 = $15``,
  ``16 - 3 - 4 = 9 eggs``, ``(12 + 8) ÷ 4 = 5`` or chains ``2 + 3 * 4 = 2 + 12 = 14`` (one step per
  ``=``; ``≈`` counts as ``=``). Operators: ``+ - − – * × x · / ÷ ^ **`` with the usual precedence
  and parentheses. A step needs at least one binary operator; ``x = 5`` or ``total = 15`` is not a step.
* Numbers: ``1,000``, ``$5``, ``.5``, ``50%``, mixed numbers ``3 1/2`` (only when the fraction is
  proper), ``½ ¼ ¾ ⅓ ⅔ ⅛``, ``\\frac{a}{b}``, and space-grouped thousands after a currency sign
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
* **Rounding**: when the claimed side is a decimal literal with ``d`` decimals, the step is right
  when the exact value is within one unit of the last shown digit (``10/3 = 3.33`` and ``3.34``
  rounded up or down are both accepted; ``10/3 = 3.3`` too; ``10/3 = 3`` is not). Integers are exact.
* **Percent**: a side is evaluated with ``x%`` read as ``x/100`` and, separately, with ``%`` read as a
  unit; the step is right if either reading makes both sides equal (``20% * 50 = 10`` and
  ``100% - 20% = 80%`` are right).
* Division by zero on the left of a claim makes the step wrong; a step whose numbers are too big
  to evaluate cheaply (over ``MAX_DIGITS`` digits, or results over ~20k bits) is skipped.
* Input beyond :data:`MAX_CHARS` characters is not read (``details["truncated"]``); at most
  :data:`MAX_STEPS` steps are checked. Cost is linear in the input.

Verdict: ``score`` = fraction of right steps; ``details["steps"]`` lists ``{text, expected, claimed,
ok, source}``; ``details["n_correct"]`` / ``details["n_steps"]`` give the counts (for rewards such
as "+0.2 per correct step"); ``correct`` is True when every step is right, None with reason
``no_steps`` when there is nothing to check.
"""
from __future__ import annotations

import re
from collections import Counter
from fractions import Fraction

from ._extract import think_content
from ._numbers import MAX_DIGITS, format_fraction
from .base import CORRECT, Verdict, register

__all__ = ["verify_stepwise", "find_steps", "check_equation", "NO_STEPS", "WRONG_STEPS"]

NO_STEPS = "no_steps"
WRONG_STEPS = "wrong_steps"
MAX_CHARS = 100_000
MAX_STEPS = 2000
_MAX_PART_TOKENS = 200
_MAX_DEPTH = 60
_MAX_BITS = 20_000

_NOTE = re.compile(r"<<([^<>\n]{0,300}?)>>")
_LATEX = re.compile(r"\\(times|cdot|div|ast|left|right|\$|%|,|!|;)")
_LATEX_MAP = {"times": "×", "cdot": "·", "div": "÷", "ast": "*", "left": "", "right": "", "$": "$",
              "%": "%", ",": " ", "!": "", ";": " "}
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox|textrm)\s*\{([^{}]{0,200})\}")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]{1,60})\}\s*\{([^{}]{1,60})\}")
_TOKEN = re.compile(
    r"""
    (?P<mixed>\d+[ ]\d+/\d+(?![\d.,/]))
    |(?P<spnum>(?<=[$\u20ac\u00a3])\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?![\d,]|\.\d))
    |(?P<num>(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)
    |(?P<op>\*\*|[-+*/^×÷·⋅∗\u2212\u2013])
    |(?P<eq>[=≈])
    |(?P<lp>[(\[])
    |(?P<rp>[)\]])
    |(?P<pct>%)
    |(?P<cur>[$€£])
    |(?P<word>[A-Za-z]+)
    |(?P<sp>[ \t]+)
    |(?P<other>.|\n)
    """,
    re.VERBOSE,
)
_OP_CANON = {"×": "*", "·": "*", "⋅": "*", "∗": "*", "÷": "/", "**": "^", "\u2212": "-", "\u2013": "-"}


class _Skip(Exception):
    """The step cannot be evaluated cheaply (huge numbers): it is not counted."""


class _Bad(Exception):
    """The tokens are not an arithmetic expression."""


# ----------------------------------------------------------------------------------------- tokens
# A token is (kind, value, start, end): kind in N (value=(digits, pct)), OP, EQ, LP, RP, BREAK.

def _improper(mixed: str) -> bool:
    top, bottom = mixed.split(" ")[1].split("/")
    return len(top) > len(bottom) or (len(top) == len(bottom) and top >= bottom)


def _tokenize(text: str) -> list[tuple]:
    """Tokens (kind, value, start, end). Kinds: N (value = [text, percent, unit_label]), OP, EQ,
    LP, RP, BREAK (ends a run of arithmetic) and V (a variable or words inside an expression:
    the side holding it is not checked)."""
    raw = [(m.lastgroup, m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    out: list[tuple] = []
    n = len(raw)

    def next_sig(i: int) -> tuple | None:
        while i < n and raw[i][0] in ("sp", "cur"):
            i += 1
        return raw[i] if i < n else None

    def operand_before() -> bool:
        return bool(out) and out[-1][0] in ("N", "RP")

    def word_before() -> bool:
        return bool(out) and (out[-1][0] == "V" or (out[-1][0] == "BREAK" and out[-1][1][:1].isalpha()))

    def is_operand(tok: tuple | None) -> bool:
        return tok is not None and tok[0] in ("num", "mixed", "spnum", "lp")

    i = depth = 0
    while i < n:
        kind, s, a, b = raw[i]
        if s == "\n":
            depth = 0
        if kind == "mixed" and _improper(s):  # "Step 3 10/2": not a mixed number
            whole, frac = s.split(" ")
            top, bottom = frac.split("/")
            k = a + len(whole) + 1
            out.extend([("N", [whole, False, False], a, a + len(whole)), ("N", [top, False, False], k, k + len(top)),
                        ("OP", "/", k + len(top), k + len(top) + 1), ("N", [bottom, False, False], b - len(bottom), b)])
        elif kind in ("num", "mixed", "spnum"):
            if out and out[-1][0] == "RP":  # "(1/2) 278": juxtaposition we do not guess at
                out.append(("V", "", a, a))
            out.append(("N", [s, False, False], a, b))
        elif kind == "op":
            op = _OP_CANON.get(s, s)
            nxt = next_sig(i + 1)
            operand_after = is_operand(nxt) or (
                nxt is not None and nxt[0] == "op" and nxt[1] in "-\u2212\u2013" and op != "-")
            if operand_before() and (operand_after or op in "+-"):
                out.append(("OP", op, a, b))
            elif out and out[-1][0] == "V":
                out.append(("V", s, a, b))  # "3x/3": still part of the variable expression
            elif operand_before() and nxt is not None and nxt[0] == "word":
                out.append(("V", s, a, b))  # "(3/4)*number of novels": words as an operand
            elif word_before() and i + 1 < n and raw[i + 1][0] == "sp":
                out.append(("V", s, a, b))  # "books - 135 sold books": the left operand is words
            elif op in "*^":
                pass  # markdown emphasis (**8**), not an operator
            elif op in "+-" and operand_after and not (
                    (not out or out[-1][1] == "\n") and i + 1 < n and raw[i + 1][0] == "sp"):
                out.append(("OP", "u" + op, a, b))  # (a "- " opening a line is a list bullet)
            else:
                out.append(("BREAK", s, a, b))
        elif kind == "eq":
            out.append(("EQ", s, a, b))
        elif kind == "lp":
            if operand_before():
                if out[-1][3] == a:  # implicit multiplication, written glued: 2(40+9), 27(1/3)
                    out.append(("OP", "*", a, a))
                else:  # "4 (15 minutes)", "1/2 (68)": an aside or a guess; not checked
                    out.append(("V", "", a, a))
            out.append(("LP", s, a, b))
            depth += 1
        elif kind == "rp":
            if depth > 0:
                out.append(("RP", s, a, b))
                depth -= 1
            else:  # "1) 5+3=8": an enumerator, not a group
                out.append(("BREAK", s, a, b))
        elif kind == "pct":
            if out and out[-1][0] == "N" and not out[-1][1][1]:
                out[-1] = ("N", [out[-1][1][0], True, False], out[-1][2], b)
            else:
                out.append(("BREAK", s, a, b))
        elif kind == "word":
            nxt = next_sig(i + 1)
            if s in ("x", "X", "times") and operand_before() and is_operand(nxt):
                out.append(("OP", "*", a, b))
            elif s == "of" and out and is_operand(nxt) and out[-1][0] == "N" and (
                    out[-1][1][1] or (len(out) > 2 and out[-2][0] == "OP" and out[-2][1] == "/")):
                out.append(("OP", "*", a, b))  # "25% of 80", "3/4 of 364"
            elif len(s) > 1 and out and out[-1][0] == "N":
                # unit words after a number ("5 cm +", "$5 per hour *"): skip when arithmetic follows
                j, words = i, 0
                while j < n and raw[j][0] in ("word", "sp", "cur") and words < 4:
                    if raw[j][0] == "word":
                        if len(raw[j][1]) == 1:
                            break
                        words += 1
                    j += 1
                nxt = raw[j] if j < n else None
                if nxt is not None and nxt[0] == "word" and nxt[1] in ("x", "X") and is_operand(next_sig(j + 1)):
                    i = j  # "15 pages x 1/3": the x is the operator
                    continue
                if nxt is not None and nxt[0] in ("op", "eq", "rp") and words < 4:
                    if nxt[0] == "eq":  # "2 hours = ...": a label, not a claim
                        out[-1] = ("N", [out[-1][1][0], out[-1][1][1], True], out[-1][2], out[-1][3])
                    i = j
                    continue
                out.append(("BREAK", s, a, b))
            elif len(s) == 1 or (out and out[-1][0] == "OP"):
                out.append(("V", s, a, b))  # a variable (2x + 3) or words inside an expression
            else:
                out.append(("BREAK", s, a, b))
        elif kind in ("sp", "cur"):
            pass
        else:
            out.append(("BREAK", s, a, b))
        i += 1
    return out


# ------------------------------------------------------------------------------------- evaluation
def _check(v: Fraction) -> Fraction:
    if v.numerator.bit_length() > _MAX_BITS or v.denominator.bit_length() > _MAX_BITS:
        raise _Skip
    return v


class _Parser:
    """Recursive descent over tokens: expr := term (+|- term)*; term := unary (*|/ unary)*;
    unary := (u-|u+) unary | power; power := atom (^ unary)?; atom := N | ( expr )."""

    def __init__(self, toks: list[tuple], pct: bool):
        self.t, self.i, self.pct, self.depth = toks, 0, pct, 0

    def parse(self) -> Fraction:
        v = self.expr()
        if self.i != len(self.t):
            raise _Bad
        return v

    def peek(self) -> tuple | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def expr(self) -> Fraction:
        v = self.term()
        while (p := self.peek()) is not None and p[0] == "OP" and p[1] in "+-":
            self.i += 1
            w = self.term()
            v = _check(v + w if p[1] == "+" else v - w)
        return v

    def term(self) -> Fraction:
        v = self.unary()
        while (p := self.peek()) is not None and p[0] == "OP" and p[1] in "*/":
            self.i += 1
            w = self.unary()
            if p[1] == "*":
                v = _check(v * w)
            else:
                if w == 0:
                    raise ZeroDivisionError
                v = _check(v / w)
        return v

    def unary(self) -> Fraction:
        p = self.peek()
        if p is not None and p[0] == "OP" and p[1] in ("u-", "u+"):
            self.i += 1
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise _Skip
            v = self.unary()
            self.depth -= 1
            return -v if p[1] == "u-" else v
        return self.power()

    def power(self) -> Fraction:
        base = self.atom()
        p = self.peek()
        if p is not None and p[0] == "OP" and p[1] == "^":
            self.i += 1
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise _Skip
            e = self.unary()
            self.depth -= 1
            if e.denominator != 1:
                raise _Skip  # roots: not exact rational arithmetic
            bits = max(base.numerator.bit_length(), base.denominator.bit_length())
            if abs(e.numerator) > 10_000 or bits * abs(e.numerator) > _MAX_BITS:
                raise _Skip
            if base == 0 and e < 0:
                raise ZeroDivisionError
            return base ** int(e)
        return base

    def atom(self) -> Fraction:
        p = self.peek()
        if p is None:
            raise _Bad
        if p[0] == "N":
            self.i += 1
            if self.i < len(self.t) and self.t[self.i][0] in ("N", "LP"):
                raise _Bad
            return _num_value(p[1], self.pct)
        if p[0] == "LP":
            self.i += 1
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise _Skip
            v = self.expr()
            self.depth -= 1
            q = self.peek()
            if q is None or q[0] != "RP":
                raise _Bad
            self.i += 1
            return v
        raise _Bad


def _num_value(num: list, pct: bool) -> Fraction:
    digits, is_pct = num[0], num[1]
    if len(digits) > MAX_DIGITS:
        raise _Skip
    if "/" in digits:  # mixed number "3 1/2"
        whole, frac = digits.split()
        top, bottom = frac.split("/")
        if int(bottom) == 0:
            raise _Bad
        v = int(whole) + Fraction(int(top), int(bottom))
    else:
        v = Fraction(digits.replace(",", "").replace(" ", "").replace("\u00a0", "").replace("\u202f", ""))
    return v / 100 if (pct and is_pct) else v


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
    if expected == claimed:
        return True
    if claim_tok is None:
        return False
    d = _decimals(claim_tok)
    return d > 0 and abs(expected - claimed) < Fraction(1, 10 ** d)


def _eval_side(toks: list[tuple], pct: bool) -> Fraction:
    return _Parser(toks, pct).parse()


def _parse_left(toks: list[tuple]) -> list[tuple]:
    """Longest parseable suffix of a left side (drops leading junk such as a step number); only a
    few start points are tried, so a long run of tokens stays linear."""
    if any(t[0] == "V" for t in toks):
        raise _Bad
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
    for tok in run:
        if tok[0] == "EQ":
            parts.append([])
        else:
            parts[-1].append(tok)
    if len(parts) < 2:
        return
    for left, right in zip(parts, parts[1:]):
        if not left or not right or len(left) > _MAX_PART_TOKENS or len(right) > _MAX_PART_TOKENS:
            continue
        try:
            left = _parse_left(left)
            right = _parse_right(right)
            res = check_equation(left, right)
        except (_Bad, _Skip):
            continue
        if res is None:
            continue
        expected, claimed, ok = res
        yield text[left[0][2]:right[-1][3]].strip(), expected, claimed, ok, source


_VULGAR = re.compile(r"(\d?)([\u00bd\u00bc\u00be\u2153\u2154\u215b])")
_VULGAR_MAP = {"\u00bd": "1/2", "\u00bc": "1/4", "\u00be": "3/4", "\u2153": "1/3", "\u2154": "2/3", "\u215b": "1/8"}


def _prepare(text: str) -> str:
    text = _VULGAR.sub(lambda m: (m.group(1) + " " if m.group(1) else "") + _VULGAR_MAP[m.group(2)], text)
    if "\\" in text:
        text = _LATEX_TEXT.sub(r" \1 ", text)
        text = _LATEX_FRAC.sub(r"(\1)/(\2)", text)
        text = _LATEX.sub(lambda m: _LATEX_MAP[m.group(1)], text)
    return text


def find_steps(text: str) -> list[dict]:
    """Every arithmetic step in ``text`` (no ``<think>`` handling), each ``{text, expected,
    claimed, ok, source}`` with ``source`` "note" (``<<a=b>>``) or "text"."""
    steps: list[dict] = []
    seen: Counter = Counter()
    notes = _NOTE.findall(text) if "<<" in text else []
    for note in notes:
        for s in _steps_in(_prepare(note), "note"):
            steps.append(_step_dict(*s))
            seen[(s[1], s[2])] += 1
            if len(steps) >= MAX_STEPS:
                return steps
    visible = _NOTE.sub(" ", text) if notes else text
    for s in _steps_in(_prepare(visible), "text"):
        key = (s[1], s[2])
        if seen[key] > 0:  # the visible copy of a calculator note
            seen[key] -= 1
            continue
        steps.append(_step_dict(*s))
        if len(steps) >= MAX_STEPS:
            break
    return steps


def _step_dict(text, expected, claimed, ok, source) -> dict:
    return {"text": text if len(text) <= 200 else text[:200] + "...", "expected": format_fraction(expected),
            "claimed": format_fraction(claimed), "ok": ok, "source": source}


def verify_stepwise(completion: str) -> Verdict:
    """Stepwise arithmetic: fraction of ``A op B = C`` steps (and ``<<a=b>>`` notes) that are right.

    Checks the ``<think>`` block when there is one, else the whole completion. See the module
    docstring for what counts as a step, the rounding and the percent policy.
    """
    if not isinstance(completion, str):
        completion = "" if completion is None else str(completion)
    think = think_content(completion)
    text = think if think is not None else completion
    details: dict = {"scope": "think" if think is not None else "completion"}
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS]
        details["truncated"] = True
    steps = find_steps(text)
    n = len(steps)
    n_ok = sum(1 for s in steps if s["ok"])
    details.update(steps=steps, n_correct=n_ok, n_steps=n)
    if n == 0:
        return Verdict(0.0, None, None, NO_STEPS, details)
    return Verdict(n_ok / n, n_ok == n, f"{n_ok}/{n}", CORRECT if n_ok == n else WRONG_STEPS, details)


register("stepwise", verify_stepwise, fields=(),
         description="Stepwise arithmetic: fraction of 'A op B = C' steps and <<a=b>> notes that are right")
