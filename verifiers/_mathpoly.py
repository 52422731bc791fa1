"""Polynomials in letter variables, read exactly for the math fast path (:mod:`._mathfast`).

A wrong answer is often an expression in a variable (``2k``, ``15x - 80``, ``\\cot x``, an equation
``y = 2x + 3``) against a numeric gold. math-verify settles such a pair only after sympy's
``simplify`` has tried to reduce the difference to zero (milliseconds per pair); the verdict is
"not equal" whenever the expression really depends on its variable. This module reads the narrow
LaTeX forms whose reading by math-verify is certain, and says whether they are constant:

* a *polynomial*: a sum of terms ``[sign] [coefficient] [atom [^ power]]``, where the coefficient is
  a number (``3``, ``0.5``, ``\\frac{3}{4}``) or absent, the power a digit or ``{integer}``, and an
  atom is a single-letter variable or one of ``\\sin \\cos \\tan \\cot \\sec \\csc`` applied to a
  variable (``\\cot x``, ``\\sin{t}``, ``\\tan(y)``; no power on the function); also ``\\frac{P}{n}``
  with ``P`` such a polynomial and ``n`` a non-zero integer. At most one atom per term (no ``xy``);
* terms are collected exactly (``x - x`` is the constant 0), so "non-constant" means a term of
  positive degree with a non-zero coefficient. Variables are independent, so a polynomial in them
  with such a term is a non-constant function; a function atom (a non-constant function of its
  variable) is accepted only when it is the expression's one atom, so that identities between
  atoms (``\\sin^2 x + \\cos^2 x``, ``\\tan x \\cot x``) cannot arise;
* letters math-verify does not read as a plain variable are refused: ``e`` (Euler's number),
  ``E`` (scientific notation), ``i``/``I`` (the imaginary unit where it reads ``\\bi\\b``), ``d``
  (a differential); so is a text that ends in a letter its unit list drops at the end of an answer
  (``c d g h l m o s t``: ``1 + 2t`` is read as ``1 + 2``), two letters side by side (``in`` is
  ``i*n``, a word may be a unit), and any other command, bracket or symbol.

:func:`equation` splits ``lhs = rhs`` (one ``=``, both sides of these forms): math-verify compares
a gold that is not an equation with the right side of an equation answer.
"""
from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["read_polynomial", "nonconstant", "equation", "MAX_CHARS"]

MAX_CHARS = 120
_FUNCTIONS = frozenset(("sin", "cos", "tan", "cot", "sec", "csc"))
_NOT_VARIABLES = frozenset("eEiId")
_UNIT_LETTERS = frozenset("cdghlmost")  # single-letter units latex2sympy2_extended drops at the end
_SPACES = re.compile(r"\\left|\\right|\\[,;:! ]|\s+")
_TOKEN = re.compile(r"\d+(?:\.\d+)?|\.\d+|\\[A-Za-z]+|[A-Za-z]|[-+^{}()=]|.", re.DOTALL)
_FRAC = frozenset(("\\frac", "\\dfrac", "\\tfrac"))

Poly = dict  # {(atom, power): Fraction}; the constant term under ("", 0)


class _Refuse(Exception):
    pass


