"""A canonical key for an extracted answer, so that equal answers written differently count as one.

Used by maj@k (``reasonkit.eval.metrics``): a majority vote over raw strings splits ``$18``, ``18``
and ``18.0`` into three votes. A verifier that knows its answers' canonical form puts it in
``Verdict.details["normalized"]`` and that wins; otherwise :func:`answer_key` is the key.

Policy of :func:`answer_key` (standard library only):

* ``None`` or blank -> ``None`` (no answer: it does not vote).
* LaTeX wrappers are unwrapped first: ``\\boxed{..}``, ``\\text{..}`` / ``\\mathrm{..}`` (their text),
  ``\\(..\\)``, ``\\[..\\]``, ``\\$`` -> ``$``, thin spaces (``\\,``, ``\\!``, ``~``), ``{,}`` thousands
  separators, and ``\\frac{a}{b}`` / ``\\dfrac`` / ``\\tfrac`` of two plain numbers -> ``a/b``.
* **Numbers**: when what is left is *one* number (``-3``, ``1,234.50``, ``.5``, ``1/2``, ``1 / 2``)
  with at most words, ``=``, ``:``, currency signs and ``$`` before it and words (after a space),
  ``%``, ``$`` or a full stop after it, the key is that number as an exact reduced fraction:
  an integer as ``18`` (``$18``, ``18.0``, ``18 dollars``, ``x = 18`` all give ``18``), any other
  value as ``p/q`` (``0.5`` and ``1/2`` both give ``1/2``; ``-0`` gives ``0``). Thousands commas must
  group by three (``1,234``); ``3,4`` is not a number. A percent sign is read as a unit
  (``50%`` -> ``50``), as GSM8K-style graders do. Anything mathematical around the number
  (``\\sqrt{2}``, ``2x``, ``2^3``, ``(2)``, ``2pi``) makes the answer non-numeric.
* **Anything else**: Unicode case-folded, runs of whitespace made one space, spaces next to a
  symbol dropped (``x + 1`` -> ``x+1``), a trailing full stop dropped.
"""
from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["answer_key"]

_NUM = r"[-+\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+\u2212]?\.\d+"
_NUMBER = re.compile(rf"^(?P<pre>[A-Za-z\s=:$\u20ac\u00a3\u00a5]*?)(?P<num>{_NUM})(?:\s*/\s*(?P<den>{_NUM}))?"
                     r"(?P<post>(?:\s+[A-Za-z][A-Za-z\s.]*|[%$\s.]*)?)$")
_WRAPPERS = re.compile(r"\\(?:boxed|text|textbf|mathrm|mbox|operatorname)\s*\{([^{}]*)\}")
_FRAC = re.compile(rf"\\[dt]?frac\s*\{{\s*({_NUM})\s*\}}\s*\{{\s*({_NUM})\s*\}}")
_SPACES = re.compile(r"\s+")
_AROUND_SYMBOL = re.compile(r"\s*([^\w\s])\s*")


def _unwrap(text: str) -> str:
    for a, b in (("\\$", "$"), ("\\(", ""), ("\\)", ""), ("\\[", ""), ("\\]", ""), ("{,}", ","),
                 ("\\,", ""), ("\\!", ""), ("\\;", " "), ("~", " "), ("\u2212", "-")):
        text = text.replace(a, b)
    previous = None
    while previous != text:  # nested wrappers: \boxed{\text{18}}
        previous = text
        text = _WRAPPERS.sub(r"\1", text)
    return _FRAC.sub(r"\1/\2", text).strip()


def _number(text: str) -> Fraction | None:
    m = _NUMBER.match(text)
    if m is None:
        return None
    pre = m.group("pre")
    if pre and m.group("num")[0] in "+-" and not pre[-1].isspace() and pre[-1] not in "=:$\u20ac\u00a3\u00a5":
        return None  # y+18, a-3: an expression, not a signed number
    try:
        value = Fraction(m.group("num").replace(",", ""))
        if m.group("den") is not None:
            den = Fraction(m.group("den").replace(",", ""))
            if den == 0:
                return None
            value /= den
    except (ValueError, ZeroDivisionError):
        return None
    return value


def answer_key(extracted: str | None) -> str | None:
    """The canonical form of an extracted answer (see the module docstring); ``None`` for no answer."""
    if extracted is None:
        return None
    text = _unwrap(str(extracted))
    if not text:
        return None
    value = _number(text)
    if value is not None:
        return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    text = _SPACES.sub(" ", text.casefold()).strip()
    text = _AROUND_SYMBOL.sub(r"\1", text).rstrip(".").strip()
    return text or None
