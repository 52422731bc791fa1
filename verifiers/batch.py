"""Score many rows with one verifier, optionally across worker processes, keeping input order.

``score_batch(verifier, rows, workers=4)`` takes rows (mappings with ``completion`` plus the
verifier's reference fields) and returns one :class:`Verdict` per row, in order. The verifier is a
registered name, an expression such as ``"countdown+format"``, a weight dict or a spec.

One bad row never stops the batch: a row that is not a mapping or lacks ``completion`` or a field
becomes an explicit error verdict ``Verdict(0.0, None, None, "error", {"error": "..."})``; a row
that makes the verifier raise gets the crash verdict of :mod:`reasonkit.verifiers.policy`
(reason ``verifier_error:<Type>``). Both are unscored (``correct=None``), counted apart by
:func:`summarize`, never a silent 0 reward. If a worker process dies (a row that segfaults or
exhausts memory), the row that killed it gets a crash verdict and the other rows are scored again
in a fresh pool.

``workers=1`` scores in-process. More workers use a ``ProcessPoolExecutor`` with the ``spawn`` start
method by default (safe next to threads, CUDA or torch in the parent; ``forkserver`` works too): each
worker receives the pickled spec once through the pool initializer, and rows travel in chunks.
Scripts that call it with workers > 1 need the usual ``if __name__ == "__main__":`` guard.
"""
from __future__ import annotations

import multiprocessing
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Mapping

from .base import ERROR, Verdict
from .compose import AnySpec, resolve
from .policy import crash_verdict, is_error

_WORKER_SPEC: AnySpec | None = None


def error_verdict(message: str) -> Verdict:
    return Verdict(0.0, None, None, ERROR, {"error": message})


def score_row(spec: AnySpec, row: Any, index: int | None = None) -> Verdict:
    """Score one row; any problem with the row or the verifier becomes an error verdict."""
    where = f"row {index}" if index is not None else "row"
    if not isinstance(row, Mapping):
        return error_verdict(f"{where}: expected a mapping with 'completion', got {type(row).__name__}")
    missing = [k for k in ("completion", *spec.fields) if k not in row]
    if missing:
        return error_verdict(f"{where}: missing field{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(repr(m) for m in missing)} (verifier {spec.name!r} needs "
                             f"completion, {', '.join(spec.fields) or 'no reference fields'})")
    try:
        verdict = spec(row["completion"], **{k: row[k] for k in spec.fields})
    except Exception as exc:  # noqa: BLE001 - a crash is recorded as an explicit error verdict
        return crash_verdict(exc, f"{where}: verifier {spec.name!r} raised ")
    if not isinstance(verdict, Verdict):
        return error_verdict(f"{where}: verifier {spec.name!r} returned {type(verdict).__name__}, not a Verdict")
    return verdict


def _init_worker(spec: AnySpec) -> None:
    global _WORKER_SPEC
    _WORKER_SPEC = spec


def _score_chunk(chunk: list[tuple[int, Any]]) -> list[Verdict]:
    assert _WORKER_SPEC is not None, "worker not initialised"
    return [score_row(_WORKER_SPEC, row, i) for i, row in chunk]


def score_batch(verifier: Any, rows: Iterable[Mapping[str, Any]], workers: int = 1, chunksize: int | None = None,
                *, mp_context: str = "spawn", on_progress: Callable[[int], None] | None = None) -> list[Verdict]:
    """One verdict per row, in input order (see module docstring).

    ``chunksize`` rows go to a worker at a time (default: about 4 chunks per worker, at most 1,000
    rows each). ``on_progress(n)`` is called with the number of rows just finished (for a progress bar).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, not {workers!r}")
    if chunksize is not None and (not isinstance(chunksize, int) or chunksize < 1):
        raise ValueError(f"chunksize must be a positive integer, not {chunksize!r}")
    spec = resolve(verifier)  # unknown names fail here, before any work
    rows = list(rows)
    if workers == 1 or len(rows) <= 1:
        out = []
        for i, row in enumerate(rows):
            out.append(score_row(spec, row, i))
            if on_progress:
                on_progress(1)
        return out
    size = chunksize or max(1, min(1000, -(-len(rows) // (workers * 4))))
    indexed = list(enumerate(rows))
    chunks = [indexed[s:s + size] for s in range(0, len(indexed), size)]
    ctx = multiprocessing.get_context(mp_context)
    results, failed = _run_pool(spec, chunks, workers, ctx, on_progress)
    # Rows of failed chunks (a worker died, or a row would not pickle) are retried one at a time in a
    # single-worker pool, whose queue runs in order: when it breaks, the earliest unfinished row is the
    # one that killed it. That row becomes an error verdict; the rest are retried in a fresh pool.
    retry = [item for chunk, _ in failed for item in chunk]
    while retry:
        done, again = _run_pool(spec, [[item] for item in retry], 1, ctx, None)
        results.update(done)
        for k, (chunk, exc) in enumerate(again):
            (i, _), = chunk
            if k == 0 and isinstance(exc, BrokenProcessPool):  # the row that killed the worker: a crash
                results[i] = crash_verdict(exc, f"row {i}: worker failed: ")
            elif not isinstance(exc, BrokenProcessPool):  # e.g. a row that will not pickle
                results[i] = error_verdict(f"row {i}: worker failed: {type(exc).__name__}: {exc}"[:2000])
        retry = [chunk[0] for chunk, exc in again[1:] if isinstance(exc, BrokenProcessPool)]
        if on_progress:
            on_progress(len(done) + (len(again) - len(retry)))
    return [results[i] for i in range(len(indexed))]


def _run_pool(spec: AnySpec, chunks: list[list[tuple[int, Any]]], workers: int, ctx: Any,
              on_progress: Callable[[int], None] | None) -> tuple[dict[int, Verdict], list[tuple[list, BaseException]]]:
    """Score chunks in a fresh pool: ({row index: verdict}, [(failed chunk, exception)])."""
    results: dict[int, Verdict] = {}
    failed: list[tuple[list, BaseException]] = []
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=ctx,
                             initializer=_init_worker, initargs=(spec,)) as pool:
        futures = [pool.submit(_score_chunk, chunk) for chunk in chunks]
        for chunk, future in zip(chunks, futures):
            try:
                verdicts = future.result()
            except Exception as exc:  # noqa: BLE001 - dead worker / unpicklable row: retried by the caller
                failed.append((chunk, exc))
                continue
            results.update((i, v) for (i, _), v in zip(chunk, verdicts))
            if on_progress:
                on_progress(len(chunk))
    return results, failed


def summarize(verdicts: Iterable[Verdict]) -> dict[str, Any]:
    """Counts for a report: rows, scored, correct, errors (crashes/bad rows), unscored, mean score, reasons.

    ``mean_score`` and ``accuracy`` are over scored verdicts only; errors and unscored rows are
    counted, never averaged in as 0.
    """
    verdicts = list(verdicts)
    scored = [v for v in verdicts if v.scored]
    return {
        "rows": len(verdicts),
        "scored": len(scored),
        "correct": sum(1 for v in scored if v.correct),
        "errors": sum(1 for v in verdicts if is_error(v.reason)),
        "unscored": sum(1 for v in verdicts if not v.scored and not is_error(v.reason)),
        "accuracy": (sum(1 for v in scored if v.correct) / len(scored)) if scored else None,
        "mean_score": (sum(v.score for v in scored) / len(scored)) if scored else None,
        "reasons": dict(Counter(v.reason for v in verdicts).most_common()),
    }
