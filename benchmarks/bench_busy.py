"""The main job on a busy machine: ``reasonkit eval --benchmark gsm8k --limit 16`` quiet and with one
competing busy process, on the same CPUs (issue 28, item 6; goal: at most 2.5x slower).

Each round runs the job twice in fresh processes and fresh output directories, once quiet and once
while a competing process spins on the same CPUs (``python -c 'while True: pass'`` or ``yes >
/dev/null``, pinned with the job to ``--cpus``, default: every CPU this process may use); the order
alternates between rounds so that drifting background load falls on both sides. Reported per
round: wall seconds of each run, the ratio busy / quiet, the backend the job chose and the 1-minute
load average before each run; over the rounds: the median ratio and its spread (min-max).

``--settings new,old`` adds the previous behaviour as a second setting (torch's default thread count
and OpenMP's default wait policy: ``REASONKIT_THREADS`` = all CPUs, ``OMP_WAIT_POLICY`` and
``KMP_BLOCKTIME`` set empty so that reasonkit leaves OpenMP's defaults) to show what the policy of
``reasonkit/threads.py`` changes.

    python benchmarks/bench_busy.py --record             # 3 rounds, recorded
    python benchmarks/bench_busy.py --rounds 1 --limit 2  # smoke run: prints only

With ``--record`` writes ``benchmarks/results/busy.md`` and ``.json`` (``benchmarks/harness.py``). The machine must be
otherwise idle for a clean figure: the load average before each run is in the table, and a setting
whose quiet runs started with more than ``NOISY_SHARE`` of the CPUs busy (sampled from /proc/stat
over 2 s just before the run; the 1-minute load average still holds this script's previous busy run)
is marked *not quiet* (its ratio compares two busy runs, not a quiet and a busy one). ``--render-only`` rewrites the
Markdown table from the recorded JSON (``--results``/``busy{--suffix}.json``) without measuring.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness  # benchmarks/harness.py

GOAL = 2.5
NOISY_SHARE = 0.25  # share of the CPUs busy with other work just before a quiet run above which it was not quiet


def busy_share(seconds: float = 2.0) -> float:
    """The share of the machine's CPU time spent busy over ``seconds`` (from /proc/stat), measured just
    before a run: what other work takes *now*. The 1-minute load average is not used for the verdict
    because it still holds the previous (busy) run of this script for minutes after it ended."""
    def sample():
        with open("/proc/stat") as fh:
            v = [int(x) for x in fh.readline().split()[1:]]
        return sum(v), v[3] + (v[4] if len(v) > 4 else 0)  # total, idle + iowait

    (t0, i0) = sample()
    time.sleep(seconds)
    (t1, i1) = sample()
    return round(1 - (i1 - i0) / max(1, t1 - t0), 3)
BUSY = {"python": [sys.executable, "-c", "while True: pass"], "yes": ["sh", "-c", "exec yes > /dev/null"]}
CLEARED = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME", "REASONKIT_THREADS", "MKL_NUM_THREADS")


def job_env(setting: str, cpus: list[int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    if setting == "old":
        env.update(REASONKIT_THREADS=str(len(cpus)), OMP_WAIT_POLICY="", KMP_BLOCKTIME="")
    return env


def run_job(args, setting: str, cpus: list[int], out: Path) -> dict:
    cmd = [sys.executable, "-m", "reasonkit", "eval", "--benchmark", "gsm8k", "--limit", str(args.limit),
           "--backend", args.backend, "-o", str(out), "-q"]
    load, share = os.getloadavg()[0], busy_share()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=job_env(setting, cpus), capture_output=True, text=True,
                          preexec_fn=lambda: os.sched_setaffinity(0, cpus))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"the job failed (exit {proc.returncode}): {proc.stderr.strip()[-600:]}")
    from reasonkit.eval.store import read_summary

    summary = read_summary(out / "summary.json")
    return {"wall_s": round(wall, 1), "backend": summary.backend, "load_before": round(load, 2), "busy_share_before": share,
            "tokens": summary.timing.get("completion_tokens")}


def start_busy(kind: str, cpus: list[int]) -> subprocess.Popen:
    return subprocess.Popen(BUSY[kind], preexec_fn=lambda: os.sched_setaffinity(0, cpus), start_new_session=True)


def stop_busy(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)


def measure(args, cpus: list[int]) -> dict:
    results: dict[str, list[dict]] = {s: [] for s in args.settings}
    with tempfile.TemporaryDirectory(prefix="bench-busy-") as tmp:
        n = 0
        for r in range(args.rounds):
            for setting in args.settings:
                order = ("quiet", "busy") if r % 2 == 0 else ("busy", "quiet")
                row = {"round": r + 1}
                for side in order:
                    n += 1
                    busy = start_busy(args.busy, cpus) if side == "busy" else None
                    try:
                        if busy:
                            time.sleep(1.0)  # let the competitor take its share first
                        row[side] = run_job(args, setting, cpus, Path(tmp) / f"run-{n}")
                    finally:
                        if busy:
                            stop_busy(busy)
                row["ratio"] = round(row["busy"]["wall_s"] / row["quiet"]["wall_s"], 2)
                print(f"[{setting}] round {r + 1}: quiet {row['quiet']['wall_s']} s, busy {row['busy']['wall_s']} s, "
                      f"ratio {row['ratio']}", flush=True)
                results[setting].append(row)
    return results


def summarize(results: dict[str, list[dict]], cpus: int | None = None) -> dict[str, dict]:
    """Median ratio, spread, median seconds per setting; with ``cpus``, also the highest load average
    before a quiet run and whether it makes the setting *not quiet* (see the module docstring)."""
    out = {}
    for setting, rows in results.items():
        ratios = harness.spread([r["ratio"] for r in rows])
        out[setting] = {"median_ratio": round(ratios["median"], 2), "min_ratio": ratios["min"],
                        "max_ratio": ratios["max"],
                        "median_quiet_s": round(harness.spread([r["quiet"]["wall_s"] for r in rows])["median"], 1),
                        "median_busy_s": round(harness.spread([r["busy"]["wall_s"] for r in rows])["median"], 1)}
        if cpus:
            load = max(r["quiet"].get("load_before", 0.0) for r in rows)
            shares = [r["quiet"]["busy_share_before"] for r in rows if "busy_share_before" in r["quiet"]]
            share = max(shares) if shares else None  # records older than the /proc/stat sample: load average
            noisy = share > NOISY_SHARE if share is not None else load > 0.5 * cpus
            out[setting].update(max_load_before_quiet=load, max_busy_share_before_quiet=share, noisy=noisy)
    return out


def table(args, cpus, results, summary, when: str | None = None, cpu: str | None = None) -> list[str]:
    when = when or f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M}"
    lines = ["# The main job on a busy machine", "",
             f"`reasonkit eval --benchmark gsm8k --limit {args.limit} --backend {args.backend}`, quiet and with one "
             f"competing busy process (`{args.busy}`) on the same {len(cpus)} CPU(s) {cpus}; {args.rounds} "
             f"interleaved round(s); CPU: {cpu or harness.cpu_model('unknown')}; recorded "
             f"{when} UTC by `benchmarks/bench_busy.py`.", "",
             "| setting | round | quiet s | busy s | ratio | backend | load before (quiet / busy) | CPU busy just "
             "before quiet |", "|---|---|---|---|---|---|---|---|"]
    for setting, rows in results.items():
        for r in rows:
            lines.append(f"| {setting} | {r['round']} | {r['quiet']['wall_s']} | {r['busy']['wall_s']} | "
                         f"{r['ratio']} | {r['quiet']['backend']} | {r['quiet']['load_before']} / "
                         f"{r['busy']['load_before']} | {r['quiet'].get('busy_share_before', '-')} |")
    lines += ["", "| setting | median ratio | spread (min-max) | median quiet s | median busy s | goal <= "
              f"{GOAL}x |", "|---|---|---|---|---|---|"]
    for setting, s in summary.items():
        met = "met" if s["median_ratio"] <= GOAL else "not met"
        if s.get("noisy"):
            met = (f"not measured: the quiet runs were not quiet (up to {s.get('max_busy_share_before_quiet')} of the "
                   f"CPUs busy, load average up to {s['max_load_before_quiet']}, just before them)")
        lines.append(f"| {setting} | {s['median_ratio']} | {s['min_ratio']}-{s['max_ratio']} | {s['median_quiet_s']} "
                     f"| {s['median_busy_s']} | {met} |")
    lines += ["", "`new`: reasonkit's policy (reasonkit/threads.py: torch threads = idle CPUs, OpenMP passive "
              "wait). `old`: torch's default threads and OpenMP's default wait policy. \"CPU busy just before quiet\" "
              f"is the share of the machine's CPU time in use over 2 s before each quiet run (/proc/stat); above "
              f"{NOISY_SHARE} other work shared the machine and the ratio is marked not measured. The 1-minute load "
              "average is shown too, but it still holds this script's previous busy run."]
    return lines


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=16)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--busy", choices=sorted(BUSY), default="python")
    ap.add_argument("--cpus", default=None, help="CPU ids for the job and the competitor, e.g. 0,1 (default: all "
                    "this process may use)")
    ap.add_argument("--settings", default="new", help="new, old or new,old")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite busy.md in --results from its busy.json; no measurement")
    harness.common_args(ap, rounds=3, quick=None)
    args = ap.parse_args(argv)
    if args.render_only:
        return render(args.results / f"busy{args.suffix}")
    if args.rounds < 1 or args.limit < 1:
        harness.fail("--rounds and --limit must be at least 1")
    args.settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    if not args.settings or set(args.settings) - {"new", "old"}:
        harness.fail("--settings: new, old or new,old")
    allowed = sorted(os.sched_getaffinity(0))
    try:
        cpus = [int(c) for c in args.cpus.split(",")] if args.cpus else allowed
    except ValueError:
        harness.fail(f"--cpus {args.cpus!r}: give CPU ids separated by commas")
    if set(cpus) - set(allowed):
        harness.fail(f"--cpus {args.cpus}: this process may only use {allowed}")
    bench = harness.start(__file__, args, argv)
    results = measure(args, cpus)
    summary = summarize(results, len(cpus))
    when = f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M}"
    lines = table(args, cpus, results, summary, when, bench.machine["cpu"])
    print("\n".join(lines))
    bench.record({"job": f"reasonkit eval --benchmark gsm8k --limit {args.limit} --backend {args.backend}",
                  "limit": args.limit, "backend": args.backend, "busy": args.busy, "cpus": cpus,
                  "recorded": when, "rounds": results, "summary": summary, "goal_ratio": GOAL},
                 lines + ["", harness.machine_line(bench.machine)])


def render(out: Path) -> None:
    """Rewrite ``out.md`` from ``out.json`` (the figures as measured; the summary recomputed). Reads
    both the harness's schema and the flat one recorded before it."""
    import argparse as _ap

    whole = json.loads(harness.path(out, ".json").read_text())
    data = harness.results_of(whole)  # the same object: a change to it is a change to ``whole``
    words = (data.get("job") or data["command"]).split()
    args = _ap.Namespace(limit=int(data.get("limit") or words[words.index("--limit") + 1]),
                         backend=data.get("backend") or words[words.index("--backend") + 1], busy=data["busy"],
                         rounds=max(len(rows) for rows in data["rounds"].values()))
    when = data.get("recorded") or \
        f"{dt.datetime.fromtimestamp(harness.path(out, '.json').stat().st_mtime, dt.timezone.utc):%Y-%m-%d %H:%M}"
    data["summary"] = summarize(data["rounds"], len(data["cpus"]))
    data["recorded"] = when
    machine = whole.get("machine") if "recorded_at" in whole else None
    lines = table(args, data["cpus"], data["rounds"], data["summary"], when,
                  machine["cpu"] if machine else data.get("cpu_model"))
    print("\n".join(lines))
    harness.write(out, whole, lines + (["", harness.machine_line(machine)] if machine else []))


if __name__ == "__main__":
    main()
