"""Reading and writing the files a user names, with one-line errors (``ReasonkitError``, exit 2).

Writes are atomic: a temp file in the target's folder, flushed and fsynced, then renamed over the
target, so a crash or a bad value never leaves half a file and never destroys what was there.
Used by ``reasonkit verify`` (input, output, summary), the eval run directory (``config.json``,
``summary.json``, rewritten ``samples.jsonl``), ``reasonkit report --csv/--markdown`` and
``reasonkit generate --file``.

JSON: :func:`to_json` is the one NaN-safe encoder (NaN / inf become ``null`` so every line parses
with any reader; objects JSON has no type for, e.g. Fractions or sympy values, are written as their
text); :func:`read_json` reads a JSON file with the same one-line errors as :func:`read_text`.
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

from reasonkit.errors import ReasonkitError


def read_text(path: Path, label: str = "", expected: str = "a file") -> str:
    """The UTF-8 text of ``path``; ``label`` (e.g. ``"--data "``) prefixes the error line and
    ``expected`` names what a directory was taken for."""
    where = f"{label}{path}"
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReasonkitError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise ReasonkitError(f"{where}: is a directory, expected {expected}") from None
    except UnicodeDecodeError as exc:
        raise ReasonkitError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ReasonkitError(f"{where}: {exc.strerror or exc}") from None


def check_writable(out: Path) -> None:
    """Refuse up front (before any work) an output that is a directory or whose folder is missing
    or not writable (checked again when writing)."""
    try:
        if out.is_dir():
            raise ReasonkitError(f"{out}: is a directory, expected an output file path")
        folder_ok = out.parent.is_dir()
    except OSError as exc:
        raise ReasonkitError(f"{out}: {exc.strerror or exc}") from None
    if not folder_ok:
        raise ReasonkitError(f"{out}: folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise ReasonkitError(f"{out}: folder {out.parent} is not writable")


def write_lines(lines: Iterable[str], output: str | Path) -> None:
    """Write lines to stdout (``-``) or atomically to a file."""
    if str(output) == "-":
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()
        return
    out = Path(output)
    check_writable(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            for line in lines:
                fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # disk full, rename refused, ...
            raise ReasonkitError(f"{out}: {exc.strerror or exc}") from None
        raise


def write_text(out: Path, text: str) -> None:
    """Atomically write ``text`` (one trailing newline) to ``out``."""
    write_lines([text.rstrip("\n")], out)


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def to_json(obj: Any, indent: int | None = None) -> str:
    """``obj`` as JSON text: NaN / inf as ``null``, unknown types as their ``str``, UTF-8 kept."""
    return json.dumps(_finite(obj), indent=indent, ensure_ascii=False, default=str)


def write_json(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented NaN-safe JSON."""
    write_text(Path(path), to_json(obj, indent=2))


def read_json(path: Path, label: str = "") -> Any:
    """The parsed JSON of ``path``; a missing file, a directory, non-UTF-8 bytes or malformed JSON
    is one line naming the file."""
    text = read_text(Path(path), label, "a JSON file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReasonkitError(f"{label}{path}: malformed JSON ({exc.msg} at line {exc.lineno})") from None
