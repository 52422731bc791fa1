"""Turning one completion into flat verdict columns for every verifier of a benchmark.

Columns per verifier ``v``: ``v.score``, ``v.correct``, ``v.extracted``, ``v.reason``, ``v.details``
(flat, so ``df["gsm8k.correct"].mean()`` works in pandas).

**Truncation policy.** A completion that stopped at ``max_tokens`` (finish reason ``length``) is an
unfinished answer. Unless ``score_truncated`` is set, every verifier's verdict for it is
``correct=False, score=0.0, reason="truncated"``; what the verifier would have said is kept in
``v.details["untruncated"]`` and its extraction in ``v.extracted``, so nothing is lost for analysis.
A verifier that crashes gives ``correct=None, reason="error"`` (never a silent 0). A truncated
completion the verifier could not score at all (``correct`` None: bad gold, a crash) keeps that
verdict, with ``details["truncated"] = True``: it is unscored, not wrong (issue 23, lower-impact a).
"""
from __future__ import annotations

import math
from typing import Any

from reasonkit.eval.metrics import TRUNCATED
from reasonkit.tasks.registry import resolve_all, resolve_verifier  # noqa: F401  (names resolve in the task layer)

VERDICT_FIELDS = ("score", "correct", "extracted", "reason", "details")


def _verdict(verifier: Any, text: str, refs: dict[str, Any]) -> dict[str, Any]:
    try:
        v = verifier(text, **refs)
        d = v.to_dict() if hasattr(v, "to_dict") else dict(v)
    except Exception as exc:  # noqa: BLE001 - one bad completion must not stop the run
        d = {"score": math.nan, "correct": None, "extracted": None, "reason": "error",
             "details": {"error": f"{type(exc).__name__}: {exc}"}}
    return d


def score_completion(verifiers: dict[str, Any], completion: str, finish_reason: str, item: dict[str, Any],
                     prefix: str = "", score_truncated: bool = False) -> dict[str, Any]:
    """Flat verdict columns for one completion (see the module docstring)."""
    out: dict[str, Any] = {}
    text = prefix + completion
    for name, verifier in verifiers.items():
        refs = {f: item[f] for f in verifier.fields}
        d = _verdict(verifier, text, refs)
        if finish_reason == "length" and not score_truncated and d.get("correct") is not None:
            d = {"score": 0.0, "correct": False, "extracted": d.get("extracted"), "reason": TRUNCATED,
                 "details": {"untruncated": {k: d.get(k) for k in ("score", "correct", "reason")}}}
        elif finish_reason == "length" and not score_truncated:  # could not score: unscored, not "wrong"
            d = {**d, "details": {**(d.get("details") or {}), "truncated": True}}
        for key in VERDICT_FIELDS:
            value = d.get(key)
            if key == "score" and isinstance(value, float) and not math.isfinite(value):
                value = None
            out[f"{name}.{key}"] = value
    return out
