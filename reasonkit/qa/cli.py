"""``reasonkit qa``: check a grader before trusting its number (metamorphic and differential tests).

``reasonkit qa metamorphic`` applies the rewrites of :mod:`.rewrites` to a gold corpus or a run's
``samples.jsonl`` and prints, per rewrite and verifier, how many verdicts behaved as they must
(:mod:`.metamorphic`), then a few failing examples. ``reasonkit qa differential`` scores the same
completions with two graders and lists every disagreement (:mod:`.differential`). Both exit 0
whatever they find; bad input (a missing file, an unknown verifier / corpus / rewrite) is one line
and exit code 2. ``--json OUT`` writes the whole report, every listed example included.
"""
from __future__ import annotations

import sys
import unicodedata
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import click

from ..errors import ReasonkitError
from ..files import check_writable, to_json, write_text
from .corpora import load_corpus, load_samples
from .metamorphic import run_metamorphic
from .differential import run_differential

_CONTEXT = {"help_option_names": ["-h", "--help"]}
_TAIL = 240  # characters of a completion shown for an example


@click.group("qa", context_settings=_CONTEXT)
def qa() -> None:
    """Verifier QA: metamorphic and differential tests of graders."""


def _corpus(corpus: str | None, samples: Path | None, limit: int | None, seed: int):
    if corpus is not None and samples is not None:
        raise ReasonkitError("give --corpus or --samples, not both")
    if samples is not None:
        return load_samples(samples, limit, seed)
    return load_corpus(corpus or "gsm8k", 100 if limit is None else limit, seed)


@contextmanager
def _progress(show: bool | None, label: str) -> Iterator[Any]:
    """A callback ``(advance, total)`` drawing a rich progress bar on stderr (None when hidden)."""
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def advance(n: int, total: int) -> None:
            bar.update(task, total=total, advance=n)

        yield advance


def _visible(text: Any) -> str:
    """Text with invisible format characters shown as ``\\uXXXX`` and a long text cut to its tail."""
    s = str(text)
    s = "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) == "Cf" else c for c in s)
    return s if len(s) <= _TAIL else "…" + s[-_TAIL:]


def _verdict(v: dict[str, Any]) -> str:
    word = {True: "correct", False: "not correct", None: "not scored"}[v["correct"]]
    return f"{word} (extracted {_visible(v['extracted'])!s}, reason {v['reason']})"


def _share(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


_options = [
    click.option("--corpus", default=None, metavar="NAME",
                 help="Gold corpus: gsm8k, math500, countdown or rg:TASK (default gsm8k)."),
    click.option("--samples", type=click.Path(path_type=Path), default=None, metavar="RUN/samples.jsonl",
                 help="A run's samples.jsonl (or its run directory) instead of a gold corpus."),
    click.option("--limit", type=click.IntRange(min=1), default=None,
                 help="Items drawn (seeded) from the corpus or rows from the samples (default: 100 items of a "
                      "corpus, every row of a samples file)."),
    click.option("--seed", type=int, default=0, show_default=True, help="Seed for item choice and rewrite templates."),
    click.option("--json", "json_out", type=click.Path(path_type=Path, dir_okay=False), default=None,
                 metavar="OUT.json", help="Also write the full report as JSON."),
    click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal)."),
]


def _with_options(fn):
    for option in reversed(_options):
        fn = option(fn)
    return fn


@qa.command("metamorphic", context_settings=_CONTEXT)
@click.option("--verifier", "-v", "verifiers", multiple=True, metavar="NAME",
              help="A verifier name or expression; repeat for several (default: the ones that fit the corpus).")
@click.option("--rewrite", "rewrites", multiple=True, metavar="NAME", help="Only these rewrites (repeatable).")
@click.option("--examples", type=click.IntRange(min=0), default=3, show_default=True,
              help="Failing examples kept per rewrite and verifier (one of each is printed).")
@_with_options
def metamorphic_cmd(verifiers: tuple[str, ...], rewrites: tuple[str, ...], examples: int, corpus: str | None,
                    samples: Path | None, limit: int | None, seed: int, json_out: Path | None,
                    progress: bool | None) -> None:
    """Apply answer-preserving and answer-breaking rewrites and check each verdict moves as it must.

    Preserving rewrites (Markdown bold and headers, \\boxed{}, #### N, answer tags, sign-offs, a
    tentative answer inside a closed think block, invisible characters, thousands separators, units,
    a restatement) must leave the verdict unchanged; breaking ones (a hedge, box stuffing, a second
    different claim, empty reasoning) must turn a correct completion into a not-correct one. On a
    gold corpus the "(base)" row checks that the synthesised correct completions are judged correct.

    \b
    Examples:
      reasonkit qa metamorphic --verifier gsm8k --corpus gsm8k --limit 50
      reasonkit qa metamorphic -v math --corpus math500 --json qa.json
      reasonkit qa metamorphic --samples runs/qwen/samples.jsonl
    """
    if json_out is not None:
        check_writable(json_out)
    data = _corpus(corpus, samples, limit, seed)
    names = verifiers or data.verifiers
    if not names:
        raise ReasonkitError(f"{data.name}: no default verifier fits it; name one with --verifier")
    with _progress(progress, "rewriting and scoring") as bar:
        report = run_metamorphic(data, names, rewrites or None, seed, examples, on_progress=bar)
    _print_metamorphic(report)
    if json_out is not None:
        write_text(json_out, to_json(report.to_dict(), indent=2))
        click.echo(f"wrote the report to {json_out}")


