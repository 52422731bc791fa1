"""Typed records of an eval run: :class:`Row` (one line of ``samples.jsonl``) and :class:`Summary`
(``summary.json``), read one way by ``reasonkit report``, ``audit``, ``view`` and the benchmarks.

**Form.** Each record *is* the mapping that is on disk (a ``dict`` subclass) with typed, read-only
properties over the fixed schema, and accessors for the per-verifier parts (:meth:`Row.verdict`,
:meth:`Summary.metrics`). Why not a dataclass: a row has one set of columns per verifier
(``<verifier>.score/.correct/.extracted/.reason/.details``) next to the fixed ones, run directories
hold up to millions of rows that go to pandas (``pd.DataFrame(rows)``) and back to JSON, and rows
written by older versions lack newer columns. A dataclass would need a conversion both ways on every
row and a catch-all field for the verifier columns; a ``TypedDict`` cannot name the verifier columns
nor carry the accessors. The mapping form costs one shallow copy per row when read, changes nothing
on disk (older run directories load as they are) and keeps every ``row["..."]`` reader working.

Row columns: ``benchmark``, ``item_id``, ``model``, ``adapter``, ``sample`` (index within the item's
``n``), ``prompt``, ``completion``, ``num_tokens``, ``finish_reason`` (``stop`` / ``length`` /
``error``), ``reference`` (the item fields the verifiers read), ``item_fingerprint``; optional
``stop_string``, ``error`` (a failed request), ``served_model``/``base_model``/``root``/``owned_by``
(``--backend openai``); and, unless the request failed, the verdict columns of every verifier.

Summary keys: ``benchmark``, ``primary_verifier``, ``adapters`` (per adapter: ``items``, ``samples``,
``truncation_rate``, ``mean_completion_tokens``, ``verifiers`` -> per verifier the metrics of
:mod:`reasonkit.eval.metrics`), ``failures``, ``warnings``, ``config``, ``seed``, ``versions``,
``created``, ``model``, ``model_path``, ``data_source``, ``backend``, ``backend_choice``, ``timing``,
``resumed_groups`` / ``rescored``, ``run_dir``, ``server`` (a server's run).

Imports only the standard library (no torch, no pandas).
"""
from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import ReasonkitError
from .files import read_json, read_text

SAMPLES = "samples.jsonl"  # a run directory's rows, one JSON object a line
SUMMARY = "summary.json"  # its summary

BASE = "base"
VERDICT_FIELDS = ("score", "correct", "extracted", "reason", "details")
TRUNCATED_REASON = "truncated"


@dataclass(frozen=True)
class RowVerdict:
    """One verifier's verdict columns of a row (all None when the row has none: a failed request)."""
    score: float | None
    correct: bool | None
    extracted: str | None
    reason: str | None
    details: dict[str, Any]


class Row(dict):
    """One ``samples.jsonl`` row (see the module docstring)."""

    __slots__ = ()

    @property
    def benchmark(self) -> str:
        return self.get("benchmark", "")

    @property
    def item_id(self) -> str:
        return self["item_id"]

    @property
    def adapter(self) -> str:
        return self["adapter"]

    @property
    def sample(self) -> int:
        return self["sample"]

    @property
    def prompt(self) -> str:
        return self.get("prompt", "")

    @property
    def completion(self) -> str:
        return self.get("completion") or ""

    @property
    def finish_reason(self) -> str | None:
        return self.get("finish_reason")

    @property
    def num_tokens(self) -> int | None:
        return self.get("num_tokens")

    @property
    def truncated(self) -> bool:
        """The completion stopped at ``max_tokens``."""
        return self.get("finish_reason") == "length"

    @property
    def failed(self) -> bool:
        """A request that failed (saved, never scored, generated again by the next run)."""
        return self.get("finish_reason") == "error" or bool(self.get("error"))

    @property
    def error(self) -> str | None:
        return self.get("error")

    @property
    def reference(self) -> dict[str, Any]:
        return self.get("reference") or {}

    @property
    def item_fingerprint(self) -> str | None:
        return self.get("item_fingerprint")

    @property
    def verifiers(self) -> list[str]:
        """The verifiers this row has verdict columns for, in column order."""
        return [k[:-len(".correct")] for k in self if k.endswith(".correct")]

    def verdict(self, verifier: str) -> RowVerdict:
        """``verifier``'s verdict columns."""
        g = self.get
        return RowVerdict(g(f"{verifier}.score"), g(f"{verifier}.correct"), g(f"{verifier}.extracted"),
                          g(f"{verifier}.reason"), g(f"{verifier}.details") or {})

    def correct(self, verifier: str) -> bool | None:
        return self.get(f"{verifier}.correct")

    def reason(self, verifier: str) -> str | None:
        return self.get(f"{verifier}.reason")

    def score(self, verifier: str) -> float | None:
        return self.get(f"{verifier}.score")


