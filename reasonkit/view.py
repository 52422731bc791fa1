"""The run viewer: ``reasonkit view RUN_DIR [RUN_DIR ...] -o report.html``.

Writes ONE self-contained HTML file that works offline (no server, no CDN): the page template
``reasonkit/data/view.html`` (inline CSS and JS, plain SVG charts) with the runs' data embedded as
JSON in ``<script type="application/json" id="rk-data">`` (every ``<`` escaped as ``\\u003c`` so no
completion text can close the script element).

What the data holds (built here, drawn by the page's script):

* ``runs``: per run its kind, model, benchmark and summary rows (eval: one per adapter with the
  accuracy of each verifier from ``summary.json``, or from the samples when the run did not finish;
  training: the last logged ``heldout/*`` / ``eval/*`` values and the number of logged steps) and, for
  a training run, the curves per step (``reward``, ``rewards/*``, ``heldout/*``, ``eval/*``, ``audit/*``).
* ``cols``: one column per (eval run, adapter); ``items``: one per ``(benchmark, item_id)`` joined over
  all eval runs, with every column's samples (text, finish reason, each verifier's correct + reason,
  hack classes from :mod:`reasonkit.audit`). An item **disagrees** when some columns are right and some
  wrong on their primary verifier (a column is right on an item when most of its samples are).

The page renders lazily: ``PAGE`` items at a time (pagination), filters and search run over the
in-memory item list; the bound it was measured at is in ``benchmarks/results/view.md``.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence

from . import __version__
from .audit import CLASSES
from .files import write_text
from .records import Row, Summary, as_rows
from .runs import BASE, Run, eval_flags, load_run

PAGE = 50
_CURVE_PREFIXES = ("rewards/", "heldout/", "eval/", "audit/")


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v else None


def _eval_rows(run: Run) -> list[dict[str, Any]]:
    """Summary rows of an eval run: per adapter, n samples and accuracy per verifier."""
    summary = run.summary if isinstance(run.summary, Summary) else Summary(run.summary or {})
    samples = as_rows(run.samples)
    rows = []
    for a in run.adapters:
        mine = [r for r in samples if (r.get("adapter") or BASE) == a and not r.failed]
        acc = {}
        for v in run.verifiers:
            got = summary.metrics(a, v).accuracy
            if got is None:  # unfinished run: from the samples (scored rows only)
                scored = [r.correct(v) for r in mine if r.correct(v) is not None]
                got = sum(map(bool, scored)) / len(scored) if scored else None
            acc[v] = _num(got)
        rows.append({"adapter": a, "n": len(mine), "acc": acc})
    return rows


def _train_rows(run: Run) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The summary row (last held-out values) and the curves of a training run."""
    steps = [m.get("step") for m in run.metrics]
    keys: dict[str, None] = {}
    for m in run.metrics:
        for k, v in m.items():
            if (k == "reward" or k.startswith(_CURVE_PREFIXES)) and _num(v) is not None:
                keys.setdefault(k)
    series = {k: [_num(m.get(k)) for m in run.metrics] for k in keys}
    acc = {}
    for k in keys:
        if k.startswith(("heldout/", "eval/")):
            last = next((v for v in reversed(series[k]) if v is not None), None)
            acc[k] = last
    if "reward" in series:
        acc["reward"] = next((v for v in reversed(series["reward"]) if v is not None), None)
    row = {"adapter": "(training)", "n": len(run.metrics), "acc": acc}
    return [row], {"steps": steps, "series": series}


def _sample(row: dict[str, Any], verifiers: Sequence[str], hacks: set[str]) -> dict[str, Any]:
    row = row if isinstance(row, Row) else Row(row)
    v = []
    for name in verifiers:
        if f"{name}.correct" in row:
            c = row.correct(name)
            v.append([None if c is None else int(bool(c)), row.reason(name)])
        else:
            v.append(None)
    return {"t": str(row.get("completion") or row.get("error") or ""), "f": row.get("finish_reason"),
            "v": v, "h": [CLASSES.index(h) for h in CLASSES if h in hacks]}


def _reference(row: dict[str, Any]) -> str:
    ref = row.get("reference") or {}
    text = "; ".join(f"{k}: {v}" for k, v in ref.items()) if isinstance(ref, dict) else str(ref)
    return text if len(text) <= 200 else "…" + text[-200:]  # the gold answer is at the end (GSM8K: "#### 18")


def build_data(runs: Sequence[Run]) -> dict[str, Any]:
    """The JSON the page draws (see the module docstring)."""
    verifiers: dict[str, None] = {}
    for run in runs:
        if run.kind == "eval":
            for v in run.verifiers:
                verifiers.setdefault(v)
    vlist = list(verifiers)
    out_runs, cols, items, index = [], [], [], {}
    for ri, run in enumerate(runs):
        entry = {"name": run.name, "path": str(run.path), "kind": run.kind, "model": run.model,
                 "benchmark": run.benchmark, "primary": run.primary}
        if run.kind == "train":
            entry["rows"], entry["curves"] = _train_rows(run)
            out_runs.append(entry)
            continue
        entry["rows"] = _eval_rows(run)
        out_runs.append(entry)
        first = len(cols)
        for a in run.adapters:
            cols.append({"run": ri, "adapter": a, "label": a if len(runs) == 1 else f"{run.name} · {a}",
                         "primary": vlist.index(run.primary) if run.primary in vlist else None})
        colmap = {a: first + i for i, a in enumerate(run.adapters)}
        for row, hacks in zip(run.samples, eval_flags(run)):
            key = (row.get("benchmark") or run.benchmark, str(row.get("item_id")))
            if key not in index:
                index[key] = len(items)
                items.append({"id": key[1], "b": key[0], "p": str(row.get("prompt") or ""), "r": _reference(row),
                              "c": {}})
            item = items[index[key]]
            item["c"].setdefault(colmap[row.get("adapter") or BASE], []).append(_sample(row, vlist, hacks))
    for item in items:
        item["c"] = [item["c"].get(i, []) for i in range(len(cols))]
        verdicts = []
        for ci, samples in enumerate(item["c"]):
            p = cols[ci]["primary"]
            scored = [s["v"][p][0] for s in samples if p is not None and s["v"][p] and s["v"][p][0] is not None]
            if scored:
                verdicts.append(2 * sum(scored) > len(scored))
        item["d"] = int(len(set(verdicts)) > 1)
    return {"reasonkit": __version__, "page": PAGE, "verifiers": vlist, "classes": list(CLASSES),
            "runs": out_runs, "cols": cols, "items": items}


def render(data: dict[str, Any]) -> str:
    """The HTML page with ``data`` embedded."""
    template = resources.files("reasonkit").joinpath("data/view.html").read_text(encoding="utf-8")
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return template.replace("__RK_DATA__", blob, 1)


def write_report(run_dirs: Iterable[str | Path], output: str | Path) -> dict[str, int]:
    """Load the runs, write the report; returns counts (runs, items, samples)."""
    runs = [load_run(p) for p in run_dirs]
    data = build_data(runs)
    write_text(Path(output), render(data))
    return {"runs": len(runs), "items": len(data["items"]),
            "samples": sum(len(s) for it in data["items"] for s in it["c"])}
