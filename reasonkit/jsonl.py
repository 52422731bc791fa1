"""Reading JSONL text into objects, with one-line errors that name the source and the line.

Shared by ``reasonkit verify`` (its input file) and the eval harness (``--data FILE.jsonl``).
Written here rather than taken from a library: the JSON parsing is the standard library's; what
is ours is only the error wording (file and line, no traceback) that the CLI promises.
"""
from __future__ import annotations

import json
from typing import Any

from reasonkit.errors import ReasonkitError


def parse_jsonl(text: str, source: str) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line of ``text``.

    A line that is not JSON, or is JSON but not an object, raises :class:`ReasonkitError`
    ``"{source} line N: ..."``. Blank lines (a trailing newline, say) are not rows.
    """
    rows: list[tuple[int, dict[str, Any]]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ReasonkitError(f"{source} line {lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from None
        except (ValueError, RecursionError) as exc:  # an int literal past Python's digit limit; deep nesting
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
            raise ReasonkitError(f"{source} line {lineno}: unreadable JSON ({reason})") from None
        if not isinstance(row, dict):
            raise ReasonkitError(f"{source} line {lineno}: expected a JSON object, got {type(row).__name__}")
        rows.append((lineno, row))
    return rows
