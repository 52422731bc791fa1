"""Which sampled completions a warm start trains on: the filter of rejection-sampling fine-tuning.

Policy (one rule a line):

- kept: the verifier's ``correct`` is True (an unscored verdict, ``None``, is never kept);
- a completion that hit the token limit (``finish_reason == "length"``) or a failed request is never kept,
  whatever its verdict (training on it teaches the model to stop mid-answer);
- per item, completions equal after collapsing white space are kept once;
- at most ``max_per_item`` per item, the shortest first (by tokens, then characters) when
  ``shortest_first``, else in sample order — shorter correct answers are less likely to be padded;
- a stop string that ended a completion is put back on its end, so the model learns to write it.

Pure functions over the row dictionaries of an eval run's ``samples.jsonl``; no torch.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

from reasonkit.errors import ReasonkitError

_WS = re.compile(r"\s+")


def correct_column(verifier: str) -> str:
    return f"{verifier}.correct"


def verifier_columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The verifiers that scored ``rows`` (from their ``<verifier>.correct`` columns), in order."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key.endswith(".correct"):
                seen.setdefault(key[: -len(".correct")], None)
    return list(seen)


def _key(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _order(rec: dict[str, Any], shortest_first: bool) -> tuple:
    if shortest_first:
        return (rec.get("num_tokens") or 0, len(rec["completion"]), rec.get("sample", 0))
    return (rec.get("iteration", 0), rec.get("sample", 0))


def select(rows: Iterable[dict[str, Any]], verifier: str, max_per_item: int, shortest_first: bool = True,
           iteration: int = 0) -> list[dict[str, Any]]:
    """The training records (``item_id``, ``prompt``, ``completion``, ...) kept from ``rows``."""
    column = correct_column(verifier)
    by_item: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get(column) is not True or row.get("finish_reason") in ("length", "error") or row.get("error"):
            continue
        prompt = row.get("prompt")
        if not isinstance(prompt, str):
            raise ReasonkitError(f"item {row.get('item_id')}: the saved prompt is not text (samples from "
                                 "--backend openai hold chat messages); sample with --backend hf or vllm")
        completion = str(row.get("completion") or "") + str(row.get("stop_string") or "")
        by_item.setdefault(str(row["item_id"]), []).append(
            {"item_id": str(row["item_id"]), "prompt": prompt, "completion": completion,
             "num_tokens": row.get("num_tokens"), "sample": row.get("sample", 0), "iteration": iteration,
             "score": row.get(f"{verifier}.score")})
    return merge([], [r for recs in by_item.values() for r in recs], max_per_item, shortest_first)


def merge(old: list[dict[str, Any]], new: list[dict[str, Any]], max_per_item: int,
          shortest_first: bool = True) -> list[dict[str, Any]]:
    """``old ∪ new`` with the per-item rules applied again (deduplicated, capped); item order kept."""
    by_item: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple[str, str]] = set()
    for rec in [*old, *new]:
        key = (rec["item_id"], _key(rec["completion"]))
        if key in seen:
            continue
        seen.add(key)
        by_item.setdefault(rec["item_id"], []).append(rec)
    out = []
    for recs in by_item.values():
        out.extend(sorted(recs, key=lambda r: _order(r, shortest_first))[:max_per_item])
    return out
