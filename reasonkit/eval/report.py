"""Side-by-side reports of runs and adapters, with a paired test of each column against the first.

A *column* is one adapter of one run (``base``, or a LoRA name). The first column is the reference;
every other column gets the difference in accuracy on the items both answered (the same id *and* the
same content: :mod:`reasonkit.eval.run_compare`; runs that share no items get no test and a warning,
and the settings that differ between runs are named above the table), and an exact two-sided
**sign test** on the per-item differences (per-item accuracy = share of correct samples; items where
both agree are ties and drop out). With one sample per item this is exactly McNemar's exact test
(b = items only the reference got right, c = items only the other got right, p from Binomial(b + c, ½)).

The binomial tail is written by hand with exact integer arithmetic (``math.comb``): scipy is not a
dependency of reasonkit, and the test needs nothing more than that sum.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

from ..errors import ReasonkitError
from ..files import check_writable, write_text
from .run_compare import (completion_differences, fingerprints, reference_hashes, setting_differences,
                          shared_items)
from ..records import AdapterSummary, Row, Summary, as_rows
from .store import SAMPLES, SUMMARY, read_samples, read_summary


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided sign test p-value: P(|X - m/2| >= |wins - m/2|) for X ~ Binomial(m, 1/2)."""
    m = wins + losses
    if m == 0:
        return 1.0
    k = min(wins, losses)
    tail = Fraction(sum(math.comb(m, i) for i in range(k + 1)), 2 ** m)
    return float(min(Fraction(1), 2 * tail))


def item_scores(rows: Sequence[dict[str, Any]], verifier: str) -> dict[tuple[str, str], float]:
    """(benchmark, item_id) -> share of that item's samples the verifier marked correct."""
    acc: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in as_rows(rows):
        acc[(r.benchmark, str(r.item_id))].append(1 if r.correct(verifier) is True else 0)
    return {k: sum(v) / len(v) for k, v in acc.items()}


def paired(ref: dict[Any, float], other: dict[Any, float]) -> dict[str, Any]:
    shared = sorted(ref.keys() & other.keys())
    if not shared:
        return {"shared_items": 0, "diff": None, "wins": 0, "losses": 0, "p_value": None}
    diffs = [other[k] - ref[k] for k in shared]
    wins, losses = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    return {"shared_items": len(shared), "diff": sum(diffs) / len(diffs), "wins": wins, "losses": losses,
            "p_value": sign_test(wins, losses)}


@dataclass
class Column:
    label: str
    metrics: AdapterSummary  # the adapter's block of summary.json
    scores: dict[str, dict[Any, float]] = field(default_factory=dict)  # verifier -> item scores
    rows: list[Row] = field(default_factory=list)  # the adapter's scored rows
    run: str = ""  # the run it comes from
    adapter: tuple[str, str] = ("", "")  # (model, adapter path or name)

    def shared_with(self, other: "Column") -> tuple[set, set]:
        """Items both columns answered with the same content, and ids they share for other content."""
        return shared_items(fingerprints(self.rows), fingerprints(other.rows), reference_hashes(self.rows),
                            reference_hashes(other.rows))


def columns_from_run(path: str | Path, label: str | None = None) -> tuple[list[Column], dict[str, Any]]:
    run = Path(path)
    if not run.is_dir():
        raise ReasonkitError(f"{run}: not a run directory")
    if not (run / SUMMARY).exists():
        raise ReasonkitError(f"{run}: no {SUMMARY} (not a finished reasonkit eval run; rerun the eval "
                             "command to finish it, or use --rescore)")
    summary = read_summary(run / SUMMARY)
    if not isinstance(summary.get("adapters"), dict):
        raise ReasonkitError(f"{run / SUMMARY}: not a reasonkit eval summary (no 'adapters' mapping)")
    rows, _ = read_samples(run / SAMPLES)
    return columns_from_summary(summary, rows, run.name if label is None else label), summary