def _print_metamorphic(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    skipped = "".join(f", {n} skipped ({why})" for why, n in report.skipped.items())
    table = Table(title="reasonkit qa metamorphic",
                  caption=f"{report.corpus}: {report.cases} cases, seed {report.seed}{skipped}")
    for col, justify in (("rewrite", "left"), ("must be", "left"), ("verifier", "left"), ("n", "right"),
                         ("behaved", "right"), ("share", "right"), ("failures", "right")):
        table.add_column(col, justify=justify, no_wrap=col in ("rewrite", "must be", "verifier"))
    for c in report.cells:
        style = "green" if c.n and c.behaved == c.n else ("red" if c.n else "dim")
        table.add_row(c.rewrite, c.expectation, c.verifier, str(c.n), str(c.behaved),
                      Text(_share(c.share), style=style), str(c.n - c.behaved))
    console.print(table)
    failing = [c for c in report.cells if c.failures]
    if not failing:
        console.print("Every verdict behaved as it must.")
        return
    console.print(Text("Failing examples (one per rewrite and verifier):", style="bold"))
    for c in failing:
        ex = c.failures[0]
        console.print(Text(f"- {c.rewrite} x {c.verifier}: item {ex['item']} ({ex['style']}), gold {ex['gold']}; "
                           f"must be {c.expectation}; was {_verdict(ex['base'])}, now {_verdict(ex['got'])}"))
        console.print(Text("    " + _visible(ex["completion"]).replace("\n", "\n    "), style="dim"))


@qa.command("differential", context_settings=_CONTEXT)
@click.option("--a", "grader_a", required=True, metavar="GRADER",
              help="First grader: a verifier name or expression, math-verify, or rg-native:TASK.")
@click.option("--b", "grader_b", required=True, metavar="GRADER", help="Second grader (as --a).")
@click.option("--show", type=click.IntRange(min=0), default=10, show_default=True,
              help="Disagreements printed (the JSON report keeps them all).")
@_with_options
def differential_cmd(grader_a: str, grader_b: str, show: int, corpus: str | None, samples: Path | None,
                     limit: int | None, seed: int, json_out: Path | None, progress: bool | None) -> None:
    """Score the same completions with two graders and list every disagreement with its text.

    On a gold corpus the completions are the synthesised correct ones and all their rewrites; on
    --samples, the run's rows.

    \b
    Examples:
      reasonkit qa differential --a gsm8k --b math --corpus gsm8k --limit 50
      reasonkit qa differential --a math --b math-verify --corpus math500
      reasonkit qa differential --a rg:chain_sum --b rg-native:chain_sum --corpus rg:chain_sum
    """
    if json_out is not None:
        check_writable(json_out)
    data = _corpus(corpus, samples, limit, seed)
    with _progress(progress, "scoring with both graders") as bar:
        report = run_differential(data, grader_a, grader_b, seed, on_progress=bar)
    _print_differential(report, show)
    if json_out is not None:
        write_text(json_out, to_json(report.to_dict(), indent=2))
        click.echo(f"wrote the report to {json_out}")


def _print_differential(report: Any, show: int) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    console.print(Text(f"reasonkit qa differential: A={report.a}, B={report.b} on {report.corpus} "
                       f"({report.completions} completions)", style="bold"))
    table = Table()
    table.add_column("verdicts")
    table.add_column("completions", justify="right")
    for key, n in report.counts.items():
        table.add_row(key, Text(str(n), style="red" if key == "disagreements" and n else ""))
    console.print(table)
    for d in report.disagreements[:show]:
        console.print(Text(f"- item {d['item']} ({d['source']}): A {_verdict(d['a'])}; B {_verdict(d['b'])}"))
        console.print(Text("    " + _visible(d["completion"]).replace("\n", "\n    "), style="dim"))
    if len(report.disagreements) > show:
        console.print(f"... and {len(report.disagreements) - show} more (see --json)")
