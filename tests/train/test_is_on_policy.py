"""The sampler correction with one update per batch: weights from the training forward, no extra pass.

With ``num_iterations = 1`` the trainer takes ``logp_old`` from each micro-batch's own (detached)
training forward instead of a separate no-grad pass (``reasonkit.grpo.is_correction``). Without
dropout the two are the same numbers, which is what these tests pin: the step's sampler metrics equal
those of a run that records the pass first (``num_iterations = 2``, whose weights come from its
recorded ``logp_old``), and the update runs exactly as many forwards as a run with no sampler at all.
"""
from __future__ import annotations

import pytest
import torch

from train_fakes import fake_rollouts, make_trainer

from reasonkit.grpo.logprobs import completion_logprobs


def _with_sampler_logprobs(trainer, r, shift: float):
    """Give the rollouts sampler log-probs: the policy's own (eval mode) moved by +-shift per token."""
    lps = []
    for i, (pid, cid) in enumerate(zip(r.prompt_ids, r.completion_ids)):
        ids = torch.tensor([pid + cid])
        with torch.no_grad():
            trainer.model.eval()
            lp = completion_logprobs(trainer.model, ids, torch.ones_like(ids), len(cid), 1.0)[0]
        signs = torch.tensor([(-1.0) ** (i + t) for t in range(len(cid))])
        lps.append((lp + shift * signs).tolist())
    r.engine_logprobs = lps
    return r


def _count_forwards(model):
    """Calls of the first decoder layer (every forward, shared-prefix or plain, runs it once)."""
    calls = []
    (first,) = [m for name, m in model.named_modules() if name.endswith("layers.0")]
    return calls, [first.register_forward_hook(lambda *a: calls.append(1))]


@pytest.mark.parametrize("mode", ["token_truncate", "sequence_mask"])
def test_weights_from_the_training_forward_equal_a_recorded_pass(tiny_model_dir, tmp_path, mode):
    kw = dict(backend="vllm", importance_sampling=mode, max_steps=1, gradient_accumulation_steps=2)
    one = make_trainer(tiny_model_dir, tmp_path / "one", num_iterations=1, **kw)
    two = make_trainer(tiny_model_dir, tmp_path / "two", num_iterations=2, **kw)
    r = _with_sampler_logprobs(one, fake_rollouts(one, 0), shift=0.4)
    m1, m2 = one.optimize(r), two.optimize(r)
    keys = [k for k in m2 if k.startswith("sampler/")]
    assert {"sampler/logprob_gap_mean", "sampler/is_weight_mean", "sampler/is_capped"} <= set(keys)
    assert m1["sampler/logprob_gap_mean"] == pytest.approx(0.4, abs=1e-4)  # the shift, recovered
    for k in keys:
        assert m1[k] == pytest.approx(m2[k], abs=1e-5), k
    if mode == "sequence_mask":  # +-0.4 alternating sums to 0 or +-0.4 per sequence: nothing masked
        assert m1["sampler/is_capped"] == 0.0
    assert m1["grad_norm"] > 0


def test_one_update_with_a_sampler_runs_no_extra_forward(tiny_model_dir, tmp_path):
    counts = {}
    for backend in ("hf", "vllm"):
        trainer = make_trainer(tiny_model_dir, tmp_path / backend, backend=backend, max_steps=1,
                               gradient_accumulation_steps=2)
        r = fake_rollouts(trainer, 0)
        if backend == "vllm":
            r = _with_sampler_logprobs(trainer, r, shift=0.1)
        calls, handles = _count_forwards(trainer.model)
        m = trainer.optimize(r)
        for h in handles:
            h.remove()
        counts[backend] = len(calls)
        assert ("sampler/logprob_gap_mean" in m) == (backend == "vllm")
    assert counts["hf"] > 0 and counts["vllm"] == counts["hf"]
