"""Worst-case latency of a verifier on adversarial inputs (for ``bench_verifiers.py``): each input is
one call in a forked child (same code, already imported), timed in the child's CPU time; a call
still running after :data:`ADVERSARIAL_CAP_S` of wall time is recorded as timed out and the child
killed, so a verifier that hangs costs the cap, not the whole run."""
from __future__ import annotations

import sys
import time
from typing import Any

ADVERSARIAL_CAP_S = 10.0


def _adversarial_worker(verifier: Any, name: str, cases: list[tuple[str, str]], conn: Any) -> None:
    fields = tuple(getattr(verifier, "fields", ()))
    refs = {"numbers": [9, 9, 9, 9], "target": 24, "answer": "\\frac{1}{2}" if name.startswith("math") else "#### 4"}
    kwargs = {f: refs.get(f, "4") for f in fields}
    for case, text in cases:
        best = best_wall = float("inf")
        for attempt in range(2):  # a slow call is re-timed once (shared machine), best kept
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                reason = verifier(text, **kwargs).reason
            except Exception as exc:  # noqa: BLE001 - a crash is a finding, recorded as such
                reason = f"raised {type(exc).__name__}"
            best = min(best, time.process_time() - c0)
            best_wall = min(best_wall, time.perf_counter() - t0)
            if not 0.05 <= best < 2.0:  # fast enough, or clearly over the bound: no second call
                break
        conn.send((case, best, reason, best_wall))
    conn.close()


def adversarial_latency(verifier: Any, name: str, inputs: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Seconds per adversarial input, measured in a forked child (same code, already imported). A case
    still running after ADVERSARIAL_CAP_S is recorded as timed out and the child is killed."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    remaining = list(inputs.items())
    lat: dict[str, dict[str, Any]] = {}
    while remaining:
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_adversarial_worker, args=(verifier, name, remaining, child), daemon=True)
        proc.start()
        child.close()
        while remaining:
            if not parent.poll(ADVERSARIAL_CAP_S):
                proc.kill()
                case = remaining.pop(0)[0]
                lat[case] = {"seconds": ADVERSARIAL_CAP_S, "reason": f"benchmark_timeout (>{ADVERSARIAL_CAP_S:.0f} s, killed)",
                             "timed_out": True}
                print(f"    {name} / {case}: still running after {ADVERSARIAL_CAP_S:.0f} s, killed", file=sys.stderr)
                break
            try:
                case, seconds, reason, wall = parent.recv()
            except EOFError:  # the child died (e.g. RecursionError in C, MemoryError)
                case = remaining.pop(0)[0]
                lat[case] = {"seconds": ADVERSARIAL_CAP_S, "reason": f"child died (exit {proc.exitcode})",
                             "timed_out": True}
                break
            remaining.pop(0)
            lat[case] = {"seconds": seconds, "wall_seconds": wall, "reason": reason}
        proc.join(timeout=5)
        parent.close()
    return {case: lat[case] for case in inputs}
