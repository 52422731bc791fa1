"""Verifier throughput and worst-case latency, side by side with math-verify's ``parse`` + ``verify``.

What it measures, all in one process on one core (no worker pools), in one run:

1. completions/s of every registered verifier (and the ``countdown+0.5*format`` composite) on 10k
   realistic completions built from the bundled data: GSM8K test solutions rewritten the way models
   answer (``<think>…</think>\\n<answer>N</answer>``, ``#### N``, ``\\boxed{N}``, "The answer is $1,234.",
   wrong answers, no answer), Countdown tasks with right, wrong and malformed equations, and MATH-500
   answers in ``\\boxed{}`` (right, wrong, missing);
2. the same GSM8K-style completions through math-verify's own ``parse(completion)`` + ``verify(gold,
   pred)`` (the baseline the issue's 20x target is measured against), timed in the same run;
3. the slowest single call on the realistic set and on adversarial inputs (``9**9**9**9``,
   100k-digit literals, 10k nested parentheses, a 1 MB completion, ``<think>`` x 100k, deep LaTeX);
4. the ``math`` verifier against math-verify alone (``parse`` + ``verify``) on the same MATH-500 rows,
   in the same interleaved rounds (CPU time, median and range of the per-round ratio: the issue's
   40x target is judged on this one comparison);
5. every verifier against its own version at commit ``64eb0a7`` (before issue 26's rules; imported
   side by side by :mod:`verifier_baseline`), interleaved rounds, CPU time per call, median and
   range of the throughput ratio (target: within 10 %).

The completions are built by :mod:`verifier_corpus` (next to this script). Rounds alternate verifier
and baseline (best of ``--rounds``) so that load from other processes on a shared machine hits both
sides alike. Prints a table; a full run writes ``benchmarks/results/verifiers.md`` and ``.json``
(machine, date, versions, figures).

    python benchmarks/bench_verifiers.py            # 10k completions, writes the results
    python benchmarks/bench_verifiers.py --quick    # 1k completions, prints only (smoke run)
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.metadata
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

import harness  # benchmarks/harness.py
import verifier_baseline
from verifier_adversarial import ADVERSARIAL_CAP_S, adversarial_latency
from verifier_corpus import adversarial_inputs, corpus_for, countdown_rows, gsm8k_rows, math_rows

REPO = Path(__file__).resolve().parents[1]

TARGET_RATIO = 20.0  # gsm8k, countdown and format vs math-verify parse + verify
TARGET_NAMES = ("gsm8k", "gsm8k_flexible", "countdown", "format", "format_soft")
LATENCY_BOUND_S = 1.0
COMPOSITES = ("countdown+0.5*format",)
MATH_FAST_TARGET = 40.0  # the math verifier vs math-verify alone, MATH-500 corpus (issue 26)
BASELINE_MIN_RATIO = 0.9  # every other verifier within 10 % of its throughput at the baseline commit


# --- measurement -------------------------------------------------------------------------------------

def _kwargs(rows: list[dict[str, Any]], fields: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    return [(r["completion"], {f: r[f] for f in fields}) for r in rows]


def time_calls(fn: Callable[..., Any], calls: list[tuple[str, dict[str, Any]]],
               per_call: bool) -> tuple[float, float | None, list[Any]]:
    """(total wall seconds, slowest single call or None, outputs).

    With ``per_call`` each call is also timed in process CPU time: on a shared machine a call can be
    descheduled mid-way, which inflates its wall time but not its CPU time. Without it the loop
    carries no per-call clock overhead (the throughput rounds).
    """
    outs: list[Any] = []
    # As timeit does: no cyclic-GC pauses inside the timed loop. A full collection over the
    # benchmark's own 40k-row corpora takes ~100-200 ms and would land on whichever call was running.
    gc.collect()
    gc.disable()
    try:
        if not per_call:
            start = time.perf_counter()
            for completion, kw in calls:
                outs.append(fn(completion, **kw))
            return time.perf_counter() - start, None, outs
        cpu = time.process_time
        worst = 0.0
        start = time.perf_counter()
        for completion, kw in calls:
            t0 = cpu()
            outs.append(fn(completion, **kw))
            t = cpu() - t0
            if t > worst:
                worst = t
        return time.perf_counter() - start, worst, outs
    finally:
        gc.enable()


def math_verify_baseline() -> Callable[..., bool]:
    """math-verify's own pipeline with its defaults: parse the gold, parse the completion, verify."""
    from math_verify import parse, verify

    def mv(completion: str, gold: str) -> bool:
        return verify(parse(gold), parse(completion))

    return mv


