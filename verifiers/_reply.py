"""The one reading contract every verifier applies before any rule: normalise, then split off the
reasoning block.

**Normalisation** (:func:`normalize`; POLICY: every rule sees normalised text). Models and
copy-paste put invisible and compatibility characters into answers; a rule that compares text or
looks for "empty" must not be fooled by them:

* superscript digits become ``^`` powers (``10⁶`` -> ``10^6``, ``5²`` -> ``5^2``) and vulgar
  fractions become slash fractions with a space before a whole part (``2½`` -> ``2 1/2``,
  ``½`` -> ``1/2``) -- *before* NFKC, which would turn ``10⁶`` into ``106`` and ``2½`` into ``21⁄2``;
* Unicode NFKC (full-width digits, ligatures, ``…``, no-break spaces become their plain forms);
* every *format* character (Unicode category Cf: U+200B zero-width space, U+200C/U+200D joiners,
  U+2060 word joiner, U+FEFF BOM, U+00AD soft hyphen, bidi marks ...) is removed, so
  ``<think>\\u200b</think>`` is empty reasoning and a zero-width answer is an empty answer;
* the fraction slash U+2044 becomes ``/``.

Pure ASCII text is returned unchanged without any work (the common case costs one ``isascii``).

**Reasoning blocks** (:func:`split_reasoning`; POLICY, the think-block contract). A reasoning
block is a configurable tag pair; :data:`REASONING_TAGS` holds the pairs models use (``<think>``,
``<thinking>``, ``<reasoning>``, ``<thought>``, ``<|begin_of_thought|>``...). With the last closing
tag of any pair at position ``c``:

* a closed block followed by a reply -> the *reply* is the text after the last closing tag; the
  *reasoning* runs from the first opening tag (or the start of the text, for a prompt that
  pre-filled the opening tag) to ``c``. Answer verifiers read only the reply: a tentative answer
  inside the reasoning is never the answer;
* a block that never closes (an opening tag and no closing tag after it, including a block
  re-opened after the last close) -> ``state == "unclosed"`` and no reply: answer verifiers give
  ``no_answer`` with ``details["reasoning"] = "unclosed"`` (the model was cut off while thinking);
* no tag at all -> the whole text is the reply (``state == "none"``).

Every scan is ``str.find``/``rfind`` or a single C-level ``translate``: linear time.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["REASONING_TAGS", "Split", "normalize", "split_reasoning", "UNCLOSED", "CLOSED", "NO_BLOCK"]

#: (opening, closing) tag pairs of reasoning blocks, as models write them.
REASONING_TAGS: tuple[tuple[str, str], ...] = (
    ("<think>", "</think>"),
    ("<thinking>", "</thinking>"),
    ("<reasoning>", "</reasoning>"),
    ("<thought>", "</thought>"),
    ("<reflection>", "</reflection>"),
    ("<|begin_of_thought|>", "<|end_of_thought|>"),
    ("<seed:think>", "</seed:think>"),
)

CLOSED, UNCLOSED, NO_BLOCK = "closed", "unclosed", "none"

# Unicode category Cf (format characters; Unicode 14), as ranges so that import costs nothing.
_CF_RANGES = ((0xAD, 0xAD), (0x600, 0x605), (0x61C, 0x61C), (0x6DD, 0x6DD), (0x70F, 0x70F), (0x890, 0x891),
              (0x8E2, 0x8E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x2064),
              (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
              (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
              (0xE0020, 0xE007F))
_FORMAT_CHARS: dict[int, str | None] = {cp: None for a, b in _CF_RANGES for cp in range(a, b + 1)}
_FORMAT_CHARS[0x2044] = "/"  # fraction slash
# Found in two steps: one class holding a range beyond U+FFFF is tested range by range at every
# character, a class of BMP ranges is one table look-up; astral text is checked apart (rare).
_FORMAT_BMP = re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in _CF_RANGES if b <= 0xFFFF) + "\u2044]")
_FORMAT_ASTRAL = re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in _CF_RANGES if a > 0xFFFF) + "]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
assert all(b <= 0xFFFF or a > 0xFFFF for a, b in _CF_RANGES)
_SUPERSCRIPTS = "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
_SUPER_RUN = re.compile(f"[{_SUPERSCRIPTS}]{{1,12}}")
_SUPER_MAP = {ord(c): str(i) for i, c in enumerate(_SUPERSCRIPTS)}
_VULGAR_MAP = {"\u00bd": "1/2", "\u00bc": "1/4", "\u00be": "3/4", "\u2153": "1/3", "\u2154": "2/3",
               "\u2155": "1/5", "\u2156": "2/5", "\u2157": "3/5", "\u2158": "4/5", "\u2159": "1/6",
               "\u215a": "5/6", "\u215b": "1/8", "\u215c": "3/8", "\u215d": "5/8", "\u215e": "7/8",
               "\u2150": "1/7", "\u2151": "1/9", "\u2152": "1/10"}
_VULGAR = re.compile(f"(\\d?)([{''.join(_VULGAR_MAP)}])")
_VULGAR_CHAR = re.compile(f"[{''.join(_VULGAR_MAP)}]")  # the cheap pre-scan (no optional group in front)
_SUPER_OR_VULGAR = re.compile(f"[{_SUPERSCRIPTS}{''.join(_VULGAR_MAP)}]")  # one scan for the common case: neither


def normalize(text: str) -> str:
    """``text`` as every rule reads it (see the module docstring)."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if text.isascii():
        return text
    if _SUPER_OR_VULGAR.search(text):
        if _SUPER_RUN.search(text):
            text = _SUPER_RUN.sub(lambda m: "^" + m.group().translate(_SUPER_MAP), text)
        if _VULGAR_CHAR.search(text):
            text = _VULGAR.sub(lambda m: (m.group(1) + " " if m.group(1) else "") + _VULGAR_MAP[m.group(2)], text)
    text = unicodedata.normalize("NFKC", text)
    if _FORMAT_BMP.search(text) or (_ASTRAL.search(text) and _FORMAT_ASTRAL.search(text)):
        return text.translate(_FORMAT_CHARS)
    return text


