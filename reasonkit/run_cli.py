"""``reasonkit audit RUN_DIR`` (the hack-audit table of a run) and ``reasonkit view RUN_DIR ... -o
report.html`` (the offline run viewer). Standard library + click + rich; no torch."""
from __future__ import annotations

from pathlib import Path

import click

from .audit import CLASSES
from .runs import audit_table, load_run
from .files import check_writable
from .view import write_report


@click.command("audit")
@click.argument("run_dir", type=click.Path(path_type=Path))
def audit_cmd(run_dir: Path) -> None:
    """The share of completions in each hack class for an eval run (samples.jsonl, one column per
    adapter) or a training run (completions.jsonl: first and last logged steps, and all)."""
    from rich.console import Console
    from rich.table import Table

    run = load_run(run_dir)
    cols, table, counts = audit_table(run)
    title = f"hack audit: {run.kind} run {run.path}" + (f" ({run.benchmark})" if run.benchmark else "")
    t = Table(title=title)
    t.add_column("class")
    for c in cols:
        t.add_column(f"{c}\n(n={counts[c]})", justify="right")
    for cls in CLASSES:
        t.add_row(cls, *(f"{table[c][cls]:.1%}" for c in cols))
    Console(width=max(100, 24 + 16 * len(cols))).print(t)
    if run.kind == "train" and run.metrics and any(k.startswith("audit/") for k in run.metrics[-1]):
        click.echo("per-step shares over every completion of a step: metrics.jsonl keys audit/<class>")


@click.command("view")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), default=Path("report.html"),
              show_default=True, help="the HTML file to write (one self-contained file, works offline)")
def view_cmd(run_dirs: tuple[Path, ...], output: Path) -> None:
    """Write one self-contained HTML report of eval and training runs: summary, curves, completions
    side by side with verdicts, filters and search."""
    check_writable(output)
    n = write_report(run_dirs, output)
    click.echo(f"wrote {output} ({n['runs']} runs, {n['items']} items, {n['samples']} samples)")
