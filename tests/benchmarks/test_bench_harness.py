"""benchmarks/harness.py: the one machine schema, interleaved rounds with median and spread, the shared
flags, and the recorder that writes benchmarks/results/ only on an explicit full run (``--record``);
every script in benchmarks/ uses it, none edits sys.path, and the smoke runs listed in
benchmarks/README.md record nothing."""
from __future__ import annotations

import argparse
import ast
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bench_scripts import BENCHMARKS, load

harness = load("harness")
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if p.name not in ("harness.py", "verifier_corpus.py",
                                                                        "learning_analysis.py", "verifier_baseline.py",
                                                                        "verifier_adversarial.py",
                                                                        "countdown_demos.py"))


def _args(argv: list[str], results: Path, **defaults) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    for k, v in defaults.items():
        ap.add_argument(f"--{k}", default=v)
    harness.common_args(ap, rounds=3)
    ap.set_defaults(results=results)
    return ap.parse_args(argv)


# --- rounds, medians, spreads --------------------------------------------------------------------

class FakeClock:
    """A clock that each side's call advances by that side's next duration."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _sides(clock: FakeClock, durations: dict[str, list[float]], order: list[str]):
    def side(name):
        it = iter(durations[name])

        def go():
            order.append(name)
            clock.now += next(it)
        return go
    return {name: side(name) for name in durations}


@pytest.mark.parametrize("interleave, alternate, expected", [
    (True, False, ["a", "b", "c", "a", "b", "c", "a", "b", "c"]),
    (True, True, ["a", "b", "c", "c", "b", "a", "a", "b", "c"]),
    (False, False, ["a", "a", "a", "b", "b", "b", "c", "c", "c"]),
])
def test_rounds_order(interleave, alternate, expected):
    clock, order = FakeClock(), []
    sides = _sides(clock, {"a": [1, 1, 1], "b": [2, 2, 2], "c": [3, 3, 3]}, order)
    harness.rounds(sides, 3, interleave=interleave, alternate=alternate, clock=clock)
    assert order == expected


def test_rounds_median_spread_and_ratios_on_a_fake_clock():
    clock, order, seen = FakeClock(), [], []
    # round 2 ran on a machine twice as slow: both sides slowed alike, the per-round ratio stays 0.5
    sides = _sides(clock, {"base": [10.0, 20.0, 12.0], "fast": [5.0, 10.0, 7.5]}, order)
    out = harness.rounds(sides, 3, baseline="base", clock=clock, report=lambda n, r, t: seen.append((n, r, t)))
    assert out["base"] == {"seconds": [10.0, 20.0, 12.0], "median": 12.0, "min": 10.0, "max": 20.0,
                           "vs_baseline": 1.0, "round_ratios": [1.0, 1.0, 1.0],
                           "round_ratio": {"median": 1.0, "min": 1.0, "max": 1.0}}
    fast = out["fast"]
    assert fast["seconds"] == [5.0, 10.0, 7.5] and (fast["median"], fast["min"], fast["max"]) == (7.5, 5.0, 10.0)
    assert fast["vs_baseline"] == pytest.approx(0.625)
    assert fast["round_ratios"] == pytest.approx([0.5, 0.5, 0.625])
    assert fast["round_ratio"] == pytest.approx({"median": 0.5, "min": 0.5, "max": 0.625})
    assert seen[:2] == [("base", 0, 10.0), ("fast", 0, 5.0)] and len(seen) == 6


def test_a_side_that_returns_a_number_gives_its_own_time():
    clock = FakeClock()
    out = harness.rounds({"x": lambda: 0.25, "y": lambda: None}, 2, clock=clock)
    assert out["x"]["seconds"] == [0.25, 0.25] and out["y"]["seconds"] == [0.0, 0.0]


@pytest.mark.parametrize("values, expected", [
    ([3.0, 1.0, 2.0], {"median": 2.0, "min": 1.0, "max": 3.0}),
    ([4.0, 1.0], {"median": 2.5, "min": 1.0, "max": 4.0}),
    ([], {"median": None, "min": None, "max": None}),
])
def test_spread(values, expected):
    assert harness.spread(values) == expected


def test_bad_rounds_and_baseline_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        harness.rounds({"a": lambda: 1.0}, 0)
    with pytest.raises(ValueError, match="baseline 'z'"):
        harness.summarize({"a": [1.0]}, baseline="z")


# --- the machine ---------------------------------------------------------------------------------

def test_machine_schema():
    m = harness.machine()
    assert set(m) == {"cpu", "arch", "cores", "torch_cpu_capability", "memory_gib", "load_avg_before", "gpu",
                      "platform", "python", "versions", "git"}
    assert isinstance(m["cores"], int) and m["cores"] >= 1 and len(m["load_avg_before"]) == 3
    assert m["python"].count(".") == 2 and set(m["git"]) == {"commit", "dirty"}
    assert m["git"]["commit"] is None or re.fullmatch(r"[0-9a-f]{40}", m["git"]["commit"])
    assert all(isinstance(v, str) for v in m["versions"].values())
    line = harness.machine_line(m)
    assert line.startswith("Machine: ") and f"{m['cores']} cores" in line and "\n" not in line


# --- the recorder --------------------------------------------------------------------------------

def test_record_writes_one_schema_side_by_side(tmp_path, capsys):
    args = _args(["--record", "--suffix=-x"], tmp_path / "res", steps=4)
    run = harness.Run("benchmarks/bench_thing.py", args, ["--record", "--suffix=-x"], describe=False)
    md = run.record({"ratio": 0.5, "at": tmp_path}, ["# title", "", "| x |"])
    assert md == tmp_path / "res" / "thing-x.md" and md.read_text() == "# title\n\n| x |\n"
    saved = json.loads((tmp_path / "res" / "thing-x.json").read_text())
    assert list(saved) == list(harness.SCHEMA)
    assert saved["benchmark"] == "thing" and saved["command"] == "python benchmarks/bench_thing.py --record --suffix=-x"
    assert saved["results"] == {"ratio": 0.5, "at": str(tmp_path)} and saved["settings"]["steps"] == 4
    assert "record" not in saved["settings"] and set(saved["machine"]) >= {"cpu", "cores", "git"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", saved["recorded_at"])
    assert harness.load(tmp_path / "res" / "thing-x.json") == saved["results"]
    assert "recorded" in capsys.readouterr().out


def test_results_of_reads_the_layout_before_the_harness():
    flat = {"command": "x", "rounds": {"new": []}}
    assert harness.results_of(flat) is flat
    assert harness.results_of({"recorded_at": "t", "results": {"a": 1}}) == {"a": 1}


def test_a_stem_with_a_dot_keeps_it(tmp_path):
    """``--suffix=-beta0.04``: with_suffix would have written learning-beta0.json and overwritten another run's."""
    harness.write(tmp_path / "learning-beta0.04", {"x": 1}, ["# t"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["learning-beta0.04.json", "learning-beta0.04.md"]
    assert harness.path(tmp_path / "a.b", ".png").name == "a.b.png"


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    """benchmarks/results/ replaced by a temporary folder."""
    monkeypatch.setattr(harness, "RESULTS", tmp_path / "results")
    return tmp_path / "results"


@pytest.mark.parametrize("argv, written", [
    ([], False),                       # no --record: a smoke run, prints only
    (["--no-record"], False),
    (["--record"], True),              # the explicit full run
])
def test_only_an_explicit_full_run_writes_the_results_folder(results_dir, argv, written, capsys):
    args = _args(argv, results_dir)
    run = harness.Run("bench_x.py", args, argv, describe=False)
    assert (run.stem() is not None) is written
    out = run.record({"a": 1}, ["# x"])
    assert (out is not None) is written and (results_dir / "x.json").exists() is written
    if not written:
        assert "not recorded" in capsys.readouterr().out and not results_dir.exists()


def test_a_folder_inside_the_results_folder_is_the_results_folder(results_dir):
    run = harness.Run("bench_x.py", _args([], results_dir / "gpu_check"), [], describe=False)
    assert run.record({"a": 1}, ["# x"]) is None and not results_dir.exists()


def test_another_folder_is_written_without_record(results_dir, tmp_path):
    run = harness.Run("bench_x.py", _args([], tmp_path / "elsewhere"), [], describe=False)
    assert run.record({"a": 1}, ["# x"]) == tmp_path / "elsewhere" / "x.md"


def test_a_recorded_smoke_run_is_refused(results_dir, capsys):
    args = _args(["--record"], results_dir)
    args.quick = True
    with pytest.raises(SystemExit) as exc:
        harness.start("bench_x.py", args, ["--record", "--quick"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and "--record with --quick" in err
    assert not results_dir.exists()


def test_a_recorded_smoke_run_is_refused_from_the_command_line():
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "bench_view.py"), "--quick", "--record"],
                          capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "--record with --quick" in lines[0], proc.stderr


# --- every script uses it ------------------------------------------------------------------------

@pytest.mark.parametrize("script", sorted(BENCHMARKS.glob("*.py")), ids=lambda p: p.name)
def test_no_script_edits_sys_path(script):
    tree = ast.parse(script.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "path"
             and isinstance(n.value, ast.Name) and n.value.id == "sys"]
    assert not calls, f"{script.name} touches sys.path (line {calls[0].lineno})"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_imports_the_harness_and_writes_no_results_itself(script):
    tree = ast.parse(script.read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "harness" in imported
    text = script.read_text()
    # the machine is described, and results written, by the harness only
    assert "def machine(" not in text and "platform.machine()" not in text
    assert '/ "results"' not in text and "write_text(json.dumps" not in text


# --- the README's smoke runs record nothing; its full runs do -----------------------------------

def _readme_rows() -> list[tuple[str, str, str]]:
    rows = []
    for line in (BENCHMARKS / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`(\w+\.py)`", cells[0]) if len(cells) >= 5 else None
        if m:
            first = lambda cell: re.search(r"`([^`]*)`", cell).group(1)  # noqa: E731
            rows.append((m.group(1), first(cells[2]), first(cells[3])))
    return rows


def _argv(script: str, command: str) -> list[str]:
    words = shlex.split(command)
    return words[2:] if words[:2] == ["python", f"benchmarks/{script}"] else words


class _Stop(Exception):
    pass


def _run_of(script: str, argv: list[str], monkeypatch) -> harness.Run:
    """The Run a script builds for ``argv`` (stopped right there: nothing is measured)."""
    got = []

    def start(file, args, argv=None, benchmark=None):
        harness.check_args(args)
        got.append(harness.Run(file, args, argv, benchmark, describe=False))
        raise _Stop

    monkeypatch.setattr(harness, "start", start)
    with pytest.raises(_Stop):
        load(script.removesuffix(".py")).main(argv)
    return got[0]


def test_the_readme_table_lists_every_script():
    listed = {row[0] for row in _readme_rows()}
    assert listed == {p.name for p in SCRIPTS}


@pytest.mark.parametrize("script, full, smoke", _readme_rows(), ids=[row[0] for row in _readme_rows()])
def test_readme_smoke_runs_record_nothing_and_full_runs_record(script, full, smoke, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # scripts that make a work folder in the current one make it here
    if script in ("learning_run.py", "learning_countdown.py", "hack_alarm.py"):
        pytest.importorskip("reasoning_gym")
    assert "--record" in full and "--record" not in smoke
    assert _run_of(script, _argv(script, smoke), monkeypatch).stem() is None
    assert _run_of(script, _argv(script, full), monkeypatch).stem() is not None


# --- bench_grpo's own flags and arithmetic ---------------------------------------------------------

@pytest.mark.parametrize("argv, needle", [
    (["--micro-batch", "3"], "--micro-batch"),
    (["--micro-batch", "-8"], "--micro-batch"),
    (["--sides", "reasonkit,vllm"], "--sides vllm"),
    (["--rounds", "0"], "--rounds 0"),
])
def test_bench_grpo_refuses_bad_flags_in_one_line(argv, needle):
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "bench_grpo.py"), *argv],
                          capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0] and "Traceback" not in proc.stderr
    if argv[0] == "--sides":
        assert "reasonkit-vllm-adapter" in lines[0]


def test_bench_grpo_rounds_merge_and_give_per_round_ratios():
    bench_grpo = load("bench_grpo")

    def run(steps, rollouts):
        return {"step_seconds": steps, "rollout_seconds": rollouts, "completion_length": [60.0] * len(steps),
                "s_per_step": bench_grpo._median(steps[1:]), "peak_rss_gb": 1.0 + steps[0] / 100,
                "peak_rss_children_gb": 0.0, "peak_rss_total_gb": 1.0 + steps[0] / 100}

    # round 2 ran on a machine twice as slow: both sides slowed alike, the per-round ratio does not move
    side = bench_grpo.merge_rounds([run([50, 4, 5, 6], [9, 2, 3, 3]), run([70, 8, 10, 12], [9, 4, 6, 6])])
    ref = bench_grpo.merge_rounds([run([60, 10, 10, 10], [9, 5, 5, 5]), run([80, 20, 20, 20], [9, 9, 9, 9])])
    assert side["step_seconds"] == [50, 4, 5, 6, 70, 8, 10, 12] and side["rounds"] == [[50, 4, 5, 6], [70, 8, 10, 12]]
    assert side["s_per_step"] == 7.0 and (side["s_min"], side["s_max"]) == (4, 12)  # warm-ups 50, 70 left out
    assert side["rollout_median"] == 3.5 and side["round_medians"] == [5, 10]
    assert side["peak_rss_total_gb"] == 1.7  # the larger round
    assert bench_grpo.ratio_of(side, ref) == (0.5, 0.5, 0.5)
    one = bench_grpo.merge_rounds([run([50, 4, 5, 6], [9, 2, 3, 3])])
    ref1 = bench_grpo.merge_rounds([run([60, 10, 10, 10], [9, 5, 5, 5])])
    assert bench_grpo.ratio_of(one, ref1) == (0.5, 0.4, 0.6)  # one round: step-level spread


def test_save_state_writes_a_work_folder_and_refuses_the_results(tmp_path):
    out = harness.save_state(tmp_path / "w", "minutes.json", {"rft": {"wall": 1.5}, "p": Path("x")})
    assert json.loads(out.read_text()) == {"rft": {"wall": 1.5}, "p": "x"}
    with pytest.raises(SystemExit) as exc:
        harness.save_state(harness.RESULTS, "minutes.json", {})
    assert exc.value.code == 2 and not (harness.RESULTS / "minutes.json").exists()
