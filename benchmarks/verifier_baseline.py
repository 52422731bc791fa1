"""The verifiers as they were at a past commit, timed side by side with the current ones (for
``bench_verifiers.py``).

:func:`load_baseline` writes ``git archive COMMIT verifiers`` into a temporary folder as the package
``rk_verifiers_COMMIT`` and imports it next to ``reasonkit.verifiers`` (the package has only
relative imports, so the old copy runs its own code; its ``math`` verifier is left out because its
deadline worker process would import the current package). :func:`compare` then times both
versions of each verifier on the same completions in interleaved rounds (the order flips every
round, so that load from other processes on a shared machine hits both sides alike) and reports,
per verifier, the median and range of the CPU microseconds per call and of the per-round ratio
``baseline time / current time`` (the current version's throughput relative to the baseline's;
1.0 = as fast, 0.9 = 10 % slower).
"""
from __future__ import annotations

import atexit
import gc
import importlib
import importlib.util
import io
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "64eb0a7"  # before issue 26's verifier rules
SKIP = ("math",)  # see module docstring


def load_baseline(commit: str = BASELINE_COMMIT) -> Any | None:
    """The ``verifiers`` package of ``commit`` imported as ``rk_verifiers_<commit>``; None (with a
    line on stderr) when git or the commit is not available (e.g. a shallow clone)."""
    try:
        data = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit, "verifiers"],
                              check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        err = getattr(exc, "stderr", b"") or b""
        print(f"baseline {commit}: not available ({err.decode(errors='replace').strip() or exc})", file=sys.stderr)
        return None
    root = Path(tempfile.mkdtemp(prefix="rk_baseline_"))
    atexit.register(shutil.rmtree, root, True)  # the copy is removed when the benchmark exits
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(root, filter="data")
    name = f"rk_verifiers_{commit}"
    (root / "verifiers").rename(root / name)
    # imported from its folder as a package of its own name (no search-path change): its relative
    # imports resolve inside the copy
    spec = importlib.util.spec_from_file_location(name, root / name / "__init__.py",
                                                  submodule_search_locations=[str(root / name)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _cpu_seconds(fn: Callable[..., Any], calls: list[tuple[str, dict[str, Any]]]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        for completion, kw in calls:
            fn(completion, **kw)
        return time.process_time() - start
    finally:
        gc.enable()


def _spread(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ")[0]
    except OSError:
        return "n/a"


def compare(current: Callable[[str], Any], baseline: Any, names: list[str],
            calls_for: Callable[[str, Any], list[tuple[str, dict[str, Any]]]], rounds: int,
            min_ratio: float) -> dict[str, Any]:
    """Interleaved timing of ``current(name)`` against ``baseline.get_verifier(name)`` for every name
    both have (except :data:`SKIP`). ``calls_for(name, verifier)`` gives the (completion, kwargs) pairs."""
    out: dict[str, Any] = {"load_1m_before": loadavg(), "rounds": rounds, "verifiers": {}}
    old_names = set(baseline.verifier_names())
    for name in names:
        if name in SKIP or name not in old_names:
            continue
        new_v, old_v = current(name), baseline.get_verifier(name)
        calls = calls_for(name, new_v)
        for v in (new_v, old_v):  # one full warm-up pass each (imports, gold caches), not timed
            _cpu_seconds(v, calls)
        new_t: list[float] = []
        old_t: list[float] = []
        for r in range(rounds):
            pair = [(new_v, new_t), (old_v, old_t)]
            for v, sink in (pair if r % 2 == 0 else pair[::-1]):
                sink.append(_cpu_seconds(v, calls) / len(calls) * 1e6)
        ratios = [o / n for o, n in zip(old_t, new_t)]
        res = {"n": len(calls), "current_us": _spread(new_t), "baseline_us": _spread(old_t),
               "throughput_ratio": _spread(ratios)}
        res["meets"] = res["throughput_ratio"]["median"] >= min_ratio
        out["verifiers"][name] = res
        print(f"  vs baseline {name:15s} {res['current_us']['median']:8.1f} us vs {res['baseline_us']['median']:8.1f} us"
              f"  ratio {res['throughput_ratio']['median']:.2f}", file=sys.stderr)
    out["load_1m_after"] = loadavg()
    return out


def interleaved(fast: Callable[..., Any], slow: Callable[..., Any], fast_calls: list[tuple[str, dict[str, Any]]],
                slow_calls: list[tuple[str, dict[str, Any]]], rounds: int) -> dict[str, Any]:
    """Two callables on the same rows (each with its own keyword form), timed in the same rounds (order
    flipped every round, as :func:`compare`), CPU µs per call: median and range of each side and of the
    per-round ratio ``slow time / fast time`` (how many times faster ``fast`` is, measured at one moment).
    The caller runs the warm-up passes."""
    fast_t: list[float] = []
    slow_t: list[float] = []
    load = loadavg()
    for r in range(rounds):
        pair = [(fast, fast_calls, fast_t), (slow, slow_calls, slow_t)]
        for fn, calls, sink in (pair if r % 2 == 0 else pair[::-1]):
            sink.append(_cpu_seconds(fn, calls) / len(calls) * 1e6)
        print(f"  same-moment round {r + 1}/{rounds}: {fast_t[-1]:.0f} us vs {slow_t[-1]:.0f} us "
              f"({slow_t[-1] / fast_t[-1]:.1f}x)", file=sys.stderr)
    return {"n": len(fast_calls), "rounds": rounds, "fast_us": _spread(fast_t), "slow_us": _spread(slow_t),
            "ratio": _spread([s / f for s, f in zip(slow_t, fast_t)]), "load_1m_before": load,
            "load_1m_after": loadavg()}


def markdown(cmp: dict[str, Any], commit: str, min_ratio: float) -> list[str]:
    lines = [
        f"## Current verifiers vs commit {commit} (interleaved, same completions)",
        "",
        f"CPU time per call (process time, one thread), {cmp['rounds']} interleaved rounds (order flipped every "
        f"round), median [min-max]; 1-min load average {cmp['load_1m_before']} before, {cmp['load_1m_after']} after "
        "(a loaded machine: absolute figures are noisy, the interleaved ratio is the comparison). Ratio = "
        f"baseline time / current time per round (current throughput relative to {commit}); target ≥ "
        f"{min_ratio:.2f} (within {100 - min_ratio * 100:.0f} %). `math` is compared with math-verify instead (above).",
        "",
        f"| verifier | calls | current µs/call | {commit} µs/call | throughput ratio | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, r in cmp["verifiers"].items():
        c, b, q = r["current_us"], r["baseline_us"], r["throughput_ratio"]
        lines.append(f"| `{name}` | {r['n']:,} | {c['median']:.1f} [{c['min']:.1f}-{c['max']:.1f}] | "
                     f"{b['median']:.1f} [{b['min']:.1f}-{b['max']:.1f}] | {q['median']:.2f} [{q['min']:.2f}-{q['max']:.2f}] | "
                     f"{'PASS' if r['meets'] else 'FAIL'} |")
    return lines + [""]
