"""Sampler correction (gap metrics, truncated importance sampling) and ``--backend vllm-server``
rollouts against the stub server on 127.0.0.1, with the tiny Llama built from a config."""
from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

from openai_stub import Stub, free_port
from reasonkit.errors import ReasonkitError
from reasonkit.grpo.config import ConfigError, TrainConfig
from reasonkit.grpo.is_correction import gap_metrics, importance_weights, sampler_tensor
from reasonkit.grpo.loss import grpo_loss

pytestmark = pytest.mark.timeout(120)
NAN = float("nan")


def test_gap_and_token_truncate_weights_by_hand():
    old = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -0.5, 0.0]])
    samp = sampler_tensor([[-1.5, -1.0, -3.0], [-0.5, NAN]], 3)  # row 2: one missing, one padding
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    gap = gap_metrics(old, samp, mask)
    assert gap["sampler/logprob_gap_mean"] == pytest.approx((0.5 + 1.0 + 0.0 + 0.0) / 4)
    assert gap["sampler/logprob_gap_max"] == pytest.approx(1.0)
    w, m = importance_weights(old, samp, mask, "token_truncate", 1.5)
    assert w[0].tolist() == pytest.approx([min(math.exp(0.5), 1.5), math.exp(-1.0), 1.0])
    assert w[1, :2].tolist() == pytest.approx([1.0, 1.0])  # NaN sampler log-prob: weight 1
    assert m["sampler/is_capped"] == pytest.approx(1 / 5)
    w, _ = importance_weights(old, samp, mask, "token_mask", 1.5)
    assert w[0, 0] == 0.0 and w[0, 1] == pytest.approx(math.exp(-1.0))


def test_sequence_modes_use_one_weight_per_sequence():
    old = torch.tensor([[-1.0, -1.0], [-1.0, -1.0]])
    samp = torch.tensor([[-1.5, -1.5], [-1.0, -1.25]])  # sums of (old - sampler): 1.0 and 0.25
    mask = torch.ones(2, 2)
    w, _ = importance_weights(old, samp, mask, "sequence_truncate", 2.0)
    assert w[0].tolist() == pytest.approx([2.0, 2.0]) and w[1].tolist() == pytest.approx([math.exp(0.25)] * 2)
    w, m = importance_weights(old, samp, mask, "sequence_mask", 2.0)
    assert w[0].tolist() == [0.0, 0.0] and m["sampler/is_capped"] == 0.5
    assert importance_weights(old, samp, mask, "none", 2.0)[0] is None


def test_loss_multiplies_each_token_by_its_weight():
    torch.manual_seed(0)
    logp = torch.randn(3, 4, requires_grad=True)
    adv, mask = torch.tensor([1.0, -0.5, 2.0]), torch.ones(3, 4)
    w = torch.tensor([[2.0] * 4, [1.0] * 4, [0.0] * 4])
    weighted, _ = grpo_loss(logp, None, None, adv, mask, loss_type="dr_grpo", max_completion_length=4, is_weights=w)
    plain = torch.stack([grpo_loss(logp[i:i + 1], None, None, adv[i:i + 1], mask[i:i + 1], loss_type="dr_grpo",
                                   max_completion_length=4)[0] for i in range(3)])
    expected = (plain.detach() * torch.tensor([2.0, 1.0, 0.0])).sum() / 3
    assert float(weighted.detach()) == pytest.approx(float(expected))


def test_weights_apply_to_the_policy_term_not_the_kl():
    """TRL 1.16 multiplies the clipped surrogate by the IS weights, then adds beta * KL: a sequence masked
    by its weight (0) keeps its KL penalty."""
    torch.manual_seed(1)
    logp = torch.randn(2, 3, requires_grad=True)
    ref = logp.detach() + 0.3 * torch.randn(2, 3)
    adv, mask = torch.tensor([1.0, -1.0]), torch.ones(2, 3)
    zero = torch.zeros(2, 3)
    masked, metrics = grpo_loss(logp, None, ref, adv, mask, beta=0.5, loss_type="bnpo", is_weights=zero)
    kl_only = 0.5 * metrics["kl"]  # bnpo: the mean over tokens of beta * KL
    assert float(masked.detach()) == pytest.approx(float(kl_only), rel=1e-5) and float(kl_only) > 0
    ones, _ = grpo_loss(logp, None, ref, adv, mask, beta=0.5, loss_type="bnpo", is_weights=torch.ones(2, 3))
    plain, _ = grpo_loss(logp, None, ref, adv, mask, beta=0.5, loss_type="bnpo")
    assert float(ones.detach()) == pytest.approx(float(plain.detach()))


def test_config_checks():
    with pytest.raises(ConfigError, match="needs --base-url"):
        TrainConfig(backend="vllm-server")
    with pytest.raises(ConfigError, match="no sampler log-probs"):
        TrainConfig(importance_sampling="token_truncate")
    with pytest.raises(ConfigError, match="importance_sampling_cap"):
        TrainConfig(backend="vllm", importance_sampling_cap=0.0)
    assert TrainConfig(backend="vllm-server", base_url="http://127.0.0.1:1/v1").base_url == ("http://127.0.0.1:1/v1",)


