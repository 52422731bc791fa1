"""DDP: 2 processes x half the batch give the same update as 1 process x the whole batch.

``accelerate launch --multi_gpu --num_processes 2`` runs two gloo processes on CPU here (on GPUs it
is NCCL, same code). The worker (tests/ddp_worker.py) takes generation out (fixed completions and
rewards), runs one optimiser update for several loss types, and saves the LoRA weights; here the two
launches are compared parameter by parameter. Tolerance: rtol 1e-4 / atol 1e-6 in fp32 (the
all-reduce sums in a different order than one process does; the observed difference is ~1e-7).
A fourth run repeats dapo with gradient checkpointing, where the forward goes through the DDP wrapper
and DDP's all-reduce (without it the trainer's shared-prefix forward averages gradients by hand).
Loss types whose normaliser is global (dapo: tokens over all processes; grpo: per sequence;
dr_grpo: constant) must match; bnpo is a per-process token mean by definition (as in TRL) and is
not expected to.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

WORKER = Path(__file__).resolve().parents[1] / "ddp_worker.py"
LOSSES = ("dapo", "grpo", "dr_grpo", "dapo:gc")  # ":gc": gradient checkpointing, i.e. DDP's own all-reduce


def _run(cmd, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONFAULTHANDLER": "1"}  # a rank that aborts prints where it was
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]


def test_two_processes_match_one_process(tiny_model_dir, tmp_path):
    if shutil.which("accelerate") is None:
        pytest.skip("accelerate launcher not on PATH")
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    args = ["--model", tiny_model_dir, "--loss-types", ",".join(LOSSES)]
    _run([sys.executable, str(WORKER), "--out", str(single), *args], tmp_path)
    _run(["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no", str(WORKER), "--out", str(ddp), *args], tmp_path)
    base = None
    for loss in LOSSES:
        a = torch.load(single / f"{loss.replace(':', '-')}.pt", weights_only=False)
        b = torch.load(ddp / f"{loss.replace(':', '-')}.pt", weights_only=False)
        assert a["world"] == 1 and b["world"] == 2
        assert a["lora"].keys() == b["lora"].keys()
        moved = 0
        for k in a["lora"]:
            torch.testing.assert_close(b["lora"][k], a["lora"][k], rtol=1e-4, atol=1e-6, msg=f"{loss} {k}")
            if "lora_B" in k:
                moved += int(a["lora"][k].abs().max() > 0)
        assert moved > 0, f"{loss}: the update did not move the adapter"
        assert b["metrics"]["reward"] == pytest.approx(a["metrics"]["reward"])
        assert b["metrics"]["zero_variance"] == pytest.approx(a["metrics"]["zero_variance"]) == 0.25
        assert b["metrics"]["kl"] == pytest.approx(a["metrics"]["kl"], rel=1e-4, abs=1e-7)
        if loss == "dapo:gc":  # same loss as "dapo" through the other forward / all-reduce path
            first = torch.load(single / "dapo.pt", weights_only=False)["lora"]
            for k in first:
                torch.testing.assert_close(b["lora"][k], first[k], rtol=1e-4, atol=1e-6, msg=f"gc vs shared {k}")
        elif base is not None:  # different normalisers give different updates (the test can tell them apart)
            assert any(not torch.allclose(a["lora"][k], base[k]) for k in base if "lora_B" in k)
        base = a["lora"]
    # both processes wrote their RNG state into the shared checkpoint
    ck = ddp / "run-dapo" / "checkpoint-1"
    assert (ck / "rng_state_0.pth").is_file() and (ck / "rng_state_1.pth").is_file()
    assert (ck / "adapter_model.safetensors").is_file()
