"""Fast path of the math verifier: exact comparison of the answers most MATH golds are.

Most MATH-500 golds are integers, fractions, simple radicals or short tuples of those. For such a
gold and a predicted answer of the same kinds, the verdict needs no LaTeX parser and no sympy:

* a *scalar* is ``[-] q * sqrt(r)`` with ``q`` rational and ``r`` a square-free integer, read from
  ``12``, ``-3``, ``0.5``, ``\\frac{3}{4}``, ``\\dfrac34``, ``3/4``, ``\\sqrt{8}`` (= ``2\\sqrt{2}``),
  ``5\\sqrt{3}``, ``\\frac{\\sqrt{3}}{2}``, ``\\frac{1}{\\sqrt{2}}``, ``\\frac{-1}{2}``; spaces,
  ``\\left``/``\\right`` and thin spaces are ignored;
* a *tuple* is ``(a, b, ...)`` of scalars.

That form is unique (``q * sqrt(r)`` with square-free ``r``), so two exact answers are equal
exactly when their forms are. math-verify compares exact numbers symbolically (its float rounding
applies only when a side is a float), so this gives its verdict. Where it might not, we do not
decide and hand the pair to math-verify (``None``): a decimal on either side that is not exactly
equal (math-verify rounds floats), tuples that hold the same elements in another order
(math-verify may read them as sets or intervals), and anything else -- commas inside numbers,
``\\pi``, units, ``\\%``, degrees, text, variables. Digit strings over :data:`MAX_DIGITS` are not read.
A number is never a matrix (a ``vmatrix`` is a determinant: no matrix), a set or interval, a text
answer, a rational multiple of ``\\pi`` or a complex ``a + bi`` (:func:`kind`): such a pair is not
equal -- but a decimal may round to a multiple of ``\\pi`` (``3.141593``), so that pair goes to
math-verify (or W3 below). An expression in a variable may be a constant after all (``x - x``,
``\\frac{x}{x}``, ``x^0``): only the wider rules below decide it, when it provably is not. ``x = 5``
against a gold number is judged on its right side, as math-verify judges it, but for a comma there
(math-verify reads ``x = 1,000`` as ``x = {0, 1}``).

Wider rules (:func:`_wider_verdict`), tried when the ones above leave the pair undecided. They
settle wrong answers whose comparison costs math-verify a sympy ``simplify`` (milliseconds), and
all but W2 only ever say "not equal". A *number* is a simple gold (scalar or tuple, as above) or a
gold whose math-verify parse :mod:`._mathgold` found to be a number (``1+2\\sqrt{3}``, ``288\\pi``);
a *non-constant polynomial* is what :mod:`._mathpoly` reads as one (``2k``, ``15x - 80``,
``\\cot x``):

* W1: a number gold and a non-constant polynomial answer are not equal (math-verify's numeric and
  symbolic checks cannot make a function of a variable equal to a constant);
* W2: against a gold that is a scalar number and no equation, an answer ``lhs = rhs`` (one ``=``,
  ``lhs`` of :mod:`._mathpoly`'s forms, so that it certainly parses) is judged on its right side,
  as math-verify judges it: a non-constant polynomial is not equal, a simple scalar is compared as
  above (``2x + 1 = 5`` against 5 is correct, ``5x - 7y + 11z + 4 = 0`` against 19 is not). A
  comma on the right side is never read (as in the ``x = 5`` rule above);
* W3: a simple scalar answer is not equal to a gold that :mod:`._mathgold` found to be a set, an
  interval or a tuple (``(3,4]``, ``x \\in [-2,7]``), a non-constant polynomial (``2k+2``,
  ``-2 + 7i`` with ``i`` a plain symbol, as math-verify reads it there) or a number with a clear
  gap from it (more than 1e-3 relative: math-verify rounds floats to 6 decimals, and exact values
  that differ are never symbolically equal; closer values go to math-verify); nor to a gold that
  :mod:`._mathpoly` reads as a non-constant polynomial (``\\cot x``);
* W4: a tuple of simple numbers without decimals is not equal to a gold :mod:`._mathgold` found to
  be a number (math-verify compares a number with a tuple or interval as a one-element set), as
  the exact rules say for simple golds;
* W5: a matrix of simple numbers (``pmatrix``, ``bmatrix``, ``Bmatrix`` or ``matrix``: a ``vmatrix``
  is a determinant) is not equal to a gold :mod:`._mathgold` found to be a number, as the kind
  rule says for simple golds.

The benchmark checks the claim on every row of its MATH-500 corpus (disagreements: 0), and
``tests/verifiers/test_math_wider.py`` holds the rules' table, near misses included.
"""
from __future__ import annotations

