"""benchmarks/record.py: a recorded result is its JSON and its Markdown, written together."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import record  # noqa: E402


def test_write_puts_json_and_md_side_by_side(tmp_path, capsys):
    md = record.write(tmp_path / "sub" / "thing", {"a": 1, "b": [0.5]}, ["# title", "", "| x |"])
    assert md == tmp_path / "sub" / "thing.md"
    assert json.loads((tmp_path / "sub" / "thing.json").read_text()) == {"a": 1, "b": [0.5]}
    assert md.read_text() == "# title\n\n| x |\n"
    assert "recorded" in capsys.readouterr().out


def test_bench_grpo_refuses_a_micro_batch_that_does_not_divide_the_step():
    for bad in ("3", "-8"):
        proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_grpo.py"), "--micro-batch", bad],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "--micro-batch" in lines[0] and "Traceback" not in proc.stderr


def test_bench_grpo_refuses_an_unknown_side():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_grpo.py"), "--sides", "reasonkit,vllm"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--sides vllm" in lines[0] and "reasonkit-vllm-adapter" in lines[0]


def test_bench_grpo_refuses_zero_rounds():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_grpo.py"), "--rounds", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--rounds 0" in lines[0] and "Traceback" not in proc.stderr


def test_bench_grpo_rounds_merge_and_give_per_round_ratios():
    import bench_grpo

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


def test_a_stem_with_a_dot_keeps_it(tmp_path):
    """``--suffix=-beta0.04``: with_suffix would have written learning-beta0.json and overwritten another run's."""
    record.write(tmp_path / "learning-beta0.04", {"x": 1}, ["# t"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["learning-beta0.04.json", "learning-beta0.04.md"]
    assert record.path(tmp_path / "a.b", ".png").name == "a.b.png"
