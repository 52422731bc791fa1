"""GRPO learns a task: the README quick run (``train/quick-cpu.yaml``) on the embedded
SmolLM2-135M-Instruct on CPU raises the task's own reward within a few steps.

Task: one-digit products (reasoning-gym ``products``, difficulty 0), reward ``rg:products.exact`` alone —
the task's scorer without partial credit, no format term — so the reward can only rise when the answers
get right. The base
model answers about 2 % of these right at temperature 1 (``benchmarks/results/learning-survey.md``);
measured here (the products pilot of ``benchmarks/learning_run.py``, the same settings), 10 steps took
the mean reward of the first 3 steps from 0.000 to 0.083 over the last 3 (8 of 96 completions right).
The test asks for a rise of 0.03 (3 completions), and checks that the recorded completions show
answers the scorer credits (not only a closed tag).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from reasonkit.cli import main

pytestmark = pytest.mark.slow
pytest.importorskip("reasoning_gym")

RECIPE = Path(__file__).resolve().parents[1] / "train" / "quick-cpu.yaml"
STEPS, WINDOW = 10, 3


@pytest.mark.timeout(900)
def test_quick_run_raises_the_task_reward(tmp_path, default_model_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "--config", str(RECIPE), "--max-steps", str(STEPS), "--eval-steps", "0",
                                    "--log-completions-steps", "1", "--output", str(out), "--quiet"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rewards = [r["rewards/rg:products.exact"] for r in rows]
    assert len(rewards) == STEPS
    first = sum(rewards[:WINDOW]) / WINDOW
    last = sum(rewards[-WINDOW:]) / WINDOW
    print(f"rg:products reward by step: {[round(r, 3) for r in rewards]}; first {first:.3f} -> last {last:.3f}")
    assert last > first + 0.03, rewards
    assert "NO LEARNING SIGNAL" not in res.output
    logged = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    late = [c for c in logged if c["step"] > STEPS // 2]
    assert any(c["reward"] == 1.0 and "</answer>" in c["completion"] for c in late), late[:4]