import re
from fractions import Fraction
from typing import TYPE_CHECKING

from ._mathpoly import equation, nonconstant, read_polynomial

if TYPE_CHECKING:
    from ._mathgold import GoldFacts

__all__ = ["simple_answer", "fast_verdict", "kind", "same_text", "boxed_span", "MAX_DIGITS"]

MAX_DIGITS = 30

_NOISE = re.compile(r"\\left|\\right|\\[,!;: ]|\s+")
_BOXED = re.compile(r"^\$\\boxed\{(.*)\}\$$", re.DOTALL)
_INT = r"\d{1,%d}" % MAX_DIGITS
_NUM = rf"(?:{_INT}(?:\.\d{{1,{MAX_DIGITS}}})?|\.\d{{1,{MAX_DIGITS}}})"
_RAD = rf"(?P<k>{_NUM})?\\sqrt(?:\{{(?P<r>{_INT})\}}|(?P<r1>\d))"
_TERM = re.compile(rf"^(?:(?P<n>{_NUM})|{_RAD})$")
_FRAC = re.compile(r"^\\[dt]?frac(?:\{(?P<a>[^{}]*(?:\{[^{}]*\}[^{}]*)?)\}\{(?P<b>[^{}]*(?:\{[^{}]*\}[^{}]*)?)\}"
                   r"|(?P<a1>\d)(?P<b1>\d))$")
_SLASH = re.compile(rf"^(?P<a>{_INT})/(?P<b>{_INT})$")
_PLAIN_INT = re.compile(rf"-?{_INT}")  # the commonest answer: read without the general path

Scalar = tuple  # (q: Fraction, r: int, decimal: bool)


def _squarefree(r: int) -> tuple[int, int]:
    """``r = k^2 * f`` with ``f`` square-free -> (k, f)."""
    k, f, p = 1, r, 2
    while p * p <= f:
        while f % (p * p) == 0:
            f //= p * p
            k *= p
        p += 1
    return k, f


def _term(s: str) -> Scalar | None:
    """An unsigned number or ``k\\sqrt{r}``."""
    m = _TERM.match(s)
    if m is None:
        return None
    n = m.group("n")
    if n is not None:
        return (Fraction(int(n)), 1, False) if n.isdigit() else (Fraction(n), 1, "." in n)
    k = m.group("k")
    r = int(m.group("r") or m.group("r1"))
    if r > 10 ** 12:
        return None
    root, rest = _squarefree(r)
    q = (Fraction(k) if k else Fraction(1)) * root
    return q, rest, bool(k and "." in k)


def _signed(s: str) -> Scalar | None:
    sign = 1
    while s[:1] in ("-", "+"):
        if s[0] == "-":
            sign = -sign
        s = s[1:]
    if s.startswith("{") and s.endswith("}"):
        s = s[1:-1]
    v = _term(s) if "frac" not in s else _fraction(s)
    if v is None:
        m = _SLASH.match(s)
        if m is None:
            return None
        den = int(m.group("b"))
        if den == 0:
            return None
        v = Fraction(int(m.group("a")), den), 1, False
    q, r, dec = v
    return (-q if sign < 0 else q, r if q else 1, dec)


