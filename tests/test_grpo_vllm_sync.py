"""vLLM rollouts stay in sync with the trainer: after an optimiser step the engine samples from the
new adapter, and its log-probs of the tokens it sampled match the trainer's.

Setup: the embedded SmolLM2-135M-Instruct in fp32 on both sides (trainer and vllm-cpu engine), LoRA
r=8, a large learning rate so one update moves the policy visibly, and a length reward (always some
variance, so the update is never skipped). After step 1 the engine has loaded the step-1 adapter
(a new LoRA id, no restart); at step 2 it samples with ``logprobs`` and we recompute the same tokens'
log-probs with the trainer's ``completion_logprobs``.

Tolerance (fp32 both sides): mean |engine - trainer| < 1e-4 and max < 1e-3 per token (measured here:
mean 1.1e-5, max 3.1e-5 over 128 tokens, against a mean gap of 0.16 from the base model). The gap from the
base model (adapter disabled) must be far larger (mean > 5x the engine-trainer gap), which shows the
engine really serves the updated adapter rather than the base or the stale step-0 adapter.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

MEAN_TOL, MAX_TOL = 1e-4, 1e-3


def _length_reward():
    from reasonkit.verifiers.base import Verdict, VerifierSpec

    def length(completion: str) -> Verdict:
        return Verdict(min(len(completion), 60) / 60.0, True, None, "correct")

    return VerifierSpec("length", length, (), "longer is better (test reward)")


def test_engine_logprobs_match_trainer_after_update(tmp_path, monkeypatch, default_model_path):
    pytest.importorskip("vllm")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    from transformers import AutoTokenizer

    from reasonkit.eval.benchmarks import get_benchmark
    from reasonkit.grpo.config import TrainConfig
    from reasonkit.grpo.logprobs import reference_logprobs
    from reasonkit.packing import completion_logprobs
    from reasonkit.packing import pack as to_tensors
    from reasonkit.grpo.trainer import GRPOTrainer

    cfg = TrainConfig(dtype="fp32", backend="vllm", group_size=4, prompts_per_step=2, max_tokens=16, score_truncated=True,
                      learning_rate=2e-3, lora_dropout=0.0, max_steps=2, output=str(tmp_path / "run"),
                      backend_options={"max_model_len": 1024, "gpu_memory_utilization": 0.2})
    tok = AutoTokenizer.from_pretrained(default_model_path)
    bench = get_benchmark("countdown")
    items = bench.load(split="train", limit=4)
    trainer = GRPOTrainer(cfg, items=items, prompts=[bench.render(it, tok) for it in items],
                          verifier=_length_reward(), show_progress=False)
    try:
        m1 = trainer.train_step()  # step 0: engine serves the initial adapter (B = 0), then one update
        assert m1["grad_norm"] > 0 and "skipped_update" not in m1
        # step 1: the engine reloads the adapter first; the trainer asks for no engine log-probs, this test does
        trainer.vllm.sync(trainer.accelerator.unwrap_model(trainer.model), trainer.step)
        r = trainer.vllm.generate(*trainer._next_batch(),
                                  dataclasses.replace(trainer._sampling(trainer.step), logprobs=True))
        assert trainer.vllm.backend.lora_requests["policy"].lora_int_id == 2  # a new id per version
        assert r.engine_logprobs is not None
        ids, att, cmask = to_tensors(r.prompt_ids, r.completion_ids, tok.pad_token_id)
        model = trainer.accelerator.unwrap_model(trainer.model).eval()
        with torch.no_grad():
            mine = completion_logprobs(model, ids, att, cmask.size(1))
            base = reference_logprobs(model, ids, att, cmask.size(1))
        engine = torch.zeros_like(mine)
        for i, lp in enumerate(r.engine_logprobs):
            engine[i, :len(lp)] = torch.tensor(lp, dtype=torch.float32)
        m = cmask.bool()
        gap = (engine - mine).abs()[m]
        base_gap = (engine - base).abs()[m]
        print(f"engine vs trainer: mean {gap.mean():.2e} max {gap.max():.2e}; "
              f"engine vs base: mean {base_gap.mean():.2e} ({int(m.sum())} tokens)")
        assert gap.mean() < MEAN_TOL and gap.max() < MAX_TOL
        assert base_gap.mean() > 5 * gap.mean()
    finally:
        if trainer.vllm is not None:
            trainer.vllm.close()