def _trainer(tiny_model_dir, tmp_path, url, **kw):
    from train_fakes import ITEMS

    from reasonkit.grpo.trainer import GRPOTrainer

    cfg = TrainConfig(model=tiny_model_dir, dtype="fp32", max_steps=2, group_size=2, prompts_per_step=2,
                      max_tokens=8, learning_rate=1e-2, lora_dropout=0.0, output=str(tmp_path / "run"),
                      backend="vllm-server", base_url=url, log_completions_steps=0,
                      backend_options={"backoff_base": 0.01, "max_retries": 1, "timeout": 5}, **kw)
    prompts = [f"Question {i}: say something." for i in range(len(ITEMS))]
    return GRPOTrainer(cfg, items=ITEMS, prompts=prompts, verifier="format", show_progress=False)


def test_server_rollouts_load_each_steps_adapter_and_log_the_gap(tiny_model_dir, tmp_path):
    with Stub(models=("base",)) as stub:
        trainer = _trainer(tiny_model_dir, tmp_path, stub.url)
        seen = []
        trainer.on_step_end = lambda step, m: seen.append(m)
        trainer.train()
        gens = stub.generation_requests()
        calls = list(stub.adapter_calls)
    loads = [c for c in calls if c["path"] == "/v1/load_lora_adapter"]
    unloads = [c["body"]["lora_name"] for c in calls if c["path"] == "/v1/unload_lora_adapter"]
    names = [c["body"]["lora_name"] for c in loads]
    assert [n.rsplit("-", 1)[1] for n in names] == ["0", "1"]
    assert all("adapter_config.json" in c["files"] and "model.safetensors" not in c["files"] for c in loads)
    assert unloads == names  # step 0's after step 1 was loaded, step 1's at the end
    assert [g["body"]["model"] for g in gens] == [names[0]] * 2 + [names[1]] * 2
    assert all(isinstance(g["body"]["prompt"], list) and g["body"]["logprobs"] == 0 for g in gens)
    assert len(seen) == 2
    for m in seen:
        assert m["sampler/logprob_gap_mean"] > 0 and m["sampler/logprob_gap_max"] >= m["sampler/logprob_gap_mean"]
        assert 0 < m["sampler/is_weight_mean"] <= 3.0  # auto = token_truncate on the server, cap 3


def test_server_down_fails_the_step_with_one_line_and_keeps_the_position(tiny_model_dir, tmp_path):
    with Stub(models=("base",)) as stub:
        trainer = _trainer(tiny_model_dir, tmp_path, stub.url)
        trainer.train_step()
        position = (trainer.epoch, trainer.position)
        stub.down = True
        with pytest.raises(ReasonkitError, match="HTTP 503|rollout request"):
            trainer.train_step()
        assert (trainer.epoch, trainer.position) == position and trainer.step == 1
        trainer.vllm = None


def test_train_cli_with_no_server_is_one_line(tiny_model_dir, tmp_path):
    from reasonkit.cli import main

    r = CliRunner().invoke(main, ["train", "--model", tiny_model_dir, "--backend", "vllm-server", "--base-url",
                                  f"http://127.0.0.1:{free_port()}/v1", "--max-steps", "1", "--dataset", "gsm8k",
                                  "--output", str(tmp_path / "o"), "-q"])
    assert r.exit_code == 2, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "no replica answered" in errors[0] and "Traceback" not in r.output


@pytest.mark.slow  # two accelerate processes (gloo) training against one server: ~1 min
@pytest.mark.timeout(900)
def test_two_processes_train_against_one_server(tiny_model_dir, tmp_path):
    """The multi-process path: only the main process saves and loads each step's adapter; the other waits
    at the barrier, and both then sample from the new name (every generation request of step k comes
    after step k's load and names its adapter)."""
    import os
    import shutil
    import subprocess

    if shutil.which("accelerate") is None or shutil.which("reasonkit") is None:
        pytest.skip("accelerate / reasonkit launchers not on PATH")
    out = tmp_path / "run"
    with Stub(models=("base",)) as stub:
        cmd = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", shutil.which("reasonkit"), "train",
               "--model", tiny_model_dir, "--backend", "vllm-server", "--base-url", stub.url, "--dataset", "gsm8k",
               "--max-steps", "2", "--prompts-per-step", "2", "--group-size", "2", "--max-tokens", "8",
               "--lora-r", "4", "--lora-alpha", "8", "--dtype", "fp32", "--output", str(out), "-q"]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
        gens = stub.generation_requests()
        loads = [c for c in stub.adapter_calls if c["path"] == "/v1/load_lora_adapter"]
    names = [c["body"]["lora_name"] for c in loads]
    assert [n.rsplit("-", 1)[1] for n in names] == ["0", "1"]  # one load per step: the main process's
    assert len(gens) == 4  # 2 steps x 2 processes x 1 prompt each (n = group size in one request)
    for step, load in enumerate(loads):
        mine = [g for g in gens if g["body"]["model"] == names[step]]
        assert len(mine) == 2 and all(g["t"] > load["t"] for g in mine)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all("sampler/logprob_gap_mean" in r for r in rows)
    assert (out / "checkpoint-2" / "adapter_model.safetensors").is_file()
