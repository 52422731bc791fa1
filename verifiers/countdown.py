"""Countdown verifier: is the answer an arithmetic expression over the given numbers equal to target?

Policy (registered as ``countdown``, reference fields ``numbers`` and ``target``):

* **Where the answer is.** The content of the last ``<answer>…</answer>`` block of the *reply*: the
  completion is normalised and cut by the think-block contract of :mod:`._reply` (text after the
  last closing ``</think>``/``</reasoning>``/...; a reasoning block that never closes has no reply,
  ``no_answer``), so an answer written only inside the reasoning block does not count. An
  ``<answer>`` that is never closed is
  ``no_answer`` (``details["unclosed"]`` says so); an unclosed ``<answer>`` after a complete block is
  ignored (the last complete block counts). **Several blocks** (anti-hacking, "box stuffing";
  POLICY, issue 26 class 3): complete ``<answer>`` blocks of the reply that hold different
  expressions (compared without whitespace and without a trailing ``= N``) are a hedge -- wrong,
  reason ``ambiguous``, ``details["candidates"]`` -- even when one of them is right and even after a
  "wait" between them (a grader that takes the first or the last block would pay the stuffing);
  the same expression repeated is fine, and empty blocks are ignored. With ``bare=True`` the whole completion is the
  expression. Tags are found with ``str.rfind`` (linear time on any input, no regex backtracking).
* **What an expression is.** Non-negative integer literals (no decimals, no leading zeros, no ``_``),
  binary ``+ - * /``, unary plus and parentheses. ``**`` and ``//`` are rejected before anything is
  evaluated (``parse_error``). The symbols ``× · ⋅ ÷ −`` and LaTeX ``\\times \\cdot \\div`` are read as
  ``* * * / -``; ``x`` between two operands is ``*`` (``(10 - 4) x 4``), square and curly brackets
  are parentheses (``[10 - 4] * 4``), and a number or ``)`` directly before ``(`` multiplies
  (``3(4 + 5)``, ``(1 + 2)(3 + 5)``) -- as a grader reads them. Whitespace is free.
* **Numbers.** Every given number is used exactly once, compared as a multiset (``wrong_numbers``
  otherwise: reused, missing, or a number that was not given). A literal longer than the longest given
  number (at least 20 digits) is ``wrong_numbers`` at once, before parsing (a 100k-digit literal is
  already ``too_long``).
* **Arithmetic.** Exact rationals (``fractions.Fraction``): ``6/(1-3/4)`` is exactly 24; intermediate
  fractions are allowed. Division by zero anywhere is ``div_by_zero`` (wrong, not a crash).
* **A trailing ``= N``.** ``expr = N`` is accepted when ``N`` is a plain integer (optionally signed)
  equal to the target and ``expr`` equals the target; a claimed right side that differs from the
  target is ``not_equal`` even when the left side is right (the written equation is false). ``N`` does
  not count as a used number. A leading ``N =`` or more than one ``=`` is ``parse_error``.
* **Limits.** An answer longer than 1,000 characters is ``too_long``; nesting deeper than 100
  parentheses (or a run of more than 100 signs) is ``parse_error``, checked by a linear scan before
  ``ast.parse``, whose parser recurses. The expression is parsed with ``ast.parse(mode="eval")`` and
  walked iteratively by hand; nothing is ever ``eval``-ed.
* **No unary minus** (anti-hacking). ``-`` is a Countdown operator only between two operands: a
  sign in front of an operand (``-3 + 10``, ``8 - -3``, ``8 +- 3``, ``--5``, ``-(2 * 3)``) turns a
  given number into one the task did not give, so it is refused with reason ``unary_minus``
  (wrong), even when the value equals the target. A unary ``+`` changes no value and is allowed.
* **Reference.** ``numbers`` may be a list/tuple of ints, of integer strings, a JSON string such as
  ``"[3, 5, 7]"``, a comma/space separated string, or anything with ``.tolist()`` (tensors, arrays);
  ``target`` an int, an integral float, a numeric string or a ``.item()``-able scalar. Anything else
  (or a negative given number) is ``bad_gold``: ``correct=None``, score 0.0 — "could not score".

Score is 1.0 when correct, else 0.0. Reasons: ``correct``, ``not_equal``, ``wrong_numbers``,
``parse_error``, ``unary_minus``, ``ambiguous``, ``no_answer``, ``unclosed_reasoning``, ``div_by_zero``, ``too_long``,
``bad_gold``.
"""
from __future__ import annotations

