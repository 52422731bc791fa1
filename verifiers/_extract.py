"""Answer-span extraction shared by the verifiers: ``<tag>`` contents and ``\\boxed{...}`` arguments.

Hand-written (no library does tag/boxed extraction on raw model text with these guarantees): every
function is linear in the text length (``str.rfind`` plus a single brace-matching scan), so a 1 MB
completion or 10k nested braces cannot blow up.
"""
from __future__ import annotations

import re

from ._reply import CLOSED, normalize, split_reasoning

__all__ = ["last_tag_content", "last_boxed_content", "think_content", "boxed_contents", "tag_contents"]

_BRACE_TOKENS = re.compile(r"\\(?:boxed|fbox)\s*\{|\\[{}]|[{}]")


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
    """The reasoning of a *closed* reasoning block by the think-block contract of :mod:`._reply`
    (also a prompt that pre-filled ``<think>``: everything before ``</think>``); None when no block
    closes."""
    if not isinstance(text, str):
        return None
    split = split_reasoning(normalize(text))
    return split.reasoning if split.state == CLOSED else None


def last_boxed_content(text: str) -> str | None:
    """Argument of the last ``\\boxed{...}`` (or ``\\fbox{...}``) with balanced braces, else None.

    "Last" means the box that opens last among those that close (``\\boxed{1} ... \\boxed{2}`` -> 2;
    an unclosed trailing ``\\boxed{`` is skipped). Escaped braces ``\\{ \\}`` do not count. One
    forward regex scan with a stack: linear even for ``\\boxed{`` repeated 100k times.
    """
    if not isinstance(text, str):
        return None
    starts = [p for p in (text.find("\\boxed"), text.find("\\fbox")) if p >= 0]
    if not starts:
        return None
    stack: list[tuple[int, bool]] = []
    best: tuple[int, int] | None = None
    for m in _BRACE_TOKENS.finditer(text, min(starts)):
        tok = m.group()
        if tok == "}":
            if stack:
                begin, is_box = stack.pop()
                if is_box and (best is None or begin > best[0]):
                    best = (begin, m.start())
        elif tok == "{":
            stack.append((m.end(), False))
        elif tok[-1] == "{" and len(tok) > 2:  # \boxed{ / \fbox{
            stack.append((m.end(), True))
        # else: an escaped brace, not structure
    return text[best[0]:best[1]].strip() if best else None


def boxed_contents(text: str, limit: int = 16) -> list[tuple[int, str]]:
    """``(start, content)`` of every outermost ``\\boxed{...}`` / ``\\fbox{...}`` with balanced
    braces, in order, at most the last ``limit`` of them (a box nested in a box is part of its
    content). Same single linear scan as :func:`last_boxed_content`."""
    if not isinstance(text, str):
        return []
    starts = [p for p in (text.find("\\boxed"), text.find("\\fbox")) if p >= 0]
    if not starts:
        return []
    stack: list[tuple[int, bool]] = []
    found: list[tuple[int, str]] = []
    for m in _BRACE_TOKENS.finditer(text, min(starts)):
        tok = m.group()
        if tok == "}":
            if stack:
                begin, is_box = stack.pop()
                if is_box and not any(b for _, b in stack):
                    found.append((begin, text[begin:m.start()].strip()))
                    if len(found) > 4 * limit:
                        del found[:-limit]
        elif tok == "{":
            stack.append((m.end(), False))
        elif tok[-1] == "{" and len(tok) > 2:
            stack.append((m.end(), True))
    return found[-limit:]


def tag_contents(text: str, tag: str, limit: int = 16) -> list[tuple[int, str]]:
    """``(end, content)`` of the last ``limit`` complete ``<tag>...</tag>`` blocks, last first (each
    closing tag paired with the nearest opening tag before it, as :func:`last_tag_content`)."""
    if not isinstance(text, str):
        return []
    close, opening = f"</{tag}>", f"<{tag}>"
    out: list[tuple[int, str]] = []
    end = len(text)
    while len(out) < limit:
        end = text.rfind(close, 0, end)
        if end < 0:
            break
        start = text.rfind(opening, 0, end)
        if start < 0:
            break
        out.append((end, text[start + len(opening):end].strip()))
        end = start
    return out
