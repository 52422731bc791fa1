"""What ``reasonkit report`` checks before it puts runs side by side (issue 23, item 5).

* **Which items pair.** An item is ``(benchmark, item_id)`` *and* its content: two columns pair an
  item only when both carry it with the same fingerprint (:func:`reasonkit.eval.identity.row_fingerprint`:
  the item's content hash saved with each row, or for rows written before there was one, a hash of the
  saved reference fields; a content hash is compared with a content hash, else the reference hashes
  are compared). Countdown runs made with different seeds have ids 0..n-1 that are different tasks:
  they share no items, and the report says so instead of testing them against each other.
* **Which settings differ.** :func:`setting_differences` lists, for the settings in
  :data:`COMPARED` (backend, dtype, max tokens, template, temperature, ...), the runs' values when
  they are not all equal, so a table of a bf16 server run next to an fp32 in-process run says it.
* **How many completions differ.** For columns of the same model and adapter (same path) in different
  runs, :func:`completion_differences` counts the shared (item, sample) pairs whose completion text
  differs: a measure of how much the settings moved the output.
"""
from __future__ import annotations

from typing import Any, Sequence

from .identity import row_fingerprint

# (label, how to read it from a summary). The resolved backend first, then what the config says.
COMPARED: tuple[tuple[str, Any], ...] = (
    ("model", lambda s: s.get("model")),
    ("backend", lambda s: s.get("backend") or (s.get("config") or {}).get("resolved_backend")
     or (s.get("config") or {}).get("backend")),
    ("dtype", lambda s: ((s.get("config") or {}).get("backend_options") or {}).get("dtype", "auto")),
    ("engine options", lambda s: (s.get("config") or {}).get("engine_options")),
    ("benchmark version", lambda s: (s.get("benchmark") or {}).get("version")),
    ("data", lambda s: s.get("data_source") or (s.get("config") or {}).get("data")),
    ("split", lambda s: (s.get("config") or {}).get("split")),
    ("max tokens", lambda s: (s.get("config") or {}).get("max_tokens")),
    ("temperature", lambda s: (s.get("config") or {}).get("temperature")),
    ("top p", lambda s: (s.get("config") or {}).get("top_p")),
    ("samples per item", lambda s: (s.get("config") or {}).get("n")),
    ("seed", lambda s: (s.get("config") or {}).get("seed")),
    ("template", lambda s: (s.get("config") or {}).get("template")),
    ("chat template kwargs", lambda s: (s.get("config") or {}).get("chat_template_kwargs")),
    ("stop", lambda s: (s.get("config") or {}).get("stop")),
    ("score truncated", lambda s: (s.get("config") or {}).get("score_truncated")),
)


def item_key(row: dict[str, Any]) -> tuple[str, str]:
    return (row.get("benchmark", ""), str(row["item_id"]))


def fingerprints(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(benchmark, item_id) -> the fingerprint of the item those rows were generated for."""
    return {item_key(r): row_fingerprint(r) for r in rows}


def shared_items(a: dict[tuple[str, str], str], b: dict[tuple[str, str], str],
                 ref_a: dict | None = None, ref_b: dict | None = None) -> tuple[set, set]:
    """``(shared, same id other content)``: keys both carry with the same content, and keys both carry
    for different content. ``ref_a``/``ref_b`` give the reference hashes for a content hash that
    meets an old row's reference hash."""
    shared, clash = set(), set()
    for key in a.keys() & b.keys():
        fa, fb = a[key], b[key]
        if fa.startswith("ref:") != fb.startswith("ref:") and ref_a is not None and ref_b is not None:
            fa, fb = ref_a.get(key), ref_b.get(key)
        (shared if fa == fb else clash).add(key)
    return shared, clash


def reference_hashes(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(benchmark, item_id) -> the hash of the saved reference fields (what old rows can be matched on)."""
    return {item_key(r): row_fingerprint({"reference": r.get("reference")}) for r in rows}


def setting_differences(summaries: Sequence[dict[str, Any]], labels: Sequence[str]) -> list[str]:
    """One line per compared setting whose value is not the same in every run: ``name: a=x, b=y``."""
    out = []
    for name, read in COMPARED:
        values = [read(s) for s in summaries]
        if any(v != values[0] for v in values[1:]):
            if name == "template":
                shown = ["(as the first run)" if v == values[0] else "(other)" for v in values]
                shown[0] = "(first)"
            else:
                shown = [repr(v) if not isinstance(v, (int, float)) or isinstance(v, bool) else str(v)
                         for v in values]
            out.append(f"{name}: " + ", ".join(f"{label}={v}" for label, v in zip(labels, shown)))
    return out


def completion_differences(a_rows: Sequence[dict[str, Any]], b_rows: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """``(differing, shared)``: completions of the same item (same content) and sample index that differ."""
    shared, _ = shared_items(fingerprints(a_rows), fingerprints(b_rows), reference_hashes(a_rows),
                             reference_hashes(b_rows))
    a = {(item_key(r), r.get("sample")): r.get("completion") for r in a_rows if item_key(r) in shared}
    b = {(item_key(r), r.get("sample")): r.get("completion") for r in b_rows if item_key(r) in shared}
    both = a.keys() & b.keys()
    return sum(a[k] != b[k] for k in both), len(both)
