"""Answer-span extraction shared by the verifiers: ``<tag>`` contents and ``\\boxed{...}`` arguments.

Hand-written (no library does tag/boxed extraction on raw model text with these guarantees): every
function is linear in the text length (``str.rfind`` plus a single brace-matching scan), so a 1 MB
completion or 10k nested braces cannot blow up.
"""
from __future__ import annotations

import re

__all__ = ["last_tag_content", "last_boxed_content", "think_content"]

_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")


def last_tag_content(text: str, tag: str) -> str | None:
    """Content of the last complete ``<tag>...</tag>`` block in ``text`` (stripped), else None.

    The last closing tag is paired with the nearest opening tag before it, so
    ``<answer>1</answer> ... <answer>2</answer>`` gives ``"2"``. An unclosed trailing
    ``<answer>7`` is not an answer (the model did not finish it). Tag names are case-sensitive.
    """
    if not isinstance(text, str):
        return None
    close = f"</{tag}>"
    end = text.rfind(close)
    if end < 0:
        return None
    start = text.rfind(f"<{tag}>", 0, end)
    if start < 0:
        return None
    return text[start + len(tag) + 2:end].strip()


def think_content(text: str) -> str | None:
    """The reasoning inside ``<think>...</think>``; also handles a prompt that pre-filled ``<think>``
    (only ``</think>`` present: everything before it). None when there is no ``</think>``."""
    if not isinstance(text, str):
        return None
    end = text.find("</think>")
    if end < 0:
        return None
    start = text.rfind("<think>", 0, end)
    return text[(start + 7) if start >= 0 else 0:end]


def last_boxed_content(text: str) -> str | None:
    """Argument of the last ``\\boxed{...}`` (or ``\\fbox{...}``) with balanced braces, else None."""
    if not isinstance(text, str):
        return None
    matches = None
    # rfind of "\\boxed" then regex at that point keeps this linear even on huge inputs
    pos = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    while pos >= 0:
        matches = _BOXED_RE.match(text, pos)
        if matches:
            body = _balanced(text, matches.end())
            if body is not None:
                return body.strip()
        pos = max(text.rfind("\\boxed", 0, pos), text.rfind("\\fbox", 0, pos))
    return None


def _balanced(text: str, i: int) -> str | None:
    """Text from index ``i`` up to the brace that closes an already-open ``{``; None if unclosed."""
    depth = 1
    start = i
    n = len(text)
    while i < n:
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
        elif c == "\\" and i + 1 < n:
            i += 1  # skip escaped char, e.g. \{ or \}
        i += 1
    return None