@dataclass(frozen=True)
class Split:
    """A completion cut by the think-block contract."""

    reply: str | None  # what answer verifiers read; None when the reasoning never closed
    reasoning: str | None  # the reasoning block's text (None when there is no block)
    state: str  # CLOSED, UNCLOSED or NO_BLOCK


@lru_cache(maxsize=32)
def _tag_regex(tags: tuple[tuple[str, str], ...]) -> tuple[re.Pattern, frozenset, bool]:
    """(one regex for every tag, the closing tags, whether every tag starts with '<')."""
    closing = frozenset(c for _, c in tags)
    alternatives = sorted({t for pair in tags for t in pair}, key=len, reverse=True)
    angled = all(t.startswith("<") for t in alternatives)
    return re.compile("|".join(re.escape(t) for t in alternatives)), closing, angled


_DEFAULT_TAGS = _tag_regex(REASONING_TAGS)
_new_object = object.__new__


def _split(reply: str | None, reasoning: str | None, state: str) -> Split:
    """``Split(reply, reasoning, state)`` without the frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field); the same object."""
    s = _new_object(Split)
    d = s.__dict__
    d["reply"] = reply
    d["reasoning"] = reasoning
    d["state"] = state
    return s


def split_reasoning(text: str, tags: tuple[tuple[str, str], ...] | None = None) -> Split:
    """Cut ``text`` (already :func:`normalize`-d) by the think-block contract of the module docstring."""
    pattern, closing, angled = _DEFAULT_TAGS if tags is None else _tag_regex(tuple(tags))
    if angled and "<" not in text:
        return _split(text, None, NO_BLOCK)
    first_open = last_close = last_open = None
    for m in pattern.finditer(text):  # one C-level scan; tag occurrences are few
        if m.group() in closing:
            last_close = m
        else:
            if first_open is None:
                first_open = m
            last_open = m
    if last_close is None:
        if first_open is None:
            return _split(text, None, NO_BLOCK)
        return _split(None, text[first_open.end():], UNCLOSED)
    close_at = last_close.start()
    start = first_open.end() if first_open is not None and first_open.start() < close_at else 0
    reasoning = text[start:close_at]
    if last_open is not None and last_open.start() > close_at:  # re-opened and cut off
        return _split(None, reasoning, UNCLOSED)
    return _split(text[last_close.end():], reasoning, CLOSED)
