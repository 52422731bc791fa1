"""Reading and writing the files a user names, with one-line errors (``ReasonkitError``, exit 2).

Writes are atomic: a temp file in the target's folder, flushed and fsynced, then renamed over the
target, so a crash or a bad value never leaves half a file and never destroys what was there.
Used by ``reasonkit verify`` (input, output, summary), the eval run directory (``config.json``,
``summary.json``, rewritten ``samples.jsonl``), ``reasonkit report --csv/--markdown`` and
``reasonkit generate --file``.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Iterable

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