class _Reader:
    def __init__(self, tokens: list[str]):
        self.t = tokens
        self.i = 0

    def peek(self, k: int = 0) -> str | None:
        j = self.i + k
        return self.t[j] if j < len(self.t) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise _Refuse
        self.i += 1
        return tok

    def integer(self) -> int:
        tok = self.take()
        if not tok.isdigit():
            raise _Refuse
        return int(tok)

    def number(self) -> Fraction | None:
        tok = self.peek()
        if tok is not None and (tok[0].isdigit() or tok[0] == "."):
            self.i += 1
            return Fraction(tok)
        if tok in _FRAC and self.peek(2) is not None and self.peek(1) == "{":
            start = self.i
            self.i += 2
            top = self.peek()
            if top is not None and top[0].isdigit() and self.peek(1) == "}" and self.peek(2) == "{":
                self.i += 3
                den = self.integer()
                self.take("}")
                if den == 0:
                    raise _Refuse
                return Fraction(top) / den
            self.i = start
        return None

    def atom(self) -> str | None:
        tok = self.peek()
        if tok is None:
            return None
        if len(tok) == 1 and tok.isalpha():
            if tok in _NOT_VARIABLES:
                raise _Refuse
            self.i += 1
            return tok
        if tok.startswith("\\") and tok[1:] in _FUNCTIONS:
            self.i += 1
            arg = self.take()
            close = {"{": "}", "(": ")"}.get(arg)
            if close is not None:
                arg = self.take()
            if not (len(arg) == 1 and arg.isalpha()) or arg in _NOT_VARIABLES:
                raise _Refuse
            if close is not None:
                self.take(close)
            return f"{tok[1:]}({arg})"
        return None

    def power(self) -> int:
        if self.peek() != "^":
            return 1
        self.i += 1
        if self.peek() == "{":
            self.i += 1
            k = self.integer()
            self.take("}")
        else:
            tok = self.take()
            if not (len(tok) == 1 and tok.isdigit()):
                raise _Refuse  # x^23 is x^2 * 3 in LaTeX: not read here
            k = int(tok)
        if k > 64:
            raise _Refuse
        return k

    def term(self, out: Poly, sign: int) -> None:
        if self.peek() in _FRAC and self.peek(1) == "{":
            start = self.i
            if self.number() is None:  # \frac{P}{n}
                self.i = start + 2
                inner = self.polynomial(stop="}")
                self.take("}")
                self.take("{")
                den = self.integer()
                self.take("}")
                if den == 0:
                    raise _Refuse
                for key, c in inner.items():
                    out[key] = out.get(key, Fraction(0)) + sign * c / den
                return
            self.i = start
        coef = self.number()
        atom = self.atom()
        if coef is None and atom is None:
            raise _Refuse
        if atom is not None and self.peek() == "^" and "(" in atom:
            raise _Refuse  # \cot x^2: not read here
        k = self.power() if atom is not None else 0
        key = (atom, k) if atom is not None and k > 0 else ("", 0)  # x^0 is 1
        c = sign * (coef if coef is not None else Fraction(1))
        out[key] = out.get(key, Fraction(0)) + c

    def polynomial(self, stop: str | None = None) -> Poly:
        out: Poly = {}
        first = True
        while True:
            sign = 1
            tok = self.peek()
            if tok in ("+", "-"):
                sign = -1 if tok == "-" else 1
                self.i += 1
            elif not first:
                raise _Refuse
            self.term(out, sign)
            first = False
            tok = self.peek()
            if tok is None or tok == stop:
                return out
            if tok not in ("+", "-"):
                raise _Refuse


def read_polynomial(latex: str) -> Poly | None:
    """The collected polynomial (see the module docstring), or None when the text is not of those
    forms."""
    if len(latex) > MAX_CHARS:
        return None
    s = _SPACES.sub(" ", latex).strip()
    if not s or (s[-1].isalpha() and s[-1] in _UNIT_LETTERS):
        return None
    tokens = [t for t in _TOKEN.findall(s) if not t.isspace()]
    for a, b in zip(tokens, tokens[1:]):
        if a.isalpha() and b.isalpha() and len(a) == len(b) == 1:
            return None  # "xy", "in": a product of symbols or a word
    r = _Reader(tokens)
    try:
        poly = r.polynomial()
    except _Refuse:
        return None
    if r.peek() is not None:
        return None
    atoms = {a for (a, _k), c in poly.items() if a}
    if any("(" in a for a in atoms) and len(atoms) > 1:
        return None  # a function atom only as the one atom
    return {k: c for k, c in poly.items() if c != 0 or k == ("", 0)}


def nonconstant(poly: Poly | None) -> bool:
    """A term of positive degree with a non-zero coefficient."""
    return poly is not None and any(a and k > 0 and c != 0 for (a, k), c in poly.items())


def equation(latex: str) -> tuple[str, str] | None:
    """``(lhs, rhs)`` of ``lhs = rhs`` with one ``=`` and a left side of the polynomial forms (so that
    math-verify certainly parses the equation), else None. The right side is the caller's to read."""
    if latex.count("=") != 1:
        return None
    lhs, rhs = latex.split("=")
    if read_polynomial(lhs) is None:
        return None
    return lhs.strip(), rhs.strip()
