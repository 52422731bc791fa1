"""Metrics over per-sample verdicts: accuracy with its standard error, pass@k, maj@k, rates.

Definitions (per verifier, per adapter; an item has ``n`` samples, ``c`` of them correct):

* ``accuracy`` — mean over all samples of ``correct is True`` (a sample the verifier could not score
  counts as not correct, as lm-evaluation-harness does); ``stderr`` — the standard error of the mean of
  the per-item accuracies (samples of one item are not independent, items are).
* ``pass@k`` — the unbiased estimator of Chen et al. 2021 (HumanEval), per item
  ``1 - C(n-c, k) / C(n, k)``, averaged over items, for k = 1..n. Computed as the product
  ``prod_{i=n-c+1..n} (1 - k/i)`` to avoid huge binomials (the same identity the paper uses).
* ``maj@k`` — majority vote over the *normalised* answers of the first k samples (issue 23, item 3):
  a sample's vote is the verifier's ``details["normalized"]`` when it gives one, else
  :func:`reasonkit.verifiers.answer_key` of the extracted answer (``$18``, ``18`` and ``18.0`` are one
  vote). Samples with no answer, truncated samples that were not scored as answers (reason
  ``truncated``) and samples the verifier could not score (``correct`` None) do not vote; ties go to
  the answer seen first. The item counts as correct when a sample carrying the winning answer is
  correct; an item where no sample votes counts as not correct.
* ``extraction_failure_rate`` — share of scored (not truncated) samples with no extracted answer.
* ``could_not_score`` — share with ``correct`` None (bad gold, verifier error).
* ``mean_score`` — mean ``score`` over the *scored* samples only (``correct`` not None; issue 23,
  item 8: the 0.0 an unscored verdict carries is a placeholder, not a score); ``scored_samples`` says
  how many that is. A truncated sample that was not scored as an answer counts as scored 0 (as in
  ``accuracy``).
* ``truncation_rate`` and ``mean_completion_tokens`` are per adapter (they do not depend on a verifier).
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any, Iterable, Sequence

from reasonkit.verifiers import answer_key

TRUNCATED = "truncated"


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one item with n samples of which c are correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def majority(answers: Sequence[str | None]) -> str | None:
    """The most common non-None answer; ties go to the answer that appeared first."""
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return None
    best = max(votes.values())
    return next(a for a in answers if a is not None and votes[a] == best)


def vote(row: dict[str, Any], verifier: str) -> str | None:
    """The answer a sample row votes for in maj@k, or None when it does not vote (see the module docstring)."""
    if row.get(f"{verifier}.reason") == TRUNCATED or row.get(f"{verifier}.correct") is None:
        return None
    details = row.get(f"{verifier}.details")
    normalized = details.get("normalized") if isinstance(details, dict) else None
    if normalized is not None:
        return str(normalized)
    extracted = row.get(f"{verifier}.extracted")
    return answer_key(extracted if extracted is None else str(extracted))


def maj_at_k(samples: Sequence[tuple[str | None, bool | None]], k: int) -> bool:
    """samples: (vote, correct) in sample order (vote None: does not vote). True when the vote of the
    first k is correct."""
    first = samples[:k]
    winner = majority([e for e, _ in first])
    if winner is None:
        return False
    return any(c is True for e, c in first if e == winner)


def mean_stderr(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample std / sqrt(N); 0 for a single value)."""
    if not values:
        return math.nan, math.nan
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, 0.0
    var = sum((v - m) ** 2 for v in values) / (len(values) - 1)
    return m, math.sqrt(var / len(values))


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def verifier_metrics(rows: Iterable[dict[str, Any]], verifier: str, n: int) -> dict[str, Any]:
    """Metrics of one verifier over the sample rows of one adapter (flat ``<verifier>.<field>`` columns)."""
    by_item: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_item[r["item_id"]].append(r)
    if not by_item:
        return {}
    correct_col, extracted_col = f"{verifier}.correct", f"{verifier}.extracted"
    reason_col, score_col = f"{verifier}.reason", f"{verifier}.score"
    item_acc, scores, total, no_extract, scored, unscorable = [], [], 0, 0, 0, 0
    pass_k = {k: [] for k in range(1, n + 1)}
    maj_k = {k: [] for k in range(1, n + 1)}
    for group in by_item.values():
        group.sort(key=lambda r: r["sample"])
        flags = [r.get(correct_col) is True for r in group]
        item_acc.append(sum(flags) / len(flags))
        total += len(group)
        for r in group:
            if r.get(correct_col) is None:
                unscorable += 1
            elif _finite(r.get(score_col)):
                scores.append(float(r[score_col]))
            if r.get(reason_col) != TRUNCATED:
                scored += 1
                no_extract += r.get(extracted_col) is None
        m, n_correct = len(group), sum(flags)
        votes = [(vote(r, verifier), r.get(correct_col)) for r in group]
        for k in range(1, min(n, m) + 1):
            pass_k[k].append(pass_at_k(m, n_correct, k))
            maj_k[k].append(1.0 if maj_at_k(votes, k) else 0.0)
    acc, se = mean_stderr(item_acc)
    out: dict[str, Any] = {
        "accuracy": acc,
        "stderr": se,
        "mean_score": sum(scores) / len(scores) if scores else None,
        "scored_samples": len(scores),
        "items": len(by_item),
        "samples": total,
        "extraction_failure_rate": no_extract / scored if scored else None,
        "could_not_score": unscorable / total,
    }
    for k in range(1, n + 1):
        if pass_k[k]:
            out[f"pass@{k}"] = sum(pass_k[k]) / len(pass_k[k])
    for k in range(1, n + 1):
        if maj_k[k]:
            out[f"maj@{k}"] = sum(maj_k[k]) / len(maj_k[k])
    return out


def adapter_metrics(rows: list[dict[str, Any]], verifiers: Sequence[str], n: int) -> dict[str, Any]:
    """Per-adapter summary: sample counts, truncation, tokens, and each verifier's metrics.

    Also lifts two headline numbers: ``format_compliance`` (the strict format verifier's accuracy)
    and ``stepwise_accuracy`` (the stepwise verifier's mean score: the share of right steps).
    """
    tokens = [r["num_tokens"] for r in rows if _finite(r.get("num_tokens"))]
    out: dict[str, Any] = {
        "items": len({r["item_id"] for r in rows}),
        "samples": len(rows),
        "truncation_rate": sum(r.get("finish_reason") == "length" for r in rows) / len(rows) if rows else None,
        "mean_completion_tokens": sum(tokens) / len(tokens) if tokens else None,
        "verifiers": {v: verifier_metrics(rows, v, n) for v in verifiers},
    }
    if "format" in verifiers:
        out["format_compliance"] = out["verifiers"]["format"].get("accuracy")
    if "stepwise" in verifiers:
        out["stepwise_accuracy"] = out["verifiers"]["stepwise"].get("mean_score")
    return out