import ast
import json
import operator
import re
from fractions import Fraction
from typing import Any

from ._extract import tag_contents
from ._reply import normalize, split_reasoning
from .base import (
    BAD_GOLD, CORRECT, NO_ANSWER, NOT_EQUAL, PARSE_ERROR, WRONG_NUMBERS, Verdict, register,
)

DIV_BY_ZERO = "div_by_zero"
UNARY_MINUS = "unary_minus"
UNCLOSED_REASONING = "unclosed_reasoning"
AMBIGUOUS = "ambiguous"
_MAX_BLOCKS = 16
_CLAIMED = re.compile(r"=[+-]?\d+$")
TOO_LONG = "too_long"

MAX_ANSWER_CHARS = 1_000
MAX_DEPTH = 100
MIN_LITERAL_DIGITS = 20

_SYMBOLS = {
    "\u00d7": "*", "\u00b7": "*", "\u22c5": "*", "\u2217": "*", "\u00f7": "/", "\u2212": "-",
    "\u2013": "-", "\u2044": "/", "\u2215": "/",
}
_LATEX = (("\\times", "*"), ("\\cdot", "*"), ("\\div", "/"), ("\\left(", "("), ("\\right)", ")"))
_TIMES_X = re.compile(r"(?<=[\d)\]}])\s*[xX]\s*(?=[\d(\[{])")
_BRACKETS = str.maketrans("[]{}", "()()")
_IMPLICIT = re.compile(r"(\d|\))\s*\(")
_ALLOWED = re.compile(r"[0-9+\-*/()= ]*")
_DIGITS = re.compile(r"\d+")