def as_rows(mappings: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Rows of plain mappings (e.g. ``json.loads`` of samples.jsonl lines); Rows are kept as they are."""
    return [m if isinstance(m, Row) else Row(m) for m in mappings]


class VerifierMetrics(dict):
    """One verifier's metrics for one adapter (:func:`reasonkit.eval.metrics.verifier_metrics`)."""

    __slots__ = ()

    @property
    def accuracy(self) -> float | None:
        return self.get("accuracy")

    @property
    def stderr(self) -> float | None:
        return self.get("stderr")

    @property
    def mean_score(self) -> float | None:
        return self.get("mean_score")

    @property
    def could_not_score(self) -> float | None:
        return self.get("could_not_score")

    @property
    def extraction_failure_rate(self) -> float | None:
        return self.get("extraction_failure_rate")

    def pass_at(self, k: int) -> float | None:
        return self.get(f"pass@{k}")

    def maj_at(self, k: int) -> float | None:
        return self.get(f"maj@{k}")


class AdapterSummary(dict):
    """One adapter's block of summary.json."""

    __slots__ = ()

    @property
    def item_count(self) -> int | None:  # the "items" key (a property named items would hide dict.items)
        return self.get("items")

    @property
    def samples(self) -> int | None:
        return self.get("samples")

    @property
    def truncation_rate(self) -> float | None:
        return self.get("truncation_rate")

    @property
    def mean_completion_tokens(self) -> float | None:
        return self.get("mean_completion_tokens")

    @property
    def format_compliance(self) -> float | None:
        return self.get("format_compliance")

    @property
    def stepwise_accuracy(self) -> float | None:
        return self.get("stepwise_accuracy")

    @property
    def verifiers(self) -> dict[str, VerifierMetrics]:
        return {k: VerifierMetrics(v or {}) for k, v in (self.get("verifiers") or {}).items()}

    def verifier(self, name: str) -> VerifierMetrics:
        """``name``'s metrics ({} when the adapter has none for it)."""
        return VerifierMetrics((self.get("verifiers") or {}).get(name) or {})


class Summary(dict):
    """A run's summary.json (see the module docstring)."""

    __slots__ = ()

    @property
    def adapters(self) -> dict[str, AdapterSummary]:
        return {k: AdapterSummary(v or {}) for k, v in (self.get("adapters") or {}).items()}

    def adapter(self, name: str = BASE) -> AdapterSummary:
        return AdapterSummary((self.get("adapters") or {}).get(name) or {})

    @property
    def primary_verifier(self) -> str | None:
        return self.get("primary_verifier")

    @property
    def benchmark(self) -> dict[str, Any]:
        return self.get("benchmark") or {}

    @property
    def verifier_names(self) -> list[str]:
        """The run's verifiers, the primary first."""
        return list(self.benchmark.get("verifiers", []))

    def metrics(self, adapter: str = BASE, verifier: str | None = None) -> VerifierMetrics:
        """One adapter's metrics for ``verifier`` (default: the primary verifier)."""
        return self.adapter(adapter).verifier(verifier or self.primary_verifier or "")

    @property
    def config(self) -> dict[str, Any]:
        return self.get("config") or {}

    @property
    def timing(self) -> dict[str, Any]:
        return self.get("timing") or {}

    @property
    def versions(self) -> dict[str, Any]:
        return self.get("versions") or {}

    @property
    def failures(self) -> dict[str, Any]:
        return self.get("failures") or {}

    @property
    def warnings(self) -> list[str]:
        return self.get("warnings") or []

    @property
    def backend(self) -> str | None:
        return self.get("backend")

    @property
    def model(self) -> str | None:
        return self.get("model")


def read_samples(path: Path, strict: bool = False) -> tuple[list[Row], bool]:
    """Rows of a samples.jsonl (:class:`reasonkit.records.Row`) and whether a torn (unparseable) last
    line was dropped.

    A malformed line anywhere but at the end is corruption, not an interrupted write: it raises.
    """
    if not path.exists():
        return [], False
    lines = read_text(path).splitlines()
    rows, torn = [], False
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) and not strict:
                torn = True
                continue
            raise ReasonkitError(f"{path} line {i}: malformed JSON; the run directory is damaged "
                                 "(delete the line or start a new --output)") from None
        if not isinstance(row, dict):
            raise ReasonkitError(f"{path} line {i}: not a JSON object (not a reasonkit samples.jsonl row)")
        rows.append(Row(row))
    return rows, torn


def read_summary(path: Path) -> Summary:
    """A run's summary.json as a :class:`reasonkit.records.Summary` (one line when it is not an object)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise ReasonkitError(f"{path}: not a reasonkit eval summary (not a JSON object)")
    return Summary(data)
