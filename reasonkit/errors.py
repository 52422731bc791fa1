"""User-facing errors: one clear line and exit code 2, never a traceback.

``check_keys`` refuses an unknown key of a config mapping with "did you mean".
"""
from __future__ import annotations

import click


class ReasonkitError(click.ClickException):
    """Bad input from the user (file, row, flag). Click prints ``Error: <message>`` and exits 2."""

    exit_code = 2


def check_keys(keys, known, where: str, error: type[ReasonkitError] = ReasonkitError) -> None:
    """Raise ``error("<where>: unknown key 'x'; did you mean 'y'? (choose from: ...)")`` for the first
    of ``keys`` not in ``known``."""
    from reasonkit.verifiers.base import did_you_mean  # standard library only

    known = list(known)
    for key in keys:
        if key not in known:
            raise error(f"{where}: {did_you_mean(str(key), known, 'key')}")
