"""``reasonkit verify``: score a JSONL file of completions with a verifier and summarise it.

The whole input is read and validated before anything is scored, so a bad line costs no work and
never leaves a half-written output; the output file is written to a temporary file next to it and
renamed into place at the end (an existing file is replaced only by a complete one).
"""
from __future__ import annotations

import importlib
import json
import math
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from .errors import ReasonkitError

# Verifier modules that register names when imported. A module that is not there yet (or fails
# for a reason of its own) must not break `reasonkit verify` for the others.
_VERIFIER_MODULES = ("countdown", "format", "gsm8k", "stepwise", "math", "compose", "rewards", "batch")
# Below this many rows the progress bar is not worth the flicker.
_PROGRESS_MIN_ROWS = 200
# Rows handed to the worker pool at once when --workers > 1 (the bar moves once per chunk).
_CHUNK = 2000


def load_verifier_modules() -> None:
    """Import every verifier module that exists so their names are in the registry."""
    for name in _VERIFIER_MODULES:
        module = f"reasonkit.verifiers.{name}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def resolve_verifier(name: str) -> Any:
    """A registered name, or a weighted composition such as ``countdown+0.5*format``.

    Unknown names raise :class:`ReasonkitError` with the registry's "did you mean" line.
    """
    from reasonkit.verifiers.base import UnknownNameError, get_verifier, verifier_names

    load_verifier_modules()
    try:
        if name in verifier_names() or not any(c in name for c in "+*"):
            return get_verifier(name)
        try:
            from reasonkit.verifiers.compose import compose
        except ModuleNotFoundError as exc:
            if exc.name != "reasonkit.verifiers.compose":
                raise
            raise ReasonkitError(f"verifier {name!r}: composition needs reasonkit.verifiers.compose, "
                                 "which is not installed") from None
        return compose(name)
    except UnknownNameError as exc:
        raise ReasonkitError(str(exc)) from None
    except ValueError as exc:  # a malformed composition string
        raise ReasonkitError(f"verifier {name!r}: {exc}") from None


def verifier_fields(verifier: Any) -> tuple[str, ...]:
    """The reference fields a verifier (spec or composite) reads from each row."""
    return tuple(getattr(verifier, "fields", ()) or ())


