"""DeepSpeed ZeRO-2, ZeRO-3 and FSDP2 with 2 processes on this CPU machine (gloo), launched the way a user
launches them: ``accelerate launch --config_file train/accelerate/<engine>.yaml --num_processes 2``.

1. Equivalence (as TRL's invariant tests do it): tests/dist_worker.py takes generation out (the fixed
   batch of tests/ddp_worker.py), runs 2 optimiser steps with gradient accumulation 2 (2 micro-batches
   per process and update), beta 0.04 (reference log-probs with the adapter disabled) and the loss
   types dapo (the default) and grpo, and writes a checkpoint; the adapter each engine saves must
   equal the one process's, and so must the gradient norm of every step. The norm pins the gradient
   scale: Adam's update barely depends on it, so a 1/GA-too-small gradient (dapo under DeepSpeed
   without the x GA factor) would still give close weights but half the norm. Tolerances (fp32):
   gradient norm rtol 1e-4; weights atol 1e-4, rtol 1e-3 — Adam's first steps divide each gradient
   entry by its own magnitude, so reduction-order noise of ~1e-7 in a near-zero entry becomes up to
   ~5e-5 of weight (observed) against a typical move of 2e-2.
2. ZeRO-3 through the whole loop: hf rollouts generated from the gathered parameters, checkpoints, and
   ``--resume`` from step 1 giving the uninterrupted run's step 2 (metrics and adapter); the
   adapter loads in ``reasonkit eval --lora``.
3. Full fine-tuning (lora_r 0) under ZeRO-3 and FSDP2: 2 steps, a model ``reasonkit eval --model`` loads.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().parents[1] / "dist_worker.py"
CONFIGS = {"zero2": "deepspeed-zero2.yaml", "zero3": "deepspeed-zero3.yaml", "fsdp2": "fsdp2.yaml"}
ENGINE = {"zero2": "deepspeed", "zero3": "deepspeed", "fsdp2": "fsdp"}
LOSSES = ("dapo", "grpo")


def _needs(name: str) -> None:
    pytest.importorskip("accelerate")
    if ENGINE[name] == "deepspeed":
        pytest.importorskip("deepspeed")


@pytest.fixture(scope="module", autouse=True)
def extensions_dir(tmp_path_factory):
    """DeepSpeed compiles its CPU communication op (with -march=native) at the first launch: into a
    directory of this test run, so neither a lock left in ~/.cache by an interrupted build nor an op
    built on another host is used."""
    path = tmp_path_factory.mktemp("torch-extensions")
    with pytest.MonkeyPatch.context() as mp:  # _run's child processes inherit it
        mp.setenv("TORCH_EXTENSIONS_DIR", str(path))
        yield path


def _run(args, *, launch: str | None = None) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONFAULTHANDLER": "1"}  # a rank that aborts prints where it was
    cmd = [sys.executable, str(WORKER), *args]
    if launch:  # `accelerate launch` of this interpreter; the configs name their DeepSpeed JSON relative to the root
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               f"train/accelerate/{CONFIGS[launch]}", "--num_processes", "2", *cmd[1:]]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=420, env=env, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + _without_deprecations(res.stderr)[-6000:]


def _without_deprecations(stderr: str) -> str:
    """stderr less torch's per-call FutureWarnings, which filled the whole tail of a failed run's message."""
    lines, out = stderr.splitlines(), []
    for i, line in enumerate(lines):
        echo = line.strip() == "return func(*args, **kwargs)" and i and "FutureWarning" in lines[i - 1]
        if "FutureWarning" in line or echo:
            continue
        out.append(line)
    return "\n".join(out)


@pytest.fixture(scope="module")
def one_process(tiny_model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one-process")
    _run(["--model", tiny_model_dir, "--out", str(out), "--loss-types", ",".join(LOSSES)])
    return out


@pytest.mark.parametrize("name", list(CONFIGS))
def test_two_processes_match_one_process(name, one_process, tiny_model_dir, tmp_path):
    _needs(name)
    _run(["--model", tiny_model_dir, "--out", str(tmp_path), "--loss-types", ",".join(LOSSES)], launch=name)
    for loss in LOSSES:
        a, b = (json.loads((d / f"{loss}.json").read_text()) for d in (one_process, tmp_path))
        assert (a["engine"], a["world"]) == ("single", 1)
        assert (b["engine"], b["world"]) == (ENGINE[name], 2), "the launch fell back to another engine"
        for step_a, step_b in zip(a["metrics"], b["metrics"], strict=True):
            assert step_b["grad_norm"] == pytest.approx(step_a["grad_norm"], rel=1e-4), f"{loss}: gradient scale"
            assert step_b["loss"] == pytest.approx(step_a["loss"], rel=1e-4, abs=1e-7), loss
        # the reference is the base with the adapter off: once the adapter moved, KL > 0 (the logged kl is a mean
        # of micro-batch token means, so it depends on how the batch is split and is not compared)
        assert b["metrics"][1]["kl"] > 1e-3 and a["metrics"][1]["kl"] > 1e-3
        wa, wb = (load_file(str(d / f"run-{loss}" / "checkpoint-2" / "adapter_model.safetensors"))
                  for d in (one_process, tmp_path))
        assert wa.keys() == wb.keys() and wa
        for k in wa:
            torch.testing.assert_close(wb[k], wa[k], rtol=1e-3, atol=1e-4, msg=f"{name} {loss} {k}")
        assert max(float(v.abs().max()) for k, v in wa.items() if "lora_B" in k) > 1e-3, "the adapter did not move"


def _metrics(run: Path) -> dict[int, dict]:
    return {r["step"]: r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}


def test_zero3_generates_checkpoints_and_resumes(tiny_model_dir, tmp_path):
    _needs("zero3")
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    _run(["--model", tiny_model_dir, "--out", str(full), "--train"], launch="zero3")
    m = _metrics(full)
    assert sorted(m) == [1, 2] and all(0 < r["completion_length"] <= 8 for r in m.values())
    assert m[2]["grad_norm"] > 0 and m[2]["kl"] > 0  # rewards varied; the reference ran with the adapter off
    resumed.mkdir()
    shutil.copytree(full / "checkpoint-1", resumed / "checkpoint-1")
    _run(["--model", tiny_model_dir, "--out", str(resumed), "--train", "--resume", str(resumed / "checkpoint-1")],
         launch="zero3")
    for d in (full, resumed):  # each rank destroyed its process group before exiting (CI saw a rank abort at exit)
        assert [json.loads((d / f"group-after-train-{r}.json").read_text()) for r in (0, 1)] == \
            [{"initialized": False}] * 2
    a, b = m[2], _metrics(resumed)[2]
    for key in ("reward", "completion_length", "loss", "kl", "grad_norm"):
        assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-7), key
    wa, wb = (load_file(str(d / "checkpoint-2" / "adapter_model.safetensors")) for d in (full, resumed))
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-5, atol=1e-7)
    _eval(tmp_path, ["--model", tiny_model_dir, "--lora", f"z3={full / 'checkpoint-2'}"], adapter="z3")


def _eval(tmp_path, args, adapter=None):
    from reasonkit.cli import main

    out = tmp_path / "eval"
    res = CliRunner().invoke(main, ["eval", *args, "-b", "gsm8k", "--backend", "hf", "--limit", "2",
                                    "--max-tokens", "4", "--output", str(out), "--quiet"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert rows and (adapter is None or adapter in {r.get("adapter") for r in rows})


@pytest.mark.parametrize("name", ["zero3", "fsdp2"])
def test_full_fine_tuning_saves_a_loadable_model(name, tiny_model_dir, tmp_path):
    _needs(name)
    run = tmp_path / "run"
    _run(["--model", tiny_model_dir, "--out", str(run), "--train", "--lora-r", "0"], launch=name)
    ckpt = run / "checkpoint-2"
    assert not (ckpt / "adapter_model.safetensors").exists()
    before, after = load_file(str(Path(tiny_model_dir) / "model.safetensors")), load_file(str(ckpt / "model.safetensors"))
    assert set(before) <= set(after)
    assert max(float((after[k] - before[k]).abs().max()) for k in before) > 1e-3, "the weights did not move"
    _eval(tmp_path, ["--model", str(ckpt)])