def _to_python(value: Any) -> Any:
    """Tensors/arrays/numpy scalars -> plain Python objects (without importing torch or numpy)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()
    return value


def parse_numbers(numbers: Any) -> list[int] | None:
    """Normalise the given numbers to a list of non-negative ints; None when they make no sense."""
    numbers = _to_python(numbers)
    if isinstance(numbers, str):
        text = numbers.strip()
        try:
            numbers = json.loads(text)
        except ValueError:
            numbers = [p for p in re.split(r"[\s,;]+", text.strip("[]()")) if p]
        numbers = _to_python(numbers)
    if not isinstance(numbers, (list, tuple)) or not numbers:
        return None
    out = []
    for n in numbers:
        if type(n) is int:  # the common case, as the general path below reads it (no tolist, not bool)
            if n < 0:
                return None
            out.append(n)
            continue
        n = _to_python(n)
        if isinstance(n, bool):
            return None
        if isinstance(n, str):
            n = n.strip()
            if not n.isdigit() or not n.isascii():
                return None
            n = int(n)
        elif isinstance(n, float):
            if not n.is_integer():
                return None
            n = int(n)
        if not isinstance(n, int) or n < 0:
            return None
        out.append(n)
    return out


def parse_target(target: Any) -> Fraction | None:
    """Normalise the target to a Fraction; None when it is not a finite number."""
    target = _to_python(target)
    if isinstance(target, bool) or target is None:
        return None
    if isinstance(target, (list, tuple)):  # a 1-element tensor becomes [x]
        if len(target) != 1:
            return None
        return parse_target(target[0])
    try:
        if isinstance(target, float):
            return Fraction(target) if target == target and abs(target) != float("inf") else None
        if isinstance(target, int):
            return Fraction(target)
        if isinstance(target, str) and len(target) <= 100:
            return Fraction(target.strip().replace("\u2212", "-"))
    except (ValueError, ZeroDivisionError):
        return None
    return None


def extract_answer(completion: str, tags=None) -> tuple[str | None, bool]:
    """Content of the last ``<answer>…</answer>`` in the reply (the think-block contract of
    :mod:`._reply`); (None, unclosed?)."""
    split = split_reasoning(normalize(completion), tags)
    if split.reply is None:
        return None, UNCLOSED_REASONING
    completion, start = split.reply, 0
    close = completion.rfind("</answer>", start)
    if close < 0:
        return None, completion.find("<answer>", start) >= 0
    opening = completion.rfind("<answer>", start, close)
    if opening < 0:
        return None, completion.find("<answer>", close) >= 0
    return completion[opening + len("<answer>"):close], False


def answer_blocks(completion: str, tags=None) -> list[str]:
    """The different non-empty expressions of the reply's complete ``<answer>`` blocks (whitespace
    and a trailing ``= N`` ignored), in order; more than one is a hedge (POLICY, several blocks)."""
    if completion.count("</answer>") < 2:
        return []
    split = split_reasoning(normalize(completion), tags)
    if split.reply is None or split.reply.count("</answer>") < 2:
        return []
    out: list[str] = []
    keys: set[str] = set()
    for _, content in reversed(tag_contents(split.reply, "answer", _MAX_BLOCKS)):
        key = _CLAIMED.sub("", "".join(_normalise(content[:MAX_ANSWER_CHARS * 4]).split()))
        if key and key not in keys:
            keys.add(key)
            out.append(content.strip()[:100])
    return out


def _times_bracket(m: re.Match) -> str:
    """``\\1*(`` as a function: a template replacement costs a Python-level template call on every
    ``sub``, matches or not."""
    return m.group(1) + "*("


def _normalise(expr: str) -> str:
    if "\\" in expr:
        for a, b in _LATEX:
            expr = expr.replace(a, b)
    if not expr.isascii():
        for a, b in _SYMBOLS.items():
            expr = expr.replace(a, b)
    expr = expr.strip()
    if "x" in expr or "X" in expr:  # "(10 - 4) x 4": x between operands is times
        expr = _TIMES_X.sub("*", expr)
    if "[" in expr or "{" in expr:  # "[10 - 4] * 4": brackets are parentheses
        expr = expr.translate(_BRACKETS)
    if "(" in expr:  # "3(4 + 5)", "(2 + 1)(3 + 5)": implicit multiplication
        expr = _IMPLICIT.sub(_times_bracket, expr)
    while expr.startswith("$") and expr.endswith("$") and len(expr) >= 2:
        expr = expr[1:-1].strip()
    if expr.startswith("\\(") and expr.endswith("\\)"):
        expr = expr[2:-2].strip()
    return " ".join(expr.rstrip(".").split())  # any whitespace run -> one space


class _Reject(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _max_depth(expr: str) -> int:
    """Deepest nesting of parentheses or of a run of signs (``---6``), by one linear scan."""
    depth = deepest = signs = 0
    for ch in expr:
        if ch in "+-":
            signs += 1
            deepest = max(deepest, signs)
        elif ch != " ":
            signs = 0
        if ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise _Reject(PARSE_ERROR, "unbalanced parentheses")
    if depth:
        raise _Reject(PARSE_ERROR, "unbalanced parentheses")
    return deepest


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _evaluate(tree: ast.Expression) -> int | Fraction:
    """Exact value of a parsed expression; only the node types handled here are allowed.

    Iterative (explicit stack), so a long chain such as ``1+1+…+1`` cannot hit the recursion limit.
    Values stay Python ints while exact and become Fractions only on an inexact division (speed).
    """
    stack: list[tuple[ast.AST, bool]] = [(tree.body, False)]
    values: list[int | Fraction] = []
    while stack:
        node, ready = stack.pop()
        kind = type(node)
        if kind is ast.Constant and type(node.value) is int:
            values.append(node.value)
        elif kind is ast.BinOp and type(node.op) in _BINOPS:
            if ready:
                right = values.pop()
                values.append(_BINOPS[type(node.op)](values.pop(), right))
            else:
                stack += [(node, True), (node.right, False), (node.left, False)]
        elif kind is ast.BinOp and type(node.op) is ast.Div:
            if not ready:
                stack += [(node, True), (node.right, False), (node.left, False)]
                continue
            right, left = values.pop(), values.pop()
            if right == 0:
                raise _Reject(DIV_BY_ZERO, "division by zero")
            if type(left) is int and type(right) is int and left % right == 0:
                values.append(left // right)
            else:
                values.append(Fraction(left) / right)
        elif kind is ast.UnaryOp and type(node.op) is ast.USub:
            raise _Reject(UNARY_MINUS, "unary minus is not a Countdown operator")
        elif kind is ast.UnaryOp and type(node.op) is ast.UAdd:
            stack.append((node.operand, False))
        else:
            raise _Reject(PARSE_ERROR, f"not allowed: {kind.__name__}")
    return values[0]


def _check(expr: str, numbers: list[int], target: Fraction) -> tuple[str, dict[str, Any]]:
    """(reason, details) for a normalised expression."""
    if not _ALLOWED.fullmatch(expr):
        bad = sorted({c for c in expr if c not in "0123456789+-*/()= "})
        return PARSE_ERROR, {"error": f"characters not allowed: {''.join(bad[:10])!r}"}
    if "**" in expr.replace(" ", ""):
        return PARSE_ERROR, {"error": "power operator ** is not allowed"}
    if "//" in expr.replace(" ", ""):
        return PARSE_ERROR, {"error": "floor division // is not allowed"}
    claimed = None
    if "=" in expr:
        parts = expr.split("=")
        if len(parts) != 2:
            return PARSE_ERROR, {"error": "more than one '='"}
        expr, rhs = parts[0].strip(), parts[1].strip()
        if not re.fullmatch(r"[+-]?\s*\d{1,40}", rhs):
            return PARSE_ERROR, {"error": "right side of '=' must be a single integer"}
        claimed = Fraction(int(rhs.replace(" ", "")))
    if not expr:
        return PARSE_ERROR, {"error": "empty expression"}
    cap = max(MIN_LITERAL_DIGITS, max(len(str(n)) for n in numbers))
    runs = _DIGITS.findall(expr)
    if any(len(r) > cap for r in runs):
        return WRONG_NUMBERS, {"error": f"a literal has more than {cap} digits"}
    used = sorted(int(r) for r in runs)
    if used != sorted(numbers):  # the same multiset (sorted lists compare as Counters do, and faster)
        return WRONG_NUMBERS, {"used": used, "numbers": sorted(numbers)}
    try:
        if _max_depth(expr) > MAX_DEPTH:
            return PARSE_ERROR, {"error": f"parentheses or signs nested deeper than {MAX_DEPTH}"}
        try:
            tree = ast.parse(expr, mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            return PARSE_ERROR, {"error": f"{type(exc).__name__}: {exc}"}
        value = _evaluate(tree)
    except _Reject as rej:
        return rej.reason, {"error": str(rej)}
    except RecursionError:
        return PARSE_ERROR, {"error": "expression too deep"}
    details: dict[str, Any] = {"value": str(value), "used": used}
    if claimed is not None:
        details["claimed"] = str(claimed)
        if claimed != target:
            return NOT_EQUAL, details
    return (CORRECT if value == target else NOT_EQUAL), details


def verify_countdown(completion: str, numbers: Any, target: Any, *, bare: bool = False,
                     reasoning_tags=None) -> Verdict:
    """Countdown: the last <answer> is an expression using each given number once that equals target."""
    nums, tgt = parse_numbers(numbers), parse_target(target)
    if nums is None or tgt is None:
        which, value = ("numbers", numbers) if nums is None else ("target", target)
        return Verdict(0.0, None, None, BAD_GOLD, {"error": f"reference {which} is not usable: {value!r}"[:300]})
    if not isinstance(completion, str):
        return Verdict(0.0, False, None, NO_ANSWER,
                       {"error": f"completion is {type(completion).__name__}, not str"})
    if bare:
        raw, unclosed = normalize(completion), False
    else:
        raw, unclosed = extract_answer(completion, reasoning_tags)
    if raw is None:
        if unclosed == UNCLOSED_REASONING:
            return Verdict(0.0, False, None, UNCLOSED_REASONING, {"reasoning": "unclosed"})
        return Verdict(0.0, False, None, NO_ANSWER, {"unclosed": True} if unclosed else {})
    if len(raw) > MAX_ANSWER_CHARS * 4:  # before normalising: never copy a huge string around
        return Verdict(0.0, False, raw[:100], TOO_LONG, {"chars": len(raw)})
    blocks = [] if bare else answer_blocks(completion, reasoning_tags)
    if len(blocks) > 1:
        return Verdict(0.0, False, raw.strip()[:100], AMBIGUOUS, {"candidates": blocks[:8]})
    expr = _normalise(raw)
    if not expr:
        return Verdict(0.0, False, expr, NO_ANSWER, {"error": "empty answer"})
    if len(expr) > MAX_ANSWER_CHARS:
        return Verdict(0.0, False, expr[:100], TOO_LONG, {"chars": len(expr)})
    reason, details = _check(expr, nums, tgt)
    details.setdefault("target", str(tgt))
    ok = reason == CORRECT
    return Verdict(1.0 if ok else 0.0, ok, expr, reason, details)


register("countdown", verify_countdown, fields=("numbers", "target"),
         description="Countdown: expression over the given numbers (each once) equal to target")
