"""End to end on the embedded SmolLM2-135M-Instruct: ``reasonkit train`` (CliRunner) for a few steps,
then ``reasonkit eval --lora OUTPUT/checkpoint-N`` on both backends, and ``--resume`` from a
checkpoint reproduces the next step of the uninterrupted run (generation included: sampling is
seeded by config seed + step, so the resumed run draws the same completions).
"""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from reasonkit.cli import main

pytestmark = pytest.mark.slow

# The answer tag is pre-filled so the 135M model closes it in some completions (format_soft reward):
# rewards vary within groups, so every step really updates the adapter.
PREFILL = "Let me solve this step by step.\n<think>\nI combine the numbers.\n</think>\n<answer>"
TRAIN = ["train", "--dataset", "countdown", "--rewards", "format_soft", "--prefill", PREFILL, "--group-size", "4",
         "--prompts-per-step", "2", "--max-tokens", "16", "--learning-rate", "1e-3", "--save-steps", "1",
         "--seed", "3", "--quiet", "--dtype", "fp32", "--log-completions-steps", "1",
         "--score-truncated"]  # 16 tokens: the run's mechanics are under test, not the truncation policy


def _metrics(run):
    return {r["step"]: r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, default_model_path):
    run = tmp_path_factory.mktemp("grpo-e2e") / "run"
    res = CliRunner().invoke(main, [*TRAIN, "--max-steps", "3", "--output", str(run)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "done: 3 steps" in res.output
    return run


def test_train_writes_run_directory(trained):
    for name in ("config.yaml", "metrics.jsonl", "completions.jsonl"):
        assert (trained / name).is_file(), name
    assert sorted(p.name for p in trained.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]
    import yaml

    cfg = yaml.safe_load((trained / "config.yaml").read_text())
    assert cfg["group_size"] == 4 and cfg["max_tokens"] == 16 and cfg["lora_r"] == 8 and cfg["prefill"] == PREFILL
    m = _metrics(trained)
    assert sorted(m) == [1, 2, 3]
    for row in m.values():
        assert 0 <= row["reward"] <= 1 and "rewards/format_soft" in row
        assert 0 < row["completion_length"] <= 16 and 0 <= row["truncated"] <= 1
    assert any(row["grad_norm"] > 0 for row in m.values())  # some step had reward variance
    # LoRA actually moved: the final adapter's B matrices are non-zero
    sd = load_file(str(trained / "checkpoint-3" / "adapter_model.safetensors"))
    assert any("lora_B" in k and v.abs().max() > 0 for k, v in sd.items())


def test_resume_reproduces_the_next_step(trained, tmp_path):
    other = tmp_path / "resumed"
    other.mkdir()
    shutil.copytree(trained / "checkpoint-2", other / "checkpoint-2")
    res = CliRunner().invoke(main, [*TRAIN, "--max-steps", "3", "--output", str(other), "--resume"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    a, b = _metrics(trained)[3], _metrics(other)[3]
    for key in ("reward", "completion_length", "truncated", "loss", "grad_norm"):
        assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), key
    wa = load_file(str(trained / "checkpoint-3" / "adapter_model.safetensors"))
    wb = load_file(str(other / "checkpoint-3" / "adapter_model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-4, atol=1e-6)


def _eval(tmp_path, ckpt, backend):
    out = tmp_path / f"eval-{backend}"
    res = CliRunner().invoke(main, ["eval", "--lora", f"grpo={ckpt}", "-b", "countdown", "--backend", backend,
                                    "--limit", "2", "--max-tokens", "16", "--output", str(out), "--quiet"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    adapters = {r.get("adapter") for r in rows}
    assert "grpo" in adapters, adapters
    return rows


def test_eval_loads_checkpoint_hf(trained, tmp_path):
    _eval(tmp_path, trained / "checkpoint-2", "hf")


@pytest.mark.vllm
def test_eval_loads_checkpoint_vllm(trained, tmp_path, monkeypatch):
    pytest.importorskip("vllm")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    _eval(tmp_path, trained / "checkpoint-2", "vllm")
