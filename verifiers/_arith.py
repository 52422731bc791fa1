"""Tokens and exact evaluation for the stepwise verifier: the arithmetic a model writes in prose.

:func:`_tokenize` turns text into tokens ``(kind, value, start, end)`` -- kinds ``N`` (a number:
``[text, percent, unit_label]``), ``OP``, ``EQ``, ``LP``, ``RP``, ``BREAK`` (ends a run of
arithmetic), ``V`` (a variable or words inside an expression: that side is not checked) and ``U``
(an operator we do not evaluate: factorial, root sign, ``sqrt``/``log``/``mod``...). :class:`_Parser`
evaluates a token list exactly with :class:`fractions.Fraction` (recursive descent with a depth
bound; never ``eval``). :class:`_Skip` means "cannot be evaluated cheaply" (the step is
*unverifiable*), :class:`_Bad` "not an arithmetic expression". What the tokens mean for a step, and
the policy, are in :mod:`.stepwise`.
"""
from __future__ import annotations

import re
from fractions import Fraction

from ._numbers import MAX_DIGITS

_MAX_DEPTH = 60
_MAX_BITS = 20_000
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
_FUNCTIONS = frozenset({"sqrt", "log", "ln", "mod", "sin", "cos", "tan", "exp", "choose"})
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
            if s.lower() in _FUNCTIONS and (is_operand(nxt) or (operand_before() and s.lower() == "mod")):
                out.append(("U", s, a, b))  # sqrt(16), log 100, 10 mod 3: not evaluated
            elif s in ("x", "X", "times") and operand_before() and is_operand(nxt):
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
        elif s == "!" and operand_before() and (nxt := next_sig(i + 1)) is not None and (
                nxt[0] in ("eq", "op")) and not (i + 1 < n and raw[i + 1][1] == "="):
            out.append(("U", s, a, b))  # "5! = 120": a factorial, which we do not evaluate
        elif s == "\u221a" and is_operand(next_sig(i + 1)):
            out.append(("U", s, a, b))  # "√16 = 4"
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
