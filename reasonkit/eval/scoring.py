"""The score stage of ``reasonkit eval``: one completion -> flat verdict columns for every verifier.

Columns per verifier ``v``: ``v.score``, ``v.correct``, ``v.extracted``, ``v.reason``, ``v.details``
(flat, so ``df["gsm8k.correct"].mean()`` works in pandas).

The truncation and verifier-crash policies are :mod:`reasonkit.verifiers.policy`'s, the same the GRPO
reward applies: a completion that stopped at ``max_tokens`` (finish reason ``length``) is scored
``correct=False, score=0.0, reason="truncated"`` unless ``score_truncated`` (what the verifier would
have said is kept in ``v.details["untruncated"]``, its extraction in ``v.extracted``); a truncated
completion the verifier could not score stays unscored, with ``details["truncated"] = True``; a
verifier that crashes gives ``correct=None, reason="verifier_error:<Type>"`` and, in these columns,
``score`` None (an unscored verdict's 0.0 is a placeholder; a non-finite score is written as None too).
"""
from __future__ import annotations

import math
from typing import Any

from ..records import Row
from reasonkit.verifiers.policy import VERIFIER_ERROR, apply_truncation, call_verifier
from .engine_io import error_row_fields
from .identity import item_fingerprint
from reasonkit.tasks.registry import resolve_all, resolve_verifier  # noqa: F401  (names resolve in the task layer)

VERDICT_FIELDS = ("score", "correct", "extracted", "reason", "details")


def score_completion(verifiers: dict[str, Any], completion: str, finish_reason: str, item: dict[str, Any],
                     prefix: str = "", score_truncated: bool = False) -> dict[str, Any]:
    """Flat verdict columns for one completion (see the module docstring)."""
    out: dict[str, Any] = {}
    text = prefix + completion
    for name, verifier in verifiers.items():
        v = apply_truncation(call_verifier(verifier, text, {f: item[f] for f in verifier.fields}),
                             finish_reason, score_truncated)
        score = v.score
        if (isinstance(score, float) and not math.isfinite(score)) or v.reason.startswith(VERIFIER_ERROR):
            score = None
        out[f"{name}.score"] = score
        out[f"{name}.correct"] = v.correct
        out[f"{name}.extracted"] = v.extracted
        out[f"{name}.reason"] = v.reason
        out[f"{name}.details"] = v.details
    return out


def reference_fields(verifiers: dict[str, Any]) -> list[str]:
    """The item fields the verifiers read, saved with each row (``reference``) for ``--rescore``."""
    return sorted({f for v in verifiers.values() for f in v.fields})


def batch_rows(plan: Any, batch: Any, served: dict[str, Any]) -> list[Row]:
    """The samples.jsonl rows of one generated batch (:class:`reasonkit.eval.generate.Batch`), scored.

    A failed request is saved as an error row (:func:`reasonkit.eval.engine_io.error_row_fields`),
    never scored, and generated again by the next run. The verifiers see ``completion + stop_string``.
    """
    bench, config = plan.bench, plan.config
    refs_fields = reference_fields(plan.verifiers)
    extra = served.get(batch.adapter, {})
    rows = []
    for it, out in zip(batch.items, batch.outputs):
        fingerprint = item_fingerprint(it)
        for s, comp in enumerate(out.completions):
            row = Row(benchmark=bench.name, item_id=it["id"], model=plan.model_label, adapter=batch.adapter,
                      sample=s, prompt=out.prompt, completion=comp.text, num_tokens=comp.num_tokens,
                      finish_reason=comp.finish_reason, reference={f: it[f] for f in refs_fields},
                      item_fingerprint=fingerprint, **extra)
            if comp.error is not None:  # a failed request: saved, never scored, retried next run
                row.update(error_row_fields(comp.error))
            else:
                if comp.stop_string:
                    row["stop_string"] = comp.stop_string
                row.update(score_completion(plan.verifiers, comp.text + (comp.stop_string or ""),
                                            comp.finish_reason, it, bench.score_prefix, config.score_truncated))
            rows.append(row)
    return rows
