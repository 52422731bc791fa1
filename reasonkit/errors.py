"""User-facing errors: one clear line and exit code 2, never a traceback.

``did_you_mean`` words the refusal of an unknown name (with the closest known one, if any);
``check_keys`` refuses an unknown key of a config mapping with it. This is the lowest layer of the
package (standard library and click only): everything may import it, it imports nothing of reasonkit.
"""
from __future__ import annotations

import difflib

import click


class ReasonkitError(click.ClickException):
    """Bad input from the user (file, row, flag). Click prints ``Error: <message>`` and exits 2."""

    exit_code = 2


def did_you_mean(name: str, choices, kind: str) -> str:
    """``"unknown <kind> 'x'; did you mean 'y'? (choose from: a, b, ...)"``: the suggestion only when a
    choice is close (``difflib`` ratio >= 0.5)."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}{hint} (choose from: {', '.join(sorted(choices))})"


def check_keys(keys, known, where: str, error: type[ReasonkitError] = ReasonkitError) -> None:
    """Raise ``error("<where>: unknown key 'x'; did you mean 'y'? (choose from: ...)")`` for the first
    of ``keys`` not in ``known``."""
    known = list(known)
    for key in keys:
        if key not in known:
            raise error(f"{where}: {did_you_mean(str(key), known, 'key')}")
