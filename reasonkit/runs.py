"""Reading a run directory for the audit and the viewer: an eval run or a training run.

* An **eval run** (``reasonkit eval --output DIR``, also a trainer's ``OUTPUT/eval/step-N``) has
  ``samples.jsonl`` (one row per completion with ``<verifier>.score/.correct/.reason``) and, when it
  finished, ``summary.json`` (accuracy per adapter and verifier) and ``config.json``.
* A **training run** (``reasonkit train --output DIR``) has ``metrics.jsonl`` (one row per logged step:
  reward, ``rewards/*``, ``heldout/*``, ``audit/*``, ...), ``completions.jsonl`` (a few completions every
  ``log_completions_steps``, with ``rewards/<component>`` scores) and ``config.yaml``.

A path that does not exist, is a file, or is a directory with neither layout is one line, exit 2
(:class:`reasonkit.errors.ReasonkitError`). Rows of a resumed training run are de-duplicated by step
(the last one wins). Pure Python; PyYAML is used for ``config.yaml`` only when installed.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .audit import EARLY_STEPS, Record, flags, mean_length, shares, uses_tokens
from .errors import ReasonkitError
from .files import read_json, read_text
from .records import BASE, SAMPLES, SUMMARY, Row, Summary, read_samples, read_summary

_VERDICT_KEY = re.compile(r"^(?P<name>[^.]+)\.(?P<field>score|correct|reason)$")


@dataclass
class Run:
    path: Path
    kind: str                                        # "eval" | "train"
    name: str
    model: str | None = None
    benchmark: str | None = None
    primary: str | None = None
    verifiers: list[str] = field(default_factory=list)
    summary: Summary = field(default_factory=Summary)   # eval: summary.json (may be empty)
    samples: list[Row] = field(default_factory=list)  # eval: samples.jsonl rows
    metrics: list[dict[str, Any]] = field(default_factory=list)  # train: metrics.jsonl rows, by step
    completions: list[dict[str, Any]] = field(default_factory=list)  # train: completions.jsonl rows
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def adapters(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.samples:
            seen.setdefault(r.get("adapter") or BASE)
        return list(seen)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a torn last line (a run killed mid-write) is dropped, any other bad line
    is one error naming the file and line."""
    lines = read_text(path).splitlines()
    rows = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines):
                continue
            raise ReasonkitError(f"{path} line {i}: malformed JSON") from None
        if not isinstance(row, dict):
            raise ReasonkitError(f"{path} line {i}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


def _yaml(path: Path) -> dict[str, Any]:
    try:
        import yaml
    except ImportError:
        return {}
    try:
        data = yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        raise ReasonkitError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return data if isinstance(data, dict) else {}


def verdict_names(rows: list[dict[str, Any]]) -> list[str]:
    """Verifier names found as ``<name>.correct`` keys, in first-seen order."""
    seen: dict[str, None] = {}
    for r in rows[:200]:
        for k in r:
            m = _VERDICT_KEY.match(k)
            if m and m["field"] == "correct":
                seen.setdefault(m["name"])
    return list(seen)


def load_run(path: str | Path) -> Run:
    """The run at ``path``, eval or training (see the module docstring)."""
    p = Path(path)
    if not p.exists():
        raise ReasonkitError(f"{p}: no such directory")
    if not p.is_dir():
        raise ReasonkitError(f"{p}: is a file, expected a run directory")
    if (p / SAMPLES).is_file():
        summary = read_summary(p / SUMMARY) if (p / SUMMARY).is_file() else Summary()
        config = read_json(p / "config.json") if (p / "config.json").is_file() else {}
        samples, _ = read_samples(p / SAMPLES)
        verifiers = summary.verifier_names or verdict_names(samples)
        return Run(p, "eval", p.name, model=summary.model or next((r.get("model") for r in samples), None),
                   benchmark=summary.benchmark.get("name") or next((r.get("benchmark") for r in samples), None),
                   primary=summary.primary_verifier or (verifiers[0] if verifiers else None),
                   verifiers=verifiers, summary=summary, samples=samples,
                   config=config if isinstance(config, dict) else {})
    metrics_path, comps_path = p / "metrics.jsonl", p / "completions.jsonl"
    if metrics_path.is_file() or comps_path.is_file():
        by_step: dict[Any, dict[str, Any]] = {}
        for row in _jsonl(metrics_path) if metrics_path.is_file() else []:
            by_step[row.get("step")] = row
        metrics = sorted(by_step.values(), key=lambda r: r.get("step") or 0)
        comps = _jsonl(comps_path) if comps_path.is_file() else []
        config = _yaml(p / "config.yaml") if (p / "config.yaml").is_file() else {}
        names = [k.split("/", 1)[1] for k in (comps[0] if comps else {}) if k.startswith("rewards/")]
        return Run(p, "train", p.name, model=config.get("model") or "default (embedded)",
                   benchmark=config.get("dataset"), verifiers=names, metrics=metrics, completions=comps,
                   config=config)
    if (p / "config.json").is_file():
        raise ReasonkitError(f"{p}: an eval run with no samples.jsonl yet (nothing generated so far)")
    raise ReasonkitError(f"{p}: not a reasonkit run directory (no samples.jsonl, metrics.jsonl or "
                         "completions.jsonl)")


# ------------------------------------------------------------------------------------------- records

def sample_record(row: dict[str, Any], verifiers: list[str], primary: str | None) -> Record:
    """An eval ``samples.jsonl`` row as an audit record (group: adapter and item; the text as scored:
    the completion plus the stop string that ended it, e.g. ``</answer>``)."""
    row = row if isinstance(row, Row) else Row(row)
    verdicts = {}
    for v in verifiers:
        if f"{v}.correct" in row:
            got = row.verdict(v)
            verdicts[v] = {"score": got.score, "correct": got.correct, "reason": got.reason}
    text = row.completion + str(row.get("stop_string") or "")
    return Record(text=text, prompt=str(row.prompt or ""), verdicts=verdicts,
                  finish_reason=row.finish_reason, num_tokens=row.num_tokens,
                  group=(row.get("adapter") or BASE, row.get("item_id")), primary=primary)


def completion_record(row: dict[str, Any]) -> Record:
    """A training ``completions.jsonl`` row as an audit record (group: step and group index)."""
    verdicts = {k.split("/", 1)[1]: {"score": v} for k, v in row.items() if k.startswith("rewards/")}
    group = (row.get("step"), row["group"]) if row.get("group") is not None else None
    return Record(text=str(row.get("completion") or ""), prompt=str(row.get("prompt") or ""), verdicts=verdicts,
                  finish_reason=row.get("finish_reason"), num_tokens=row.get("num_tokens"), group=group)


def is_error(row: dict[str, Any]) -> bool:
    return row.get("finish_reason") == "error" or bool(row.get("error"))


def eval_flags(run: Run) -> list[set[str]]:
    """The hack classes of every sample row of an eval run (error rows: none). Length collapse is
    measured against the base model's mean length (no reference for the base model itself)."""
    records = [sample_record(r, run.verifiers, run.primary) for r in run.samples]
    ok = [i for i, r in enumerate(run.samples) if not is_error(r)]
    tokens = uses_tokens(records[i] for i in ok)
    base_mean = mean_length([records[i] for i in ok if run.samples[i].get("adapter", BASE) == BASE], tokens)
    out: list[set[str]] = [set() for _ in records]
    for adapter in run.adapters:
        idx = [i for i in ok if (run.samples[i].get("adapter") or BASE) == adapter]
        ref = None if adapter == BASE else base_mean
        for i, f in zip(idx, flags([records[i] for i in idx], ref, tokens)):
            out[i] = f
    return out


def train_flags(run: Run) -> list[set[str]]:
    """The hack classes of every logged training completion; the length-collapse reference is the mean
    over the first ``EARLY_STEPS`` logged steps."""
    records = [completion_record(r) for r in run.completions]
    tokens = uses_tokens(records)
    steps = sorted({r.get("step") or 0 for r in run.completions})[:EARLY_STEPS]
    ref = mean_length([rec for rec, r in zip(records, run.completions) if (r.get("step") or 0) in steps], tokens)
    return flags(records, ref, tokens)


def audit_table(run: Run) -> tuple[list[str], dict[str, dict[str, float]], dict[str, int]]:
    """Columns, ``{column: {class: share}}`` and ``{column: completions}`` for ``reasonkit audit``: one
    column per adapter (eval), or the first and last ``EARLY_STEPS`` logged steps and all (train)."""
    if run.kind == "eval":
        fl = eval_flags(run)
        cols = run.adapters
        groups = {a: [f for f, r in zip(fl, run.samples) if (r.get("adapter") or BASE) == a and not is_error(r)]
                  for a in cols}
    else:
        fl = train_flags(run)
        steps = sorted({r.get("step") or 0 for r in run.completions})
        early, late = steps[:EARLY_STEPS], steps[-EARLY_STEPS:]

        def label(s: list[int]) -> str:
            return f"step {s[0]}" if len(s) == 1 else f"steps {s[0]}-{s[-1]}"

        groups = {}
        if steps:
            groups[label(early)] = [f for f, r in zip(fl, run.completions) if (r.get("step") or 0) in early]
            groups[label(late)] = [f for f, r in zip(fl, run.completions) if (r.get("step") or 0) in late]
        groups["all"] = fl
        cols = list(groups)
    return cols, {c: shares(groups[c]) for c in cols}, {c: len(groups[c]) for c in cols}
