"""Format verifiers: does the completion use ``<think>…</think>`` then ``<answer>…</answer>``?

Two registered names, no reference fields; score 1.0 or 0.0, ``correct`` a bool (never None):

* ``format`` (strict, the AgileRL Countdown recipe's format reward): the completion, stripped of
  surrounding whitespace, is exactly one ``<think>…</think>`` block, a separator and one
  ``<answer>…</answer>`` block, nothing before or after. Policy choices:

  - the separator must be whitespace containing at least one newline (``"\\n"``, ``"\\n\\n"``,
    ``" \\n  "``); the recipe's regex demands exactly ``"\\n"``, which penalises a harmless blank line;
  - each of the four tags appears exactly once (``repeated_tags`` otherwise), the think block holds no
    answer tag (``nested_tags``), and the answer block is not empty after stripping (``empty_answer``);
  - the think block may be empty (``<think></think>``, what non-thinking chat templates emit).

* ``format_soft``: the four tags occur in order (first ``<think>``, then a ``</think>`` after it, then
  ``<answer>``, then ``</answer>``); text around them, repeated blocks and empty answers are allowed.

Option ``prefilled_think=True`` (both modes): the prompt already ends with ``<think>`` so the completion
starts inside the think block; ``<think>`` is prepended before checking (as the AgileRL recipe does).
A completion that nevertheless opens its own ``<think>`` then has a repeated tag.

Reasons: ``correct``, ``missing_think``, ``missing_answer``, ``repeated_tags``, ``nested_tags``,
``wrong_order``, ``empty_answer``, ``leading_text``, ``trailing_text``, ``bad_separator``.
The check is a handful of ``str.count``/``str.find`` calls: linear time, no regex backtracking.
``Verdict.extracted`` is the stripped answer-block content (or None).
"""
from __future__ import annotations

from .base import CORRECT, Verdict, register

MISSING_THINK = "missing_think"
MISSING_ANSWER = "missing_answer"
REPEATED_TAGS = "repeated_tags"
NESTED_TAGS = "nested_tags"
WRONG_ORDER = "wrong_order"
EMPTY_ANSWER = "empty_answer"
LEADING_TEXT = "leading_text"
TRAILING_TEXT = "trailing_text"
BAD_SEPARATOR = "bad_separator"

_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def _answer_content(text: str) -> str | None:
    close = text.rfind("</answer>")
    opening = text.rfind("<answer>", 0, close) if close >= 0 else -1
    return text[opening + len("<answer>"):close].strip() if opening >= 0 else None


def _verdict(ok: bool, reason: str, text: str, **details) -> Verdict:
    return Verdict(1.0 if ok else 0.0, ok, _answer_content(text), CORRECT if ok else reason, details)


def _strict(text: str) -> Verdict:
    text = text.strip()
    counts = {tag: text.count(tag) for tag in _TAGS}
    if counts["<think>"] == 0 or counts["</think>"] == 0:
        return _verdict(False, MISSING_THINK, text, counts=counts)
    if counts["<answer>"] == 0 or counts["</answer>"] == 0:
        return _verdict(False, MISSING_ANSWER, text, counts=counts)
    if any(n > 1 for n in counts.values()):
        return _verdict(False, REPEATED_TAGS, text, counts=counts)
    t_open, t_close = text.find("<think>"), text.find("</think>")
    a_open, a_close = text.find("<answer>"), text.find("</answer>")
    if t_open < a_open < t_close or t_open < a_close < t_close:
        return _verdict(False, NESTED_TAGS, text)
    if a_open < t_open < a_close or a_open < t_close < a_close:
        return _verdict(False, NESTED_TAGS, text)
    if not (t_open < t_close < a_open < a_close):
        return _verdict(False, WRONG_ORDER, text)
    if t_open != 0:
        return _verdict(False, LEADING_TEXT, text)
    if a_close + len("</answer>") != len(text):
        return _verdict(False, TRAILING_TEXT, text)
    between = text[t_close + len("</think>"):a_open]
    if between.strip() or "\n" not in between:
        return _verdict(False, BAD_SEPARATOR, text, separator=between[:50])
    if not text[a_open + len("<answer>"):a_close].strip():
        return _verdict(False, EMPTY_ANSWER, text)
    return _verdict(True, CORRECT, text)


def _soft(text: str) -> Verdict:
    pos = 0
    for tag in _TAGS:
        found = text.find(tag, pos)
        if found < 0:
            reason = MISSING_THINK if "think" in tag else MISSING_ANSWER
            if text.find(tag) >= 0:
                reason = WRONG_ORDER
            return _verdict(False, reason, text, missing=tag)
        pos = found + len(tag)
    return _verdict(True, CORRECT, text)


def verify_format(completion: str, *, mode: str = "strict", prefilled_think: bool = False) -> Verdict:
    """Format: one <think>…</think> then one non-empty <answer>…</answer> (strict) or tags in order (soft)."""
    if mode not in ("strict", "soft"):
        raise ValueError(f"format mode must be 'strict' or 'soft', not {mode!r}")
    if not isinstance(completion, str):
        return Verdict(0.0, False, None, MISSING_THINK, {"error": f"completion is {type(completion).__name__}"})
    text = "<think>" + completion if prefilled_think else completion
    return _strict(text) if mode == "strict" else _soft(text)


register("format", verify_format, fields=(), mode="strict",
         description="Strict format: exactly <think>…</think>\\n<answer>…</answer>, non-empty answer")
register("format_soft", verify_format, fields=(), mode="soft",
         description="Soft format: <think>, </think>, <answer>, </answer> present in order")
