"""benchmarks/bench_busy.py without running the job: its flags, the child environment of each
setting, and the ratio / spread summary."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from bench_scripts import load

ROOT = Path(__file__).resolve().parents[2]
bench_busy = load("bench_busy")


@pytest.mark.parametrize("args, needle", [
    (["--rounds", "0"], "--rounds and --limit must be at least 1"),
    (["--settings", "fast"], "--settings: new, old or new,old"),
    (["--cpus", "a,b"], "give CPU ids"),
    (["--cpus", "9999"], "this process may only use"),
])
def test_bad_flags_are_refused(args, needle):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_busy.py"), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr


def test_child_environment_of_each_setting(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    new = bench_busy.job_env("new", [0, 1])
    assert not {"OMP_NUM_THREADS", "OMP_WAIT_POLICY", "REASONKIT_THREADS"} & set(new)  # reasonkit's own policy
    old = bench_busy.job_env("old", [0, 1])
    assert old["REASONKIT_THREADS"] == "2" and old["OMP_WAIT_POLICY"] == "" and "OMP_NUM_THREADS" not in old


def test_summary_gives_median_ratio_and_spread():
    rows = [{"quiet": {"wall_s": q}, "busy": {"wall_s": b}, "ratio": round(b / q, 2)}
            for q, b in ((50.0, 80.0), (60.0, 150.0), (55.0, 99.0))]
    s = bench_busy.summarize({"new": rows})["new"]
    assert s == {"median_ratio": 1.8, "min_ratio": 1.6, "max_ratio": 2.5, "median_quiet_s": 55.0,
                 "median_busy_s": 99.0}


@pytest.mark.parametrize("load, noisy", [(0.1, False), (0.9, False), (1.5, True), (26.8, True)])
def test_quiet_runs_on_a_loaded_machine_are_marked_not_quiet(load, noisy):
    rows = [{"round": 1, "quiet": {"wall_s": 50.0, "load_before": load, "backend": "hf"},
             "busy": {"wall_s": 90.0, "load_before": load + 1, "backend": "hf"},
             "ratio": 1.8}]
    s = bench_busy.summarize({"new": rows}, cpus=2)["new"]
    assert s["noisy"] is noisy and s["max_load_before_quiet"] == load
    lines = bench_busy.table(argparse.Namespace(limit=16, backend="auto", busy="python", rounds=1), [0, 1],
                             {"new": rows}, {"new": s}, "2026-01-01 00:00", "cpu")
    verdict = lines[-3]
    assert ("not measured: the quiet runs were not quiet" in verdict) is noisy
    assert verdict.endswith("| met |") is (not noisy)
