"""User-facing errors: one clear line and exit code 2, never a traceback."""
from __future__ import annotations

import click


class ReasonkitError(click.ClickException):
    """Bad input from the user (file, row, flag). Click prints ``Error: <message>`` and exits 2."""

    exit_code = 2