def columns_from_summary(summary: dict[str, Any], rows: Sequence[dict[str, Any]] | None,
                         label: str = "") -> list[Column]:
    summary = summary if isinstance(summary, Summary) else Summary(summary)
    verifiers = summary.verifier_names
    paths = dict(summary.config.get("adapters") or [])
    out = []
    for adapter, metrics in summary.adapters.items():
        # error rows (requests that failed) have no verdict: they are not items the column got wrong
        mine = [r for r in as_rows(rows or ()) if r.adapter == adapter and r.finish_reason != "error"]
        col = Column(f"{label}:{adapter}" if label else adapter, metrics, rows=mine, run=label,
                     adapter=(str(summary.model), paths.get(adapter, adapter)))
        if rows is not None:
            col.scores = {v: item_scores(mine, v) for v in verifiers}
        out.append(col)
    return out


def _fmt(x: Any, pct: bool = True) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{100 * x:.1f}" if pct else f"{x:.1f}"
    return str(x)


def table(columns: Sequence[Column], primary: str, verifiers: Sequence[str]) -> tuple[list[str], list[list[str]],
                                                                                       list[dict[str, Any]]]:
    """Rows of (metric, value per column) as text, and the paired tests (one per non-first column)."""
    rows: list[list[str]] = []

    def add(name: str, values: list[str]) -> None:
        if any(v != "-" for v in values):
            rows.append([name] + values)

    add("items", [_fmt(c.metrics.item_count) for c in columns])
    add("samples", [_fmt(c.metrics.samples) for c in columns])
    for v in verifiers:
        ms = [c.metrics.verifier(v) for c in columns]
        add(f"{v} accuracy %", [f"{_fmt(m.accuracy)} ± {_fmt(m.stderr)}" if m.accuracy is not None
                                else "-" for m in ms])
        if v == primary:
            ks = sorted({int(k.split("@")[1]) for m in ms for k in m if k.startswith("pass@")})
            for k in ks:
                if k > 1:
                    add(f"{v} pass@{k} %", [_fmt(m.pass_at(k)) for m in ms])
            for k in ks:
                if k > 1:
                    add(f"{v} maj@{k} %", [_fmt(m.maj_at(k)) for m in ms])
            add(f"{v} extraction failures %", [_fmt(m.extraction_failure_rate) for m in ms])
    add("stepwise: share of right steps %", [_fmt(c.metrics.stepwise_accuracy) for c in columns])
    add("format compliance %", [_fmt(c.metrics.format_compliance) for c in columns])
    add("truncated %", [_fmt(c.metrics.truncation_rate) for c in columns])
    add("mean completion tokens", [_fmt(c.metrics.mean_completion_tokens, pct=False) for c in columns])
    tests: list[dict[str, Any]] = []
    if len(columns) > 1 and all(c.scores for c in columns):
        ref = columns[0]
        diff_row, p_row = ["-"], ["-"]
        for c in columns[1:]:
            shared, clash = ref.shared_with(c)
            t = paired({k: v for k, v in ref.scores.get(primary, {}).items() if k in shared},
                       {k: v for k, v in c.scores.get(primary, {}).items() if k in shared})
            t.update({"reference": ref.label, "column": c.label, "verifier": primary,
                      "same_id_other_content": len(clash)})
            tests.append(t)
            if t["diff"] is None:
                diff_row.append("no shared items")
                p_row.append("-")
            else:
                diff_row.append(f"{100 * t['diff']:+.1f} (n={t['shared_items']}, +{t['wins']}/-{t['losses']})")
                p_row.append(f"{t['p_value']:.3g}")
        rows.append([f"{primary} Δ vs {ref.label} (pp, items)"] + diff_row)
        rows.append(["sign test p (exact; McNemar at n=1)"] + p_row)
    return ["metric"] + [c.label for c in columns], rows, tests


