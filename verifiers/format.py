"""Format verifiers: does the completion use ``<think>…</think>`` then ``<answer>…</answer>``?

Two registered names, no reference fields; score 1.0 or 0.0, ``correct`` a bool (never None):

* ``format`` (strict, the AgileRL Countdown recipe's format reward): the completion, stripped of
  surrounding whitespace, is exactly one ``<think>…</think>`` block, a separator and one
  ``<answer>…</answer>`` block, nothing before or after. Policy choices:

  - the separator must be whitespace containing at least one newline (``"\\n"``, ``"\\n\\n"``,
    ``" \\n  "``); the recipe's regex demands exactly ``"\\n"``, which penalises a harmless blank line;
  - each of the four tags appears exactly once (``repeated_tags`` otherwise: a policy that repeats
    blocks is never strict format), the think block holds no answer tag (``nested_tags``), and the
    answer block is not empty after stripping (``empty_answer``);
  - **the reasoning is not empty** (anti-hacking): ``<think></think>`` or a think block of whitespace
    only is ``empty_think``. Emitting the tags without reasoning is the cheapest way to collect a
    format reward, and a reward for "format" that pays for it teaches exactly that.

* ``format_soft``: the four tags occur in order (first ``<think>``, then a ``</think>`` after it, then
  ``<answer>``, then ``</answer>``); text around them and an empty think block are allowed.
  Anti-hacking: **the answer block is not empty** (the first ``<answer>…</answer>`` after the
  reasoning; ``empty_answer``: the recorded learning run's
  policy learned to close the answer at once), and **repeated tags are counted**: with ``k`` = the
  largest count of any of the four tags, the score is ``1/k`` and the reason ``repeated_blocks``
  when ``k > 1`` (``correct`` stays True: the tags are in order), so repeating blocks or tags never
  raises the reward.

**Normalisation** (both modes; POLICY): the completion is normalised first (:func:`._reply.normalize`:
NFKC, format characters such as U+200B / U+2060 / U+FEFF / U+00AD removed), so
``<think>\u200b</think>`` is ``empty_think`` and a zero-width answer is ``empty_answer``.

**End-of-turn tokens** (both modes): known end-of-turn / end-of-text tokens at the very end of the
completion (``<|im_end|>``, ``<|endoftext|>``, ``<|end_of_text|>``, ``<|eot_id|>``, ``<|end|>``,
``<end_of_turn>``, ``</s>``, with whitespace around them, any number of them) are removed before
checking, so decoding with special tokens kept does not zero the reward. Anywhere else they are
ordinary text (``trailing_text`` after the answer).

Option ``prefilled_think=True`` (both modes): the prompt already ends with ``<think>`` so the completion
starts inside the think block; ``<think>`` is prepended before checking (as the AgileRL recipe does).
A completion that nevertheless opens its own ``<think>`` then has a repeated tag.

Reasons: ``correct``, ``missing_think``, ``missing_answer``, ``repeated_tags``, ``nested_tags``,
``wrong_order``, ``empty_think``, ``empty_answer``, ``leading_text``, ``trailing_text``,
``bad_separator``, ``repeated_blocks`` (soft).
The check is a handful of ``str.count``/``str.find`` calls: linear time, no regex backtracking.
``Verdict.extracted`` is the stripped answer-block content (or None).
"""
from __future__ import annotations

from ._final import END_OF_TURN
from ._reply import normalize
from .base import CORRECT, Verdict, register

MISSING_THINK = "missing_think"
MISSING_ANSWER = "missing_answer"
REPEATED_TAGS = "repeated_tags"
NESTED_TAGS = "nested_tags"
WRONG_ORDER = "wrong_order"
EMPTY_ANSWER = "empty_answer"
EMPTY_THINK = "empty_think"
REPEATED_BLOCKS = "repeated_blocks"
LEADING_TEXT = "leading_text"
TRAILING_TEXT = "trailing_text"
BAD_SEPARATOR = "bad_separator"

_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def strip_end_of_turn(text: str) -> str:
    """``text`` without the end-of-turn tokens (and whitespace) at its very end."""
    end = len(text.rstrip())
    while True:
        for tok in END_OF_TURN:
            if text.endswith(tok, 0, end):
                end -= len(tok)
                while end and text[end - 1].isspace():
                    end -= 1
                break
        else:
            return text[:end]


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
    if not text[t_open + len("<think>"):t_close].strip():
        return _verdict(False, EMPTY_THINK, text)
    if not text[a_open + len("<answer>"):a_close].strip():
        return _verdict(False, EMPTY_ANSWER, text)
    return _verdict(True, CORRECT, text)


def _soft(text: str) -> Verdict:
    pos = 0
    spans = []
    for tag in _TAGS:
        found = text.find(tag, pos)
        if found < 0:
            reason = MISSING_THINK if "think" in tag else MISSING_ANSWER
            if text.find(tag) >= 0:
                reason = WRONG_ORDER
            return _verdict(False, reason, text, missing=tag)
        pos = found + len(tag)
        spans.append((found, pos))
    if not text[spans[2][1]:spans[3][0]].strip():  # the answer block that completes the order
        return _verdict(False, EMPTY_ANSWER, text)
    blocks = max(text.count(tag) for tag in _TAGS)
    if blocks > 1:
        return Verdict(1.0 / blocks, True, _answer_content(text), REPEATED_BLOCKS, {"blocks": blocks})
    return _verdict(True, CORRECT, text)


def verify_format(completion: str, *, mode: str = "strict", prefilled_think: bool = False) -> Verdict:
    """Format: one <think>…</think> then one non-empty <answer>…</answer> (strict) or tags in order (soft)."""
    if mode not in ("strict", "soft"):
        raise ValueError(f"format mode must be 'strict' or 'soft', not {mode!r}")
    if not isinstance(completion, str):
        return Verdict(0.0, False, None, MISSING_THINK, {"error": f"completion is {type(completion).__name__}"})
    completion = normalize(completion)  # invisible characters never make a block non-empty (issue 26, class 5)
    text = strip_end_of_turn("<think>" + completion if prefilled_think else completion)
    return _strict(text) if mode == "strict" else _soft(text)


register("format", verify_format, fields=(), mode="strict",
         description="Strict format: exactly <think>…</think>\\n<answer>…</answer>, non-empty reasoning and answer")
register("format_soft", verify_format, fields=(), mode="soft",
         description="Soft format: <think>, </think>, <answer>, </answer> present in order")