def machine_info() -> dict[str, Any]:
    m = harness.machine()

    def version(pkg: str) -> str:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": m.get("cpu") or platform.processor(), "cores": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(), "math_verify": version("math-verify"),
        "sympy": version("sympy"), "reasonkit": version("reasonkit"),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        "process": "one process, one thread, no worker pool",
    }


def run(n: int, rounds: int, seed: int, baseline_commit: str | None = None, baseline_rounds: int = 7,
        math_rows_n: int = 2_000, math_rounds: int = 5) -> dict[str, Any]:
    from reasonkit.verifiers import get_verifier, verifier_names

    machine = machine_info()
    rng = random.Random(seed)
    gsm = gsm8k_rows(n, rng)
    cd = countdown_rows(n, rng)
    corpora = {
        "gsm8k": gsm,
        "countdown": cd,
        "math500": math_rows(n, rng),
        "mixed": [r for pair in zip(gsm[: n // 2], cd[: n - n // 2]) for r in pair][:n],
    }

    # label -> (verifier, corpus). The math verifier also runs on the GSM8K corpus, to compare it
    # with the math-verify baseline on the same completions.
    entries: dict[str, tuple[Any, str]] = {}
    for name in verifier_names():
        entries[name] = (get_verifier(name), corpus_for(name, corpora))
    if "math" in entries:
        entries["math (gsm8k corpus)"] = (entries["math"][0], "gsm8k")
    from reasonkit.verifiers import resolve

    for spec in COMPOSITES:
        entries[spec] = (resolve(spec), corpus_for(spec, corpora))

    baseline = math_verify_baseline()
    mv_calls = [(r["completion"], {"gold": r["gold_number"]}) for r in gsm]
    mv_time, mv_worst, mv_outs = float("inf"), 0.0, []
    results: dict[str, dict[str, Any]] = {}
    for r in range(rounds):
        # the baseline is re-timed every round, interleaved with the verifiers
        # round 1 also times every call (cold caches: the first time each gold is seen); later
        # rounds measure throughput only
        t, worst, mv_outs = time_calls(baseline, mv_calls, per_call=(r == 0))
        mv_time, mv_worst = min(mv_time, t), max(mv_worst, worst or 0.0)
        print(f"round {r + 1}/{rounds}: math-verify parse+verify {len(mv_calls) / t:,.0f}/s", file=sys.stderr)
        for label, (v, corpus) in entries.items():
            fields = tuple(getattr(v, "fields", ()))
            calls = _kwargs(corpora[corpus], fields)
            t, worst, outs = time_calls(v, calls, per_call=(r == 0))
            res = results.setdefault(label, {"corpus": corpus, "n": len(calls), "seconds": float("inf"),
                                             "worst_realistic_s": 0.0})
            res["seconds"] = min(res["seconds"], t)
            res["worst_realistic_s"] = max(res["worst_realistic_s"], worst or 0.0)
            res["accuracy"] = sum(o.correct is True for o in outs) / len(outs)
            res["reasons"] = dict(sorted(_count(o.reason for o in outs).items(), key=lambda kv: -kv[1]))
            print(f"  {label:22s} {len(calls) / t:>12,.0f}/s", file=sys.stderr)

    # the math verifier vs math-verify alone on the same MATH-500 rows, in the same interleaved rounds
    # (math-verify is slow: a sample of the corpus). The warm-up passes time each call (cold caches).
    sample = corpora["math500"][:math_rows_n]
    math_calls = [(r["completion"], {"gold": f"${r['answer']}$"}) for r in sample]
    _, m_worst, m_outs = time_calls(baseline, math_calls, per_call=True)
    time_calls(entries["math"][0], _kwargs(sample, ("answer",)), per_call=False)
    same = verifier_baseline.interleaved(entries["math"][0], baseline, _kwargs(sample, ("answer",)), math_calls,
                                         math_rounds)
    mt = same["slow_us"]["median"] * 1e-6 * len(math_calls)
    print(f"math-verify parse+verify on math500: {len(math_calls) / mt:,.0f}/s; math "
          f"{same['ratio']['median']:.1f}x [{same['ratio']['min']:.1f}-{same['ratio']['max']:.1f}]", file=sys.stderr)

    vs_baseline = None
    old = verifier_baseline.load_baseline(baseline_commit) if baseline_commit else None
    if old is not None:
        vs_baseline = verifier_baseline.compare(
            get_verifier, old, list(verifier_names()),
            lambda name, v: _kwargs(corpora[corpus_for(name, corpora)], tuple(getattr(v, "fields", ()))),
            baseline_rounds, BASELINE_MIN_RATIO)
        vs_baseline["commit"] = baseline_commit

    fast_path = math_fast_path_check(corpora["math500"], results.get("math"), len(math_calls) / mt, same)

    mv_rate = len(mv_calls) / mv_time
    mv_math_rate = len(math_calls) / mt
    adversarial = adversarial_inputs()
    latencies: dict[int, dict[str, dict[str, Any]]] = {}
    for label, res in results.items():
        v = entries[label][0]
        res["per_s"] = res["n"] / res["seconds"]
        res["ratio_vs_math_verify"] = res["per_s"] / mv_rate
        if res["corpus"] == "math500":
            res["ratio_vs_math_verify_same_corpus"] = res["per_s"] / mv_math_rate
        # adversarial: one call each (they are single, worst-case inputs), in a forked child so that a
        # verifier that hangs costs ADVERSARIAL_CAP_S and is recorded, not the whole run
        if id(v) not in latencies:
            print(f"  adversarial inputs: {label}", file=sys.stderr)
            latencies[id(v)] = adversarial_latency(v, label, adversarial)
        lat = latencies[id(v)]
        worst_case = max(lat, key=lambda c: lat[c]["seconds"])
        res["adversarial"] = lat
        res["worst_adversarial_s"] = lat[worst_case]["seconds"]
        res["worst_adversarial_case"] = worst_case
        res["meets_latency"] = max(res["worst_adversarial_s"], res["worst_realistic_s"]) <= LATENCY_BOUND_S
        if label in TARGET_NAMES:
            res["meets_ratio_target"] = res["ratio_vs_math_verify"] >= TARGET_RATIO

    machine["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    return {
        "machine": machine,
        "settings": {"completions": n, "rounds": rounds, "seed": seed, "timing": "best of rounds"},
        "math_verify_baseline": {
            "what": "math_verify.verify(parse(gold), parse(completion)), defaults, GSM8K-style corpus",
            "n": len(mv_calls), "seconds": mv_time, "per_s": mv_rate, "worst_realistic_s": mv_worst,
            "accuracy": sum(bool(o) for o in mv_outs) / len(mv_outs),
        },
        "math_verify_baseline_math500": {
            "what": "math_verify.verify(parse('$' + answer + '$'), parse(completion)), MATH-500 corpus sample, "
                    "CPU time, median of the rounds interleaved with the math verifier",
            "n": len(math_calls), "seconds": mt, "per_s": mv_math_rate, "worst_realistic_s": m_worst,
            "accuracy": sum(bool(o) for o in m_outs) / len(m_outs),
        },
        "verifiers": results,
        "math_fast_path": fast_path,
        "vs_baseline": vs_baseline,
        "targets": {"ratio_vs_math_verify": TARGET_RATIO, "ratio_applies_to": list(TARGET_NAMES),
                    "max_latency_s": LATENCY_BOUND_S, "math_fast_path_ratio": MATH_FAST_TARGET,
                    "math_fast_path_disagreements": 0, "baseline_min_ratio": BASELINE_MIN_RATIO},
    }


def math_fast_path_check(rows: list[dict[str, Any]], math_result: dict[str, Any] | None,
                         mv_math_rate: float, same: dict[str, Any]) -> dict[str, Any]:
    """The math verifier with its fast path (as registered) against the same verifier with every pair
    sent to math-verify (``fast=False``), on every row of the MATH-500 corpus: the verdicts must agree.
    The target ratio is ``same``'s: the math verifier and math-verify timed on the same rows in the same
    interleaved rounds (:func:`verifier_baseline.interleaved`), median [range] of the per-round ratio."""
    from reasonkit.verifiers.math import verify_math

    fast = [verify_math(r["completion"], r["answer"]) for r in rows]
    t0 = time.perf_counter()
    slow = [verify_math(r["completion"], r["answer"], fast=False) for r in rows]
    slow_s = time.perf_counter() - t0
    disagree = [(r["answer"], a.extracted, a.correct, b.correct) for r, a, b in zip(rows, fast, slow)
                if a.correct is not b.correct]
    per_s = math_result["n"] / math_result["seconds"] if math_result else None
    out = {
        "rows": len(rows), "disagreements": len(disagree), "examples": [list(map(str, d)) for d in disagree[:10]],
        "fast_share": sum(v.details.get("path") == "fast" for v in fast) / len(rows),
        "math_per_s": per_s, "math_without_fast_path_per_s": len(rows) / slow_s,
        "math_verify_per_s": mv_math_rate, "same_moment": same, "ratio_vs_math_verify": same["ratio"]["median"],
        "ratio_vs_math_verify_wall_best_vs_cpu_median": per_s / mv_math_rate if per_s else None,
    }
    out["meets_target"] = out["disagreements"] == 0 and (out["ratio_vs_math_verify"] or 0) >= MATH_FAST_TARGET
    print(f"math fast path: {out['disagreements']} disagreements on {len(rows):,} rows, "
          f"{out['ratio_vs_math_verify'] or 0:.1f}x math-verify", file=sys.stderr)
    return out


def _count(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


# --- report ------------------------------------------------------------------------------------------

def _same(report: dict[str, Any]) -> str:
    r = report["verifiers"].get("math", {})
    x = r.get("ratio_vs_math_verify_same_corpus")
    return "n/a" if x is None else f"{x:.2f}× math-verify"


def to_markdown(report: dict[str, Any]) -> str:
    m, mv, mm = report["machine"], report["math_verify_baseline"], report["math_verify_baseline_math500"]
    lines = [
        "# Verifier throughput and worst-case latency",
        "",
        f"Recorded {m['date_utc']} by `python benchmarks/bench_verifiers.py` "
        f"({report['settings']['completions']:,} completions per verifier, best of "
        f"{report['settings']['rounds']} interleaved rounds, seed {report['settings']['seed']}).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores (shared; 1-min load average {m['load_avg_1m_at_start']} at "
        f"start, {m.get('load_avg_1m_at_end', 'n/a')} at the end), {m['platform']}, Python {m['python']}, math-verify {m['math_verify']}, sympy {m['sympy']}. "
        f"All timings: {m['process']}. Throughput is wall time, best of the rounds (round 1 also times each "
        "call, later rounds do not; golds repeat across rows, so later rounds see the verifiers' gold caches "
        "warm, as training does). The slowest realistic call is process CPU time in round 1 (cold caches), "
        "which a busy shared machine does not inflate; an adversarial input's time is likewise the CPU time "
        "of the call in a forked child (its wall time is in the JSON; a call still running after "
        f"{ADVERSARIAL_CAP_S:.0f} s of wall time is killed and recorded as such), re-timed once when between "
        "50 ms and 2 s (best kept). The math verifier's own deadline is wall time (0.9 s). Cyclic GC is off inside "
        "timed loops (as in `timeit`).",
        "",
        f"Baseline: math-verify `parse` + `verify` on the GSM8K-style corpus: **{mv['per_s']:,.0f} completions/s** "
        f"(slowest call {mv['worst_realistic_s'] * 1000:.1f} ms, accuracy {mv['accuracy']:.3f}). "
        "This is the figure the ratios below divide by.",
        "",
        f"On the first {mm['n']:,} rows of the MATH-500 corpus math-verify runs at {mm['per_s']:,.0f} completions/s "
        f"(CPU time, median of the rounds interleaved with `math`; slowest call {mm['worst_realistic_s'] * 1000:.0f} ms "
        f"in the untimed warm-up pass, cold caches; accuracy {mm['accuracy']:.3f}); the `math` row's figure "
        f"(wall time, best round, whole corpus) over that is {_same(report)}: not same-moment, see the next line.",
        "",
        _fast_line(report),
        "",
        "| verifier | corpus | completions/s | × math-verify | slowest realistic (ms) | slowest adversarial (ms) | "
        "worst adversarial case | accuracy | targets |",
        "|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for name, r in report["verifiers"].items():
        marks = []
        if "meets_ratio_target" in r:
            marks.append(f"≥{TARGET_RATIO:.0f}× {'PASS' if r['meets_ratio_target'] else 'FAIL'}")
        marks.append(f"≤{LATENCY_BOUND_S:.0f} s {'PASS' if r['meets_latency'] else 'FAIL'}")
        lines.append(
            f"| `{name}` | {r['corpus']} | {r['per_s']:,.0f} | {r['ratio_vs_math_verify']:.1f} | "
            f"{r['worst_realistic_s'] * 1000:.2f} | {r['worst_adversarial_s'] * 1000:.2f} | "
            f"{r['worst_adversarial_case']} | {r['accuracy']:.3f} | {', '.join(marks)} |")
    if report.get("vs_baseline"):
        lines += [""] + verifier_baseline.markdown(report["vs_baseline"], report["vs_baseline"]["commit"],
                                                   BASELINE_MIN_RATIO)
    lines += ["", "## Adversarial inputs: latency per verifier (ms)", ""]
    names = list(report["verifiers"])
    cases = list(next(iter(report["verifiers"].values()))["adversarial"]) if names else []
    lines.append("| case | " + " | ".join(f"`{n}`" for n in names) + " |")
    lines.append("|---|" + "---:|" * len(names))
    for case in cases:
        cells = [_ms(report["verifiers"][n]["adversarial"][case]) for n in names]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Corpora: `gsm8k` = GSM8K test problems answered as `<think>…</think>\\n<answer>N</answer>`, `#### N` "
        "(with and without `<<a=b>>` notes), `\\boxed{N}`, \"The answer is $1,234.\", `$N.00` in tags, wrong "
        "answers and truncated answers, gold as the full solution or the bare number; `countdown` = random "
        "3-4 number tasks with right, `= target`, Unicode-operator, wrong-value, reused-number, `**`, "
        "untagged and think-only answers; `math500` = MATH-500 reference solutions and `\\boxed{}` answers "
        "(right, wrong, missing); `mixed` = half GSM8K, half Countdown. Accuracy is the share of the corpus "
        "the verifier calls correct (the corpora hold deliberate wrong answers).",
        "",
    ]
    return "\n".join(lines)


def _fast_line(report: dict[str, Any]) -> str:
    f = report.get("math_fast_path")
    if not f:
        return ""
    s = f["same_moment"]
    r = s["ratio"]
    return (f"Math fast path: on the {f['rows']:,} MATH-500 corpus rows, `math` (fast path on) and `math` with "
            f"every pair sent to math-verify (`fast=False`) disagree on **{f['disagreements']}** rows; "
            f"{f['fast_share']:.1%} of rows take the fast path. Same moment (the first {s['n']:,} rows, `math` and "
            f"math-verify `parse`+`verify` in the same {s['rounds']} interleaved rounds, order flipped each round, "
            f"CPU time, caches warm): `math` {s['fast_us']['median']:.0f} µs/call [{s['fast_us']['min']:.0f}-"
            f"{s['fast_us']['max']:.0f}], math-verify {s['slow_us']['median']:,.0f} µs/call [{s['slow_us']['min']:,.0f}-"
            f"{s['slow_us']['max']:,.0f}]: **{r['median']:.1f}× math-verify alone** [{r['min']:.1f}-{r['max']:.1f}] "
            f"(1-min load {s['load_1m_before']} before, {s['load_1m_after']} after; without the fast path `math` "
            f"scores {f['math_without_fast_path_per_s']:,.0f}/s, one pass). "
            f"Target ≥{MATH_FAST_TARGET:.0f}× with 0 disagreements: {'PASS' if f['meets_target'] else 'FAIL'}.")


def _ms(entry: dict[str, Any]) -> str:
    if entry.get("timed_out"):
        return f"**>{entry['seconds'] * 1000:,.0f}** ({entry['reason']})"
    return f"{entry['seconds'] * 1000:.2f}"


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    mv = report["math_verify_baseline"]
    t = Table(title=f"Verifiers vs math-verify parse+verify ({mv['per_s']:,.0f}/s) — one core")
    for col in ("verifier", "corpus", "completions/s", "× math-verify", "slowest realistic ms",
                "slowest adversarial ms", "worst case", "targets"):
        t.add_column(col, justify="right" if "/" in col or "ms" in col or "×" in col else "left")
    for name, r in report["verifiers"].items():
        marks = []
        if "meets_ratio_target" in r:
            marks.append(f"≥{TARGET_RATIO:.0f}× {'PASS' if r['meets_ratio_target'] else 'FAIL'}")
        marks.append(f"≤1 s {'PASS' if r['meets_latency'] else 'FAIL'}")
        t.add_row(name, r["corpus"], f"{r['per_s']:,.0f}", f"{r['ratio_vs_math_verify']:.1f}",
                  f"{r['worst_realistic_s'] * 1000:.2f}", f"{r['worst_adversarial_s'] * 1000:.2f}",
                  r["worst_adversarial_case"], ", ".join(marks))
    Console(width=None if sys.stdout.isatty() else 170).print(t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1k completions, 1 round, print only (smoke run)")
    ap.add_argument("-n", type=int, default=None, help="completions per verifier (default 10000; 1000 with --quick)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds, best kept (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--baseline", default=verifier_baseline.BASELINE_COMMIT,
                    help="commit whose verifiers are timed side by side ('none': skip)")
    ap.add_argument("--math-rows", type=int, default=None, help="MATH-500 rows for math vs math-verify (default 2000; 200 with --quick)")
    ap.add_argument("--math-rounds", type=int, default=None, help="interleaved rounds of math vs math-verify (default 5; 2 with --quick)")
    ap.add_argument("--baseline-rounds", type=int, default=None, help="interleaved rounds against it (default 7; 3 with --quick)")
    harness.common_args(ap, quick=None)
    args = ap.parse_args(argv)
    bench = harness.start(__file__, args, argv)
    n = args.n or (1_000 if args.quick else 10_000)
    rounds = args.rounds or (1 if args.quick else 2)
    baseline = None if args.baseline.lower() == "none" else args.baseline
    report = run(n, rounds, args.seed, baseline, args.baseline_rounds or (3 if args.quick else 7),
                 min(n, args.math_rows or (200 if args.quick else 2_000)), args.math_rounds or (2 if args.quick else 5))
    print_table(report)
    bench.record(report, to_markdown(report).splitlines())
    failed = [name for name, r in report["verifiers"].items()
              if not r["meets_latency"] or r.get("meets_ratio_target") is False]
    if not report["math_fast_path"]["meets_target"]:
        failed.append("math fast path")
    for name, r in ((report.get("vs_baseline") or {}).get("verifiers") or {}).items():
        if not r["meets"]:
            failed.append(f"{name} vs {report['vs_baseline']['commit']}")
    if failed:
        print(f"targets missed by: {', '.join(failed)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