def print_table(header: list[str], rows: list[list[str]], title: str, warnings: Sequence[str] = (),
                notes: Sequence[str] = ()) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for note in notes:
        console.print(note, markup=False)
    t = Table(title=title)
    for i, h in enumerate(header):
        t.add_column(h, justify="left" if i == 0 else "right")
    for r in rows:
        t.add_row(*r)
    console.print(t)
    for w in warnings:
        console.print(f"[bold red]WARNING:[/] {w}")


def print_summary(summary: dict[str, Any], rows: Sequence[dict[str, Any]] | None = None) -> None:
    """The terminal table of one run: its adapters side by side (paired test when rows are given)."""
    summary = summary if isinstance(summary, Summary) else Summary(summary)
    cols = columns_from_summary(summary, rows)
    header, body, _ = table(cols, summary.primary_verifier, summary.verifier_names)
    b = summary.benchmark
    print_table(header, body, f"reasonkit eval: {b['name']} v{b['version']} — {summary.model}", summary.warnings)


def markdown(header: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in [header] + rows]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(lines) + "\n"


def report(runs: Sequence[str | Path], csv: str | None = None, md: str | None = None,
           verifier: str | None = None) -> tuple[list[str], list[list[str]], list[dict[str, Any]]]:
    if not runs:
        raise ReasonkitError("report needs at least one RUN directory")
    for out in (csv, md):  # before any work, so a typo in a path costs nothing
        if out:
            check_writable(Path(out))
    cols: list[Column] = []
    summaries = []
    run_labels = []
    names = [Path(r).name for r in runs]
    for run, name in zip(runs, names):
        label = name if names.count(name) == 1 else str(run)
        c, s = columns_from_run(run, label if len(runs) > 1 else "")
        cols.extend(c)
        summaries.append(s)
        run_labels.append(label if len(runs) > 1 else "")
    verifiers = list(dict.fromkeys(v for s in summaries for v in s.verifier_names))
    primary = verifier or summaries[0].primary_verifier
    if primary not in verifiers:
        raise ReasonkitError(f"--verifier {primary}: not scored in these runs (scored: {', '.join(verifiers)})")
    header, body, tests = table(cols, primary, verifiers)
    warnings = [w for s in summaries for w in s.warnings] + pairing_warnings(tests)
    notes = comparison_notes(cols, summaries, run_labels)
    print_table(header, body, "reasonkit report", warnings, notes)
    if csv:
        import csv as _csv
        import io

        buf = io.StringIO()
        _csv.writer(buf).writerows([header, *body])
        write_text(Path(csv), buf.getvalue())
    if md:
        write_text(Path(md), "".join(f"- {n}\n" for n in notes) + ("\n" if notes else "") + markdown(header, body))
    return header, body, tests


def pairing_warnings(tests: Sequence[dict[str, Any]]) -> list[str]:
    """A warning per paired test over no shared item, and per column whose item ids are the reference's
    for other content (another seed, other data): those items are not paired."""
    out = []
    for t in tests:
        if t["shared_items"] == 0:
            out.append(f"{t['column']} and {t['reference']} share no items (same benchmark, id and content): "
                       "no paired test")
        if t.get("same_id_other_content"):
            out.append(f"{t['same_id_other_content']} item id(s) of {t['column']} are in {t['reference']} with other "
                       "content (another seed or data): not paired")
    return out


def comparison_notes(cols: Sequence[Column], summaries: Sequence[dict[str, Any]], labels: Sequence[str]) -> list[str]:
    """Lines shown above a table of several runs: the settings that differ, and for columns of the same
    model and adapter in different runs, how many completions differ."""
    if len(summaries) < 2:
        return []
    diffs = setting_differences(summaries, labels)
    notes = ["settings that differ between the runs: " + "; ".join(diffs)] if diffs else []
    for i, a in enumerate(cols):
        for b in cols[i + 1:]:
            if a.run != b.run and a.adapter == b.adapter and a.rows and b.rows:
                differ, shared = completion_differences(a.rows, b.rows)
                notes.append(f"{a.label} vs {b.label} (same model and adapter): {differ} of {shared} completions "
                             "differ")
    return notes
