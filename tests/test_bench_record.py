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
