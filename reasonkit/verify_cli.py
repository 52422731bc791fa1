"""``reasonkit verify``: score a JSONL file of completions with a verifier and summarise it.

The whole input is read and validated before anything is scored, so a bad line costs no work and
never leaves a half-written output; the output file is written to a temporary file next to it and
renamed into place at the end (an existing file is replaced only by a complete one).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import click

from .errors import ReasonkitError
from .files import check_writable, read_text, to_json as _dump, write_lines, write_text
from .jsonl import parse_jsonl
from reasonkit.verifiers.batch import score_batch, summarize as batch_summary
from .tasks.registry import resolve_verifier

# Below this many rows the progress bar is not worth the flicker.
_PROGRESS_MIN_ROWS = 200


def read_rows(path: Path, fields: Sequence[str], verifier_name: str) -> list[dict[str, Any]]:
    """Read and validate every line; the first problem raises one clear line naming file and row.
    The path ``-`` reads standard input."""
    if str(path) == "-":
        path = Path("<stdin>")
        text = sys.stdin.read()
    else:
        text = read_text(path, expected="a JSONL file")

    rows: list[dict[str, Any]] = []
    needed = ("completion", *fields)
    for lineno, row in parse_jsonl(text, str(path)):
        where = f"{path} line {lineno}"
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


def score_file(verifier: Any, rows: list[dict[str, Any]], workers: int, progress: bool) -> list[Any]:
    """The verdicts for ``rows`` in order (a crash on one row is an ``error`` verdict for that row),
    with an optional rich progress bar on stderr."""
    if not progress:
        return score_batch(verifier, rows, workers=workers)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("scoring", total=len(rows))
        return score_batch(verifier, rows, workers=workers, on_progress=lambda n: bar.advance(task, n))


# --- summary ---------------------------------------------------------------------------------------

def summarize(verifier_name: str, verdicts: list[Any]) -> dict[str, Any]:
    """The batch summary (rows, scored, correct, errors, unscored, accuracy and mean score over the
    scored rows, reasons), plus accuracy over all rows (unscored and error rows count as not correct,
    as lm-evaluation-harness counts them) and, for gsm8k, the strict and flexible accuracies both."""
    summary: dict[str, Any] = {"verifier": verifier_name, **batch_summary(verdicts)}
    n = summary["rows"]
    summary["accuracy_all_rows"] = summary["correct"] / n if n else None
    # gsm8k verdicts carry both modes' verdicts in details["strict"] / details["flexible"]
    # (rows with unparseable gold have no per-mode verdicts; they are not scored in either mode)
    scored = [v for v in verdicts if v.scored]
    modes = [v.details.get(m) for v in scored for m in ("strict", "flexible")]
    if modes and all(isinstance(d, dict) and "correct" in d for d in modes):
        for mode in ("strict", "flexible"):
            right = sum(v.details[mode]["correct"] is True for v in scored)
            summary[f"accuracy_{mode}"] = right / len(scored) if scored else None
    return summary


def _fmt(x: Any) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def print_summary(summary: dict[str, Any], to_stderr: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=to_stderr)
    table = Table(title=f"reasonkit verify: {summary['verifier']}", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("rows", str(summary["rows"]))
    table.add_row("correct", str(summary["correct"]))
    if "accuracy_strict" in summary:
        table.add_row("accuracy strict (scored rows)", _fmt(summary["accuracy_strict"]))
        table.add_row("accuracy flexible (scored rows)", _fmt(summary["accuracy_flexible"]))
    else:
        table.add_row("accuracy (scored rows)", _fmt(summary["accuracy"]))
    table.add_row("accuracy (all rows)", _fmt(summary["accuracy_all_rows"]))
    table.add_row("mean score (scored rows)", _fmt(summary["mean_score"]))
    table.add_row("could not score", str(summary["unscored"]))
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
              help="Where to write the scored rows. Default: INPUT.verified.jsonl next to the input "
                   "(stdout when INPUT is '-'). "
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
    for countdown. Output rows are the input rows plus 'score', 'correct', 'extracted', 'reason'
    and 'details' (the verifier's evidence; for gsm8k both the strict and the flexible verdict).
    'correct' is null when the row could not be scored (e.g. unparseable gold) or the verifier
    crashed on it (reason 'verifier_error:<Type>', message in details); its score 0.0 is then a placeholder,
    left out of the mean. The summary table shows accuracy over the scored rows and over all
    rows (gsm8k: strict and flexible both), mean score, the could-not-score and error counts
    and the reasons.

    INPUT.jsonl '-' reads standard input (the output then defaults to stdout). The whole input
    is validated before scoring: a missing file, a malformed line or a missing
    field stops with one line naming the file and line, and exit code 2. The output is written
    to a temporary file and renamed into place, so an existing file is only ever replaced by a
    complete one.

    \b
    Examples:
      reasonkit verify gsm8k runs/samples.jsonl
      reasonkit verify countdown+0.5*format cd.jsonl -o cd.scored.jsonl --workers 2
      reasonkit verify math preds.jsonl -o - | jq .score
      cat preds.jsonl | reasonkit verify gsm8k_flexible - > scored.jsonl
    """
    verifier = resolve_verifier(verifier_name)
    from_stdin = str(input_path) == "-"
    out = output if output is not None else ("-" if from_stdin else str(default_output(input_path)))
    if out != "-":
        if not from_stdin and Path(out).resolve() == input_path.resolve():
            raise ReasonkitError(f"{out}: output would overwrite the input; pass another -o path")
        check_writable(Path(out))
    if summary_json is not None:
        check_writable(summary_json)
    rows = read_rows(input_path, verifier.fields, verifier_name)

    if progress is None:
        progress = len(rows) >= _PROGRESS_MIN_ROWS and sys.stderr.isatty()
    verdicts = score_file(verifier, rows, workers, progress)

    lines = [_dump({**row, **v.to_dict()}) for row, v in zip(rows, verdicts)]
    write_lines(lines, out)

    summary = summarize(verifier_name, verdicts)
    print_summary(summary, to_stderr=(out == "-"))
    if summary_json is not None:
        write_text(summary_json, _dump(summary, indent=2))
    if out != "-":
        click.echo(f"wrote {len(lines)} rows to {out}", err=False)
