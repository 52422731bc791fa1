"""GRPO learns: a short run on the embedded SmolLM2-135M-Instruct on CPU raises a reward measurably.

Task: Countdown prompts whose assistant pre-fill already holds the reasoning block and opens the
answer (``...</think>\\n<answer>``), reward ``format_soft`` (1 when the completion closes the answer
tag). The untrained model closes it in about 1 completion of 5 within 16 tokens (measured: 3 of 16),
so every group has reward variance and GRPO has a signal. With fixed seeds, LoRA r=8 and a high
learning rate, the mean reward of the last steps must exceed that of the first steps by a clear
margin. A completion that hits the token limit earns 0 (the truncation policy), so the rise also
needs the model to stop after the tag. This shows that the trainer moves the reward it is given; it
is a format reward, not a task: whether GRPO teaches a task is ``benchmarks/learning_run.py``'s
question (measured: docs/results/learning.md).
"""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from reasonkit.cli import main

pytestmark = pytest.mark.slow

PREFILL = "Let me solve this step by step.\n<think>\nI combine the numbers.\n</think>\n<answer>"
RECIPE = ["--dataset", "countdown", "--rewards", "format_soft", "--prefill", PREFILL, "--group-size", "8",
          "--prompts-per-step", "2", "--max-tokens", "16", "--learning-rate", "3e-3", "--lora-r", "8",
          "--lora-alpha", "16", "--lora-dropout", "0", "--dtype", "fp32", "--seed", "0", "--quiet"]
STEPS, WINDOW = 8, 3


def test_short_run_raises_format_reward(tmp_path, default_model_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", *RECIPE, "--max-steps", str(STEPS), "--output", str(out)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rewards = [r["reward"] for r in rows]
    assert len(rewards) == STEPS
    first = sum(rewards[:WINDOW]) / WINDOW
    last = sum(rewards[-WINDOW:]) / WINDOW
    print(f"format_soft reward by step: {[round(r, 2) for r in rewards]}; first {first:.2f} -> last {last:.2f}")
    assert last > first + 0.2, rewards