def read_rows(path: Path, fields: Sequence[str], verifier_name: str) -> list[dict[str, Any]]:
    """Read and validate every line; the first problem raises one clear line naming file and row."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReasonkitError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReasonkitError(f"{path}: is a directory, expected a JSONL file") from None
    except UnicodeDecodeError as exc:
        raise ReasonkitError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ReasonkitError(f"{path}: {exc.strerror or exc}") from None

    rows: list[dict[str, Any]] = []
    needed = ("completion", *fields)
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue  # blank lines (e.g. a trailing newline) are not rows
        where = f"{path} line {lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ReasonkitError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(row, dict):
            raise ReasonkitError(f"{where}: expected a JSON object, got {type(row).__name__}")
        for name in needed:
            if name not in row:
                raise ReasonkitError(f"{where}: missing field {name!r} needed by verifier {verifier_name!r}")
        if not isinstance(row["completion"], str):
            raise ReasonkitError(f"{where}: field 'completion' must be a string, "
                                 f"got {type(row['completion']).__name__}")
        rows.append(row)
    if not rows:
        raise ReasonkitError(f"{path}: no rows (the file is empty)")
    return rows


def _verdict_dict(verdict: Any) -> dict[str, Any]:
    if hasattr(verdict, "to_dict"):
        return verdict.to_dict()
    return dict(verdict)


def _score_one(verifier: Any, row: dict[str, Any], fields: Sequence[str]) -> Any:
    """Score one row in-process; a verifier crash becomes an ``error`` verdict, never reward 0."""
    from reasonkit.verifiers.base import ERROR, Verdict

    try:
        return verifier(row["completion"], **{f: row[f] for f in fields})
    except Exception as exc:  # noqa: BLE001 - one bad row must not stop the file
        return Verdict(score=math.nan, correct=None, extracted=None, reason=ERROR,
                       details={"error": f"{type(exc).__name__}: {exc}"})


def _score_rows(verifier: Any, rows: list[dict[str, Any]], fields: Sequence[str], workers: int,
                advance: Callable[[int], None]) -> list[Any]:
    if workers <= 1:
        out = []
        for row in rows:
            out.append(_score_one(verifier, row, fields))
            advance(1)
        return out
    from reasonkit.verifiers.batch import score_batch

    out = []
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start:start + _CHUNK]
        out.extend(score_batch(verifier, chunk, workers=workers))
        advance(len(chunk))
    return out


def score_file(verifier: Any, rows: list[dict[str, Any]], workers: int, progress: bool) -> list[dict[str, Any]]:
    """Return the verdicts (as dicts) for ``rows`` in order, with an optional rich progress bar."""
    fields = verifier_fields(verifier)
    if not progress:
        verdicts = _score_rows(verifier, rows, fields, workers, lambda n: None)
    else:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)

        with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("scoring", total=len(rows))
            verdicts = _score_rows(verifier, rows, fields, workers, lambda n: bar.advance(task, n))
    return [_verdict_dict(v) for v in verdicts]


def _json_default(obj: Any) -> Any:
    # Verdict details may carry Fractions, sympy objects or tuples: keep their text.
    return str(obj)


def _dump(row: dict[str, Any]) -> str:
    # NaN/inf are not JSON; write them as null so every output line parses with any reader.
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(row), ensure_ascii=False, default=_json_default)


def write_rows(lines: list[str], output: str) -> None:
    """Write to stdout (``-``) or atomically to a file: temp file in the same folder, then rename."""
    if output == "-":
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()
        return
    out = Path(output)
    if out.is_dir():
        raise ReasonkitError(f"{out}: is a directory, expected an output file path")
    if not out.parent.exists():
        raise ReasonkitError(f"{out}: folder {out.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --- summary ---------------------------------------------------------------------------------------

def _mode_correct(verdict: dict[str, Any], mode: str) -> bool | None:
    """The other gsm8k mode's verdict, looked up in the details under its name."""
    other = (verdict.get("details") or {}).get(mode)
    if isinstance(other, dict):
        return other.get("correct")
    return None