def _fraction(s: str) -> Scalar | None:
    m = _FRAC.match(s)
    if m is None:
        return None
    top = _signed(m.group("a") if m.group("a") is not None else m.group("a1"))
    bottom = _signed(m.group("b") if m.group("b") is not None else m.group("b1"))
    if top is None or bottom is None or bottom[0] == 0:
        return None
    (qa, ra, da), (qb, rb, db) = top, bottom
    # (qa sqrt ra) / (qb sqrt rb) = qa / (qb rb) * sqrt(ra rb)
    if ra == rb == 1:
        q, rest = qa / qb, 1
    else:
        root, rest = _squarefree(ra * rb)
        q = qa / (qb * rb) * root
    return q, rest if q else 1, da or db


_DECORATION = re.compile(r"\^\{?\\circ\}?$|^\\\$|(?<=\d)\\%$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_MIXED = re.compile(r"^(\d{1,6})(\\[dt]?frac.*)$")


def simple_answer(latex: str) -> tuple | None:
    """("scalar", Scalar) / ("tuple", (Scalar, ...)) for the forms in the module docstring, else None.
    As math-verify reads them: a degree sign, a leading ``\\$`` and thousands commas are dropped
    (``120^\\circ`` = 120, ``\\$36`` = 36, ``58,500`` = 58500), ``1\\frac{4}{5}`` is 9/5."""
    if len(latex) > 200:
        return None
    if _PLAIN_INT.fullmatch(latex):
        return "scalar", (Fraction(int(latex)), 1, False)
    s = _NOISE.sub("", latex)
    while s.startswith("$") and s.endswith("$") and len(s) > 1:
        s = s[1:-1]
    if "%" in s:
        return None
    s = _DECORATION.sub("", s)
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    mixed = _MIXED.match(s)
    if mixed:
        whole, frac = _signed(mixed.group(1)), _fraction(mixed.group(2))
        if whole is None or frac is None or frac[1] != 1 or frac[0] < 0:
            return None
        return "scalar", (whole[0] + frac[0], 1, frac[2])
    if s.startswith("(") and s.endswith(")") and "," in s:
        parts = s[1:-1].split(",")
        if any(len(x) == 3 and x.isdigit() for x in parts[1:]):
            return None  # "(1,000)": a tuple or a thousands separator
        items = [_signed(x) for x in parts]
        if len(items) > 8 or any(x is None for x in items):
            return None
        return "tuple", tuple(items)
    if not s or "," in s:
        return None
    v = _signed(s)
    return None if v is None else ("scalar", v)


def _same(a: Scalar, b: Scalar) -> bool | None:
    """Exact forms decide; with a decimal on a side, only a clear gap is certain (math-verify
    compares floats rounded to 6 decimals)."""
    if a[:2] == b[:2]:
        return True
    if not (a[2] or b[2]):
        return False
    x, y = float(a[0]) * a[1] ** 0.5, float(b[0]) * b[1] ** 0.5
    return False if abs(x - y) > 1e-3 * max(1.0, abs(x), abs(y)) else None


_ASSIGNED = re.compile(r"^[A-Za-z]=([^=]+)$")
_SAME_TEXT = re.compile(r"\\left|\\right|\\[,!;: ]|\s+|\\(?=[dt]frac)[dt]")
_MATRIX = re.compile(r"\\begin\{[pbB]?matrix\}")  # not vmatrix: a determinant, a number
_SET = re.compile(r"\\cup|\\cap|\\infty|^\[|\]$|\\\{")
_TEXT_ONLY = re.compile(r"^\\(?:text|textbf|mbox|mathrm)\{[^{}\d]*\}$")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_CONSTANT_PARTS = re.compile(r"\\pi|\\[dt]?frac|\\sqrt|[\d{}()+\-*/.]")
_NUMBERS = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_VARIABLE = re.compile(r"(?<![A-Za-z])[a-df-hj-z](?![A-Za-z])")  # a letter that is no e / i constant


#: a unit after a number, or a unit command: the fast path never decides these (issue 26, class 7)
_UNIT = re.compile(r"\\(?:mathrm|mbox|textrm|operatorname|mathit|mathbf|rm)\b|\d(?:\s|\\[,;:! ]|~)*[A-Za-z]")


def kind(latex: str) -> str | None:
    """"number" (the simple forms), "matrix", "text" (no digits), "pi", "complex", "symbolic" (a
    variable, no '=' or ','), else None. A set or interval has a comma, so none is read here: one
    written without (``[5]``, ``\\{5\\}``, ``\\frac{1}{\\infty}``) may be a number to math-verify."""
    s = _NOISE.sub("", latex)
    if simple_answer(latex) is not None:
        return "number"
    if _MATRIX.search(s):
        return "matrix"
    if _TEXT_ONLY.match(s):
        return "text"
    if "=" in s or "," in s or "\\text" in s or "_" in s or "^\\circ" in s or "\\$" in s:
        return None
    if _UNIT.search(latex):  # "6\\,\\mathrm{m}", "30 s": math-verify drops some units; let it decide
        return None
    if _SET.search(s):
        return None
    bare = _CONSTANT_PARTS.sub("", s)
    if s.count("\\pi") == 1 and "^" not in s and not bare and not any(float(n) == 0 for n in _NUMBERS.findall(s)):
        return "pi"  # one pi in rational arithmetic, no zero in it (\\pi*0): irrational, never a simple number
    if s.count("i") == 1 and re.fullmatch(r"[-+\d.]*(?:\d|^|[-+])i|[-+\d.]+[-+][\d.]*i", s) and "0i" not in s:
        return "complex"  # a + bi with b != 0: never real
    if _VARIABLE.search(_COMMAND.sub(" ", s)):
        return "symbolic"
    return None


def same_text(a: str, b: str) -> bool:
    """The two answers are written identically (spacing, ``\\left``/``\\right``, ``\\dfrac`` aside)."""
    return _SAME_TEXT.sub("", a) == _SAME_TEXT.sub("", b)


def boxed_span(texts: list[str]) -> str | None:
    """The answer inside the first prediction span when it is the ``$\\boxed{...}$`` form."""
    m = _BOXED.match(texts[0]) if texts else None
    return m.group(1) if m else None


def fast_verdict(gold: tuple | None, texts: list[str], gold_kind: str | None = None,
                 facts: GoldFacts | None = None, gold_nonconstant: bool = False) -> tuple[bool, str] | None:
    """(equal, the prediction as read) when the verdict is certain without math-verify (see the
    module docstring); None to hand the pair to math-verify. ``facts`` (:mod:`._mathgold`) describe
    math-verify's parse of a gold that is not a simple number; ``gold_nonconstant``: the gold is a
    non-constant polynomial by :mod:`._mathpoly`."""
    span = boxed_span(texts)
    if span is None:
        return None
    out = _exact_verdict(gold, span, gold_kind)
    return out if out is not None else _wider_verdict(gold, span, facts, gold_nonconstant)


def _exact_verdict(gold: tuple | None, span: str, gold_kind: str | None) -> tuple[bool, str] | None:
    pred = simple_answer(span)
    if gold is None or pred is None:
        assigned = _ASSIGNED.match(_NOISE.sub("", span)) if pred is None and gold is not None else None
        if assigned and "," not in assigned.group(1):  # "x = 5" against a gold number: math-verify
            return _exact_verdict(gold, assigned.group(1), None)  # compares the right side ("x = 1,000": a set)
        if gold_kind is None:
            return None
        pred_kind = "number" if pred is not None else kind(span)
        # a number is never a matrix, a set or a text answer; an expression in a variable may be a
        # constant after all (x - x, \frac{x}{x}, x^0): the wider rules decide it when it provably is not
        if pred_kind is None or pred_kind == gold_kind or "number" not in (pred_kind, gold_kind) \
                or "symbolic" in (pred_kind, gold_kind):
            return None
        number = pred if pred is not None else gold
        if "pi" in (pred_kind, gold_kind) and number is not None and _has_decimal(number):
            return None  # 3.141593 is pi to math-verify (floats rounded to 6 decimals)
        return False, span.strip()
    if gold[0] == "scalar" and pred[0] == "scalar":
        ok = _same(gold[1], pred[1])
    elif gold[0] == "tuple" and pred[0] == "tuple" and len(gold[1]) == len(pred[1]):
        links = [_same(a, b) for a, b in zip(gold[1], pred[1])]
        if all(x is True for x in links):
            ok = True
        elif any(x is None for x in links) or sorted(map(_key, gold[1])) == sorted(map(_key, pred[1])):
            ok = None  # a float inside, or the same elements in another order: math-verify decides
        else:
            ok = False
    else:
        ok = False if not _has_decimal(gold) and not _has_decimal(pred) else None
    return None if ok is None else (ok, span.strip())


def _apart(value: complex, v: Scalar) -> bool:
    """A clear gap between a gold's value and a simple number (math-verify rounds floats to 6
    decimals; exact values that differ are never symbolically equal)."""
    x = float(v[0]) * v[1] ** 0.5
    return abs(value - x) > 1e-3 * max(1.0, abs(value), abs(x))


def _wider_verdict(gold: tuple | None, span: str, facts: GoldFacts | None,
                   gold_nonconstant: bool) -> tuple[bool, str] | None:
    """Rules W1-W5 of the module docstring: not-equal verdicts only, but for an equation whose right
    side is a number (W2), which is compared as :func:`_exact_verdict` compares numbers."""
    number = facts is not None and facts.shape == "number"
    pred = simple_answer(span)
    if pred is None:
        if gold is None and not number:
            return None
        if number and _simple_matrix(span):  # W5
            return False, span.strip()
        if nonconstant(read_polynomial(span)):  # W1
            return False, span.strip()
        scalar_gold = (gold is not None and gold[0] == "scalar") or (number and not facts.assigned)
        sides = equation(span) if scalar_gold else None
        if sides is None or "," in sides[1]:  # "x = 1,000" is the set {0, 1} there
            return None
        rhs = simple_answer(sides[1])  # W2: math-verify compares the gold with the right side
        if rhs is None:
            return (False, span.strip()) if nonconstant(read_polynomial(sides[1])) else None
        if rhs[0] != "scalar":
            return None
        if gold is not None:
            ok = _same(gold[1], rhs[1])
            return None if ok is None else (ok, span.strip())
        return (False, span.strip()) if _apart(facts.value, rhs[1]) else None
    if gold is not None:
        return None
    if pred[0] == "scalar" and (gold_nonconstant or (facts is not None and facts.shape in ("set", "nonconstant"))
                                or (number and _apart(facts.value, pred[1]))):  # W3
        return False, span.strip()
    if pred[0] == "tuple" and number and not _has_decimal(pred):  # W4
        return False, span.strip()
    return None


_MATRIX_BODY = re.compile(r"^\\begin\{([pbB]?matrix)\}(.*)\\end\{\1\}$", re.DOTALL)


def _simple_matrix(span: str) -> bool:
    """A matrix (not a determinant) whose entries are all simple scalars: it certainly parses."""
    m = _MATRIX_BODY.match(span.strip())
    return m is not None and all(simple_answer(e) is not None and simple_answer(e)[0] == "scalar"
                                 for row in m.group(2).split("\\\\") for e in row.split("&"))


def _key(v: Scalar) -> tuple:
    return float(v[0]) * (v[1] ** 0.5), v[0], v[1]


def _has_decimal(v: tuple) -> bool:
    return v[1][2] if v[0] == "scalar" else any(x[2] for x in v[1])
