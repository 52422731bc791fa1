"""What the math fast path may rely on about a gold, from math-verify's own parse of it.

:mod:`.math` caches the gold as math-verify parsed it (a gold is scored once per sample of its
item). Once that parse exists, the fast path (:mod:`._mathfast`) can settle more pairs with a
simple-number prediction without math-verify, from facts about the parsed gold computed once and
cached with it (:func:`gold_facts`, called under the same deadline as the parse):

* ``"number"``: a sympy expression without free symbols, percent marks (``UnevaluatedExpr``) or
  sets, whose value evaluates to a finite complex number (``1 + 2\\sqrt{3}``, ``288\\pi``,
  ``4343_6``, which math-verify reads as 4343); the value is kept;
* ``"nonconstant"``: an expression in free symbols that is a polynomial in them with a term of
  positive degree (``2k+2``, ``5r^5``, ``\\frac{11+9a}{20}``, ``-2 + 7i`` where math-verify reads
  ``i`` as a plain symbol): a non-constant function, never equal to a number;
* ``"set"``: an interval without symbols (sympy keeps an ``Interval`` only when its start is below
  its end: ``(3,4]``, ``(2, \\infty)``), a union of such intervals and finite sets, a tuple of two or
  more elements, or a finite set of two or more numbers with distinct values: math-verify compares
  a number with it as the one-element set ``{number}``, which none of these equals.

A gold that is an assignment ``x = ...`` (math-verify's ``is_assignment_relation``) is described by
its right side, which is what math-verify compares with an answer that is not an equation;
``assigned`` says so. Anything else (other relations, matrices, strings, percentages) has no facts.
"""
from __future__ import annotations

import cmath
from typing import Any, NamedTuple

__all__ = ["GoldFacts", "gold_facts", "MAX_NODES"]

MAX_NODES = 200  # larger parsed golds get no facts (bounded sympy work)


class GoldFacts(NamedTuple):
    shape: str  # "number" | "nonconstant" | "set"
    value: complex | None  # for "number"
    assigned: bool


def _value(expr: Any) -> complex | None:
    try:
        v = complex(expr.evalf(30))
    except Exception:  # noqa: BLE001 - not a number sympy can evaluate (nan, zoo, overflow, ...)
        return None
    return v if cmath.isfinite(v) else None


def _shape(expr: Any) -> tuple[str, complex | None] | None:
    from sympy import Expr, Interval, Poly, Tuple, Union, UnevaluatedExpr
    from sympy import FiniteSet as SympyFiniteSet

    if isinstance(expr, (Interval, Union)):
        # sympy keeps an Interval only when start < end (else a point or the empty set); a Union is
        # left only when its parts do not merge, so one of them is such an interval
        parts = expr.args if isinstance(expr, Union) else (expr,)
        if expr.free_symbols or not all(isinstance(a, (Interval, SympyFiniteSet)) for a in parts) \
                or not any(isinstance(a, Interval) for a in parts):
            return None
        return "set", None
    if isinstance(expr, Tuple):
        return ("set", None) if len(expr) >= 2 else None
    if isinstance(expr, SympyFiniteSet):
        values = [_value(a) if not a.free_symbols else None for a in expr.args]
        if len(values) < 2 or None in values:
            return None
        distinct = all(abs(a - b) > 1e-3 * max(1.0, abs(a), abs(b))
                       for i, a in enumerate(values) for b in values[i + 1:])
        return ("set", None) if distinct else None
    if not isinstance(expr, Expr) or expr.has(UnevaluatedExpr):
        return None
    symbols = expr.free_symbols
    if not symbols:
        v = _value(expr)
        return None if v is None else ("number", v)
    if not expr.is_polynomial(*symbols):
        return None
    poly = Poly(expr, *sorted(symbols, key=str))
    return ("nonconstant", None) if any(sum(m) > 0 and c != 0 for m, c in poly.terms()) else None


def gold_facts(gold: list) -> GoldFacts | None:
    """Facts about math-verify's parse of a gold (``[sympy expression, string]``), or None."""
    exprs = [g for g in gold if not isinstance(g, str)]
    if len(exprs) != 1:
        return None
    expr = exprs[0]
    try:
        from sympy import preorder_traversal
        from math_verify.grader import is_assignment_relation, is_relation, take_last_relation

        if sum(1 for _ in zip(range(MAX_NODES + 1), preorder_traversal(expr))) > MAX_NODES:
            return None
        assigned = bool(is_assignment_relation(expr))
        if assigned:
            expr = take_last_relation(expr).rhs
        if is_relation(expr):
            return None
        shape = _shape(expr)
    except Exception:  # noqa: BLE001 - a sympy failure only means no facts
        return None
    return None if shape is None else GoldFacts(shape[0], shape[1], assigned)