def summarize(verifier_name: str, verdicts: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts for the summary table: accuracy is correct / all rows (as lm-eval reports it)."""
    from reasonkit.verifiers.base import ERROR

    n = len(verdicts)
    scores = [v["score"] for v in verdicts
              if isinstance(v.get("score"), (int, float)) and math.isfinite(v["score"])]
    summary: dict[str, Any] = {
        "verifier": verifier_name,
        "rows": n,
        "correct": sum(v.get("correct") is True for v in verdicts),
        "accuracy": sum(v.get("correct") is True for v in verdicts) / n if n else 0.0,
        "mean_score": sum(scores) / len(scores) if scores else None,
        "could_not_score": sum(v.get("correct") is None and v.get("reason") != ERROR for v in verdicts),
        "errors": sum(v.get("reason") == ERROR for v in verdicts),
        "reasons": dict(Counter(str(v.get("reason")) for v in verdicts).most_common()),
    }
    # gsm8k: report strict and flexible both, as lm-evaluation-harness does. Each gsm8k verdict
    # carries the other mode's verdict in its details under the mode's name.
    if verifier_name in ("gsm8k", "gsm8k_flexible"):
        this, other = ("strict", "flexible") if verifier_name == "gsm8k" else ("flexible", "strict")
        other_correct = [_mode_correct(v, other) for v in verdicts]
        summary[f"accuracy_{this}"] = summary["accuracy"]
        if any(c is not None for c in other_correct):
            summary[f"accuracy_{other}"] = sum(c is True for c in other_correct) / n
    return summary


def print_summary(summary: dict[str, Any], to_stderr: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=to_stderr)
    table = Table(title=f"reasonkit verify: {summary['verifier']}", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("rows", str(summary["rows"]))
    table.add_row("correct", str(summary["correct"]))
    for mode in ("strict", "flexible"):
        if f"accuracy_{mode}" in summary:
            table.add_row(f"accuracy ({mode})", f"{summary[f'accuracy_{mode}']:.4f}")
    if "accuracy_strict" not in summary:
        table.add_row("accuracy", f"{summary['accuracy']:.4f}")
    mean = summary["mean_score"]
    table.add_row("mean score", "n/a" if mean is None else f"{mean:.4f}")
    table.add_row("could not score", str(summary["could_not_score"]))
    table.add_row("errors", str(summary["errors"]))
    for reason, count in summary["reasons"].items():
        table.add_row(f"  reason: {reason}", str(count))
    console.print(table)


def default_output(path: Path) -> Path:
    name = path.name[:-len(".jsonl")] if path.name.endswith(".jsonl") else path.name
    return path.with_name(f"{name}.verified.jsonl")


@click.command("verify", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("verifier_name", metavar="VERIFIER")
@click.argument("input_path", metavar="INPUT.jsonl", type=click.Path(path_type=Path, dir_okay=True))
@click.option("-o", "--output", metavar="OUTPUT.jsonl", default=None,
              help="Where to write the scored rows. Default: INPUT.verified.jsonl next to the input. "
                   "'-' writes JSONL to stdout (the summary then goes to stderr).")
@click.option("--workers", "-w", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes for scoring (1 scores in this process).")
@click.option("--progress/--no-progress", default=None,
              help="Show a progress bar (default: on for inputs of 200+ rows on a terminal).")
@click.option("--summary-json", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the summary (accuracy, mean score, reasons) as JSON to this file.")
def verify(verifier_name: str, input_path: Path, output: str | None, workers: int, progress: bool | None,
           summary_json: Path | None) -> None:
    """Score the completions in INPUT.jsonl with VERIFIER and print a summary table.

    VERIFIER is a registered name (countdown, format, format_soft, gsm8k, gsm8k_flexible,
    stepwise, math, ...) or a weighted sum such as 'countdown+0.5*format'.

    Each line of INPUT.jsonl is a JSON object with 'completion' (the model's text) plus the
    reference fields the verifier needs: 'answer' for gsm8k and math, 'numbers' and 'target'
    for countdown. Output rows are the input rows plus 'score', 'correct' (true/false, or null
    when the row could not be scored), 'extracted', 'reason' and 'details'; a non-finite score
    is written as null.

    The whole input is validated before scoring: a missing file, a malformed line or a missing
    field stops with one line naming the file and line, and exit code 2. The output is written
    to a temporary file and renamed into place, so an existing file is only ever replaced by a
    complete one.

    \b
    Examples:
      reasonkit verify gsm8k runs/samples.jsonl
      reasonkit verify countdown+0.5*format cd.jsonl -o cd.scored.jsonl --workers 2
      reasonkit verify math preds.jsonl -o - | jq .score
    """
    verifier = resolve_verifier(verifier_name)
    rows = read_rows(input_path, verifier_fields(verifier), verifier_name)
    out = output if output is not None else str(default_output(input_path))
    if out != "-" and Path(out).resolve() == input_path.resolve():
        raise ReasonkitError(f"{out}: output would overwrite the input; pass another -o path")

    if progress is None:
        progress = len(rows) >= _PROGRESS_MIN_ROWS and sys.stderr.isatty()
    verdicts = score_file(verifier, rows, workers, progress)

    added = ("score", "correct", "extracted", "reason", "details")
    lines = [_dump({**row, **{k: v.get(k) for k in added}}) for row, v in zip(rows, verdicts)]
    write_rows(lines, out)

    summary = summarize(verifier_name, verdicts)
    print_summary(summary, to_stderr=(out == "-"))
    if summary_json is not None:
        summary_json.write_text(json.dumps(summary, indent=2, default=_json_default) + "\n", encoding="utf-8")
    if out != "-":
        click.echo(f"wrote {len(lines)} rows to {out}", err=False)
