"""Number parsing shared by the numeric verifiers (gsm8k, stepwise).

Finds numbers the way people and models write them in word problems -- ``1,000``, ``$18``,
``18.00``, ``-5``, ``−5`` (Unicode minus), ``-$7`` / ``$-7``, ``.5``, ``3/4``, ``50%``, ``35 %``,
``\\frac{3}{4}``, scientific notation ``2.5e2`` / ``4E5`` / ``1.5e-3`` / ``2.5 × 10^3`` -- and turns
them into exact :class:`fractions.Fraction` values, so ``18 == 18.00``, ``0.75 == 3/4`` and
``2.5e2 == 250`` with no float error. A number in scientific notation is never read as its mantissa;
an exponent beyond :data:`MAX_EXPONENT` is not evaluated (``too_long``).

Hand-written on purpose: no library parses this informal notation (math-verify does, through
sympy, at ~1 ms per call; these regexes take microseconds). Every regex here is linear-time (no
nested quantifiers that can backtrack), and a digit string longer than :data:`MAX_DIGITS` is never
converted to ``int``/``Fraction`` (CPython refuses int<->str conversions over 4300 digits and big
conversions are slow): such numbers come back with ``value=None, too_long=True``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

__all__ = [
    "MAX_DIGITS", "NumberMatch", "find_numbers", "last_number", "first_number", "to_fraction",
    "clean_latex", "format_fraction", "MINUS_CHARS", "plain_numbers",
]

#: Longest digit string (integer + decimal digits) that is converted to a Fraction.
MAX_DIGITS = 1000
#: Largest power of ten (``1e400``) that is evaluated.
MAX_EXPONENT = 400

#: Characters accepted as a minus sign in front of a number: ASCII hyphen, Unicode minus, en dash.
MINUS_CHARS = "-\u2212\u2013"

# A number token. The look-behind keeps us from starting inside a word or another number
# ("x5", "1.5" -> not "5"); a sign counts only when it is not a binary minus ("10-5" -> 5).
# Thousands separators must be exact groups of three ("1,000", "12,345,678"); "1,2,3" is three
# numbers. The fraction part ("3/4") needs a plain integer denominator.
_CUR = "$\u20ac\u00a3"
_NUMBER = re.compile(
    r"""
    (?<![\w.])
    (?:
    (?P<hh>\d{1,4})[ ]?(?:hours?|hrs?|h)\b,?[ ]?(?:and[ ])?(?P<mm>\d{1,2})[ ]?(?:minutes?|mins?)\b
    |
    (?P<dcur>\$[ ]?)?(?P<dd>\d{1,9})(?(dcur)(?:[ ]?dollars?\b)?|[ ]?(?:dollars?|bucks)\b)[ ]?(?:and[ ])?(?P<cc>\d{1,2})[ ]?cents?\b
    |
    (?P<sign>[-\u2212\u2013])?
    (?P<cur>[$\u20ac\u00a3]\s?)?
    (?P<sign2>(?<=[$\u20ac\u00a3])[-\u2212\u2013])?
    (?:(?P<whole>\d{1,9})[ ](?=\d{1,9}[ ]?/[ ]?\d))?
    (?:(?P<dc>\d{1,9},\d{1,2})(?![\d,])
         (?(cur)|(?=[ ]?(?:[\u00d7*\u00b7\u00f7/\u20ac%]|x[ ]|EUR\b|euros?\b|kg\b|km\b|cm\b|m\b|l\b|ml\b|g\b)))
      |(?P<num>(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+))
    (?:[eE](?P<exp>[-+\u2212]?\d{1,6})(?!\w|\.\d)
       |[ ]?[x\u00d7*\u00b7][ ]?10[ ]?\^[ ]?(?P<exp2>[-+\u2212]?\d{1,6})(?!\d|\.\d)
       |[ ]?\^[ ]?\{?[ ]?(?P<pow>\d{1,3})(?![\d.])(?:[ ]?\})?)?
    (?:\s?/\s?(?P<den>\d+)(?!\d|\.\d))?
    (?P<scale>[ ](?:thousand|million|billion|trillion)\b)?
    (?P<pct>\s?%)?
    )
    """,
    re.VERBOSE,
)
#: the characters a :data:`_NUMBER` match can start with (a digit, a sign, a currency sign, the "." of
#: ".5"); searching for one first (a C-level scan) skips text where the big pattern, which opens with a
#: look-behind and so gets no fast prefix scan from the regex engine, would be tried at every position
_NUMBER_START = re.compile(r"[\d.$\u20ac\u00a3\-\u2212\u2013]")
_FIRST_TRIES = 4
_SCALES = {"thousand": 10 ** 3, "million": 10 ** 6, "billion": 10 ** 9, "trillion": 10 ** 12}

# LaTeX that models put around numbers in answers: \frac{3}{4}, \dfrac34, \$, \%, \text{...},
# thin spaces (\, \! \;), and the {,} thousands separator.
_LATEX_FRAC = re.compile(r"(-?)\\[dt]?frac\s*\{\s*(-?[\d.,]+)\s*\}\s*\{\s*([\d.,]+)\s*\}")
_LATEX_FRAC_SHORT = re.compile(r"\\[dt]?frac(\d)(\d)")
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox|textrm)\s*\{([^{}]{0,200})\}")
_LATEX_THOUSANDS = re.compile(r"(?<=\d),\\[,!;:][ ]?(?=\d{3}(?!\d))")
_LATEX_SPACES = re.compile(r"\\[,!;: ]|\\q?quad")
#: a space between digit groups: ``(?<=\d)[ ...](?=\d{3}(?!\d))`` written with the space first, so that the
#: regex engine scans for the space character instead of trying the look-behind at every position
_SPACE_GROUPS = re.compile(r"[ \u00a0\u2009\u202f](?<=\d[ \u00a0\u2009\u202f])(?=\d{3}(?!\d))")


@dataclass(frozen=True)
class NumberMatch:
    """One number found in text: where it is, what was written, and its exact value."""

    start: int
    end: int
    text: str  # as written, e.g. "$1,000" or "50%"
    value: Fraction | None  # None only when too_long
    percent: bool
    too_long: bool = False
    alts: tuple = ()  # other readings of the same quantity (``2 hours 30 minutes``: 150 minutes;
    #                   ``18 dollars and 50 cents``: 1850 cents)
    arithmetic: bool = False  # written as arithmetic left undone (``20 - 2``), read as its value


_new_object = object.__new__


def _number_match(start: int, end: int, text: str, value: Fraction | None, percent: bool,
                  too_long: bool = False) -> NumberMatch:
    """``NumberMatch(start, end, text, value, percent, too_long)``, built without the frozen
    dataclass's ``__init__`` (one ``object.__setattr__`` per field: about three times slower; a
    NumberMatch is made for every number read). The same object: same class, fields, eq and hash."""
    nm = _new_object(NumberMatch)
    d = nm.__dict__
    d["start"] = start
    d["end"] = end
    d["text"] = text
    d["value"] = value
    d["percent"] = percent
    d["too_long"] = too_long
    d["alts"] = ()
    d["arithmetic"] = False
    return nm


def to_fraction(num: str, den: str | None = None, negative: bool = False) -> Fraction | None:
    """Exact value of a digit string such as ``"1,000.50"`` (optionally over ``den``); None when it
    has more than :data:`MAX_DIGITS` digits or the denominator is zero."""
    num = num.replace(",", "")
    if len(num) > MAX_DIGITS + 1 or (den is not None and len(den) > MAX_DIGITS):
        return None
    whole, dot, decimals = num.partition(".")  # int arithmetic: Fraction(str) runs a regex per call
    top = int(whole + decimals) if whole or decimals else 0
    bottom = 10 ** len(decimals) if dot else 1
    if den is not None:
        d = int(den)
        if d == 0:
            return None
        bottom *= d
    return Fraction(-top if negative else top, bottom)


def _make(m: re.Match) -> NumberMatch | None:
    """The match as a NumberMatch; None for a "mixed number" whose fraction is not proper (the
    caller re-reads the whole part alone)."""
    text = m.group(0)
    if len(text) <= MAX_DIGITS and text.isascii() and text.isdigit():  # the common case: a plain integer
        return _number_match(m.start(), m.end(), text, Fraction(int(text)), False)
    hh, mm, num, den, whole, dc, exp, exp2, pw, scale, pct, sign, sign2 = m.group(
        "hh", "mm", "num", "den", "whole", "dc", "exp", "exp2", "pow", "scale", "pct", "sign", "sign2")
    if hh is not None:  # "2 hours and 30 minutes": hours, with the minutes as an alternative
        hours, minutes = int(hh), int(mm)
        return NumberMatch(m.start(), m.end(), m.group(0), hours + Fraction(minutes, 60), False,
                           alts=(Fraction(hours * 60 + minutes),))
    if m.group("dd") is not None:  # "18 dollars and 50 cents": dollars, with the cents as an alternative
        dollars, cents = int(m.group("dd")), int(m.group("cc"))
        return NumberMatch(m.start(), m.end(), m.group(0), dollars + Fraction(cents, 100), False,
                           alts=(Fraction(dollars * 100 + cents),))
    if dc is not None:
        num = dc.replace(",", ".")
    exp = exp or exp2
    exponent = int(exp.replace("\u2212", "-")) if exp else 0
    power = int(pw) if pw else None
    too_long = len(num) > MAX_DIGITS + 1 + num.count(",") or (den is not None and len(den) > MAX_DIGITS) \
        or abs(exponent) > MAX_EXPONENT or (power is not None and len(num) * power > MAX_DIGITS)
    negative = (sign is not None) != (sign2 is not None)
    value = None
    if not too_long:
        value = to_fraction(num, den, negative=negative)
        if value is None and den is not None:  # "5/0": keep the numerator only, not a fraction
            value = to_fraction(num, None, negative=negative)
        if whole is not None:
            if den is None or value is None or not 0 < abs(value) < 1:
                return None
            value = (int(whole) + abs(value)) * (-1 if negative else 1)
        if value is not None and exponent:
            value *= Fraction(10) ** exponent
        if value is not None and power is not None:
            if den is not None:  # "2^3/4": leave the fraction alone, read the power's base
                return None
            value = value ** power
        if value is not None and scale:
            value *= _SCALES[scale.strip()]
    return _number_match(m.start(), m.end(), m.group(0), value, pct is not None, too_long)


def _matches(text: str, pos: int, endpos: int | None) -> Iterator[NumberMatch]:
    end = len(text) if endpos is None else endpos
    while pos < end:
        start = _NUMBER_START.search(text, pos, end)
        if start is None:
            return
        m = _NUMBER.search(text, start.start(), end)
        if m is None:
            return
        made = _make(m)
        if made is None:  # not a mixed number / power after all: read the leading digits alone
            lead = _LEAD.match(text, m.start(), end)
            if lead is None:
                pos = m.end()
                continue
            made, m = _lead(lead), lead
        yield made
        pos = max(m.end(), pos + 1)


def find_numbers(text: str, pos: int = 0, endpos: int | None = None) -> Iterator[NumberMatch]:
    """All numbers in ``text[pos:endpos]`` in order (look-behind still sees text before ``pos``)."""
    return _matches(text, pos, endpos)


def first_number(text: str, pos: int = 0, endpos: int | None = None) -> NumberMatch | None:
    end = len(text) if endpos is None else endpos
    m = None
    for _ in range(_FIRST_TRIES):  # try the pattern only where a number can start ...
        start = _NUMBER_START.search(text, pos, end)
        if start is None:
            return None
        m = _NUMBER.match(text, start.start(), end)
        if m is not None:
            break
        pos = start.start() + 1
    else:  # ... a few times; then one search from there (linear however many starts fail)
        m = _NUMBER.search(text, pos, end)
    if m is None:
        return None
    made = _make(m)
    return made if made is not None else next(_matches(text, m.start(), endpos), None)


_LEAD = re.compile(r"[-\u2212\u2013]?(?:[$\u20ac\u00a3]\s?)?[-\u2212\u2013]?\d{1,%d}" % MAX_DIGITS)


def _lead(m: re.Match) -> NumberMatch:
    """The leading integer of a match that was no mixed number after all (``5 7/3``: 5)."""
    t = m.group(0)
    negative = t.count("-") + t.count("\u2212") + t.count("\u2013") == 1
    digits = re.sub(r"\D", "", t)
    return NumberMatch(m.start(), m.end(), t, Fraction(int(digits)) * (-1 if negative else 1), False)


_ANY_DIGIT = re.compile(r"\d")
_DIGIT_RUN = re.compile(r"[\d,./ ]*")


def last_number(text: str) -> NumberMatch | None:
    """The last number in ``text``. Finds the last digit with one C-level scan of the reversed text,
    then parses only the run of number characters around it, so a 1 MB completion costs a few ms."""
    n = len(text)
    rev = text[::-1]
    m = _ANY_DIGIT.search(rev)
    if m is None:
        return None
    run = _DIGIT_RUN.match(rev, m.start())
    # the run of number characters before the last digit, plus slack for a sign / currency symbol /
    # mantissa ("2.5 × 10^3"); a run longer than any convertible number ("1,1,1,..." for 1 MB) is cut
    # to its tail
    start = max(0, n - run.end() - 64, n - m.start() - 2 * MAX_DIGITS - 64)
    last = None
    for last in _matches(text, start, None):
        pass
    if last is None:  # e.g. the last digits sit inside a word ("x5"): scan everything
        for last in _matches(text, 0, None):
            pass
    return last


def clean_latex(span: str) -> str:
    """Strip the LaTeX decoration models put around a numeric answer (see module docstring) and
    join digit groups written with spaces (``1 000`` -> ``1000``; only exact 3-digit groups)."""
    if "\\" in span or "{" in span:
        # each substitution runs only when the literal its pattern needs is in the span (a C-level
        # ``in``; a regex pass that finds nothing costs several times more)
        if "frac" in span:
            span = _LATEX_FRAC.sub(lambda m: f"{m.group(1)}{m.group(2)}/{m.group(3)}", span)
            span = _LATEX_FRAC_SHORT.sub(r"\1/\2", span)
        if "\\text" in span or "\\mathrm" in span or "\\mbox" in span:
            span = _LATEX_TEXT.sub(r" \1 ", span)
        if ",\\" in span:
            span = _LATEX_THOUSANDS.sub(",", span)  # "1,\\!240" (Qwen2.5-Math) is 1,240
        if "\\" in span:
            span = _LATEX_SPACES.sub(" ", span)
        span = span.replace("{,}", ",").replace("\\$", "$").replace("\\%", "%").replace("\\left", "")
        span = span.replace("\\right", "").replace("\\cdot", "*").replace("\\times", "*")
        span = span.replace("\\pm", "\u00b1").replace("\\mp", "\u00b1")
        span = span.replace("{", " ").replace("}", " ")
    return _SPACE_GROUPS.sub("", span)


def format_fraction(value: Fraction | None) -> str | None:
    """Short canonical text for a value: ``72``, ``0.75``, ``1/3`` (never a giant string)."""
    if value is None:
        return None
    if max(value.numerator.bit_length(), value.denominator.bit_length()) > 3000:
        return "<huge>"
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1:  # terminating decimal: exact digits, no float rounding
        k = 0
        while (10 ** k) % value.denominator:
            k += 1
        scaled = abs(value.numerator) * (10 ** k) // value.denominator
        whole, frac = divmod(scaled, 10 ** k)
        sign = "-" if value < 0 else ""
        return f"{sign}{whole}.{str(frac).rjust(k, '0').rstrip('0')}"
    return f"{value.numerator}/{value.denominator}"


_DECIMAL_COMMA = re.compile(r"\d,\d{1,2}(?!\d)")
_SCALE_WORDS = ("thousand", "million", "billion", "trillion")


def plain_numbers(text: str) -> str:
    """``text`` with the number forms only this reader knows written plainly, so that another
    parser (the stepwise arithmetic) reads them the same way: a decimal comma becomes a point
    (``€7,50`` -> ``€7.50``, ``2,5 × 4`` -> ``2.5 × 4``) and a scale word is multiplied out
    (``$1.5 million`` -> ``$1500000``)."""
    if not ("," in text and _DECIMAL_COMMA.search(text)) and not any(map(text.__contains__, _SCALE_WORDS)):
        return text  # no decimal comma, no scale word (C-level ``in`` before any regex scan)
    out: list[str] = []
    last = 0
    for m in _NUMBER.finditer(text):
        if m.group("dc") is not None:
            a, b = m.span("dc")
            out += [text[last:a], m.group("dc").replace(",", ".")]
            last = b
        elif m.group("scale") is not None and m.group("num") is not None and m.group("den") is None \
                and not (m.group("exp") or m.group("exp2") or m.group("pow")) and len(m.group("num")) <= 30:
            a, b = m.start("num"), m.end("scale")
            value = to_fraction(m.group("num")) * _SCALES[m.group("scale").strip()]
            out += [text[last:a], format_fraction(value)]
            last = b
    out.append(text[last:])
    return "".join(out)
