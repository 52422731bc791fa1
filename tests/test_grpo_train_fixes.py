"""Regression tests for the training-side defects of issue 23 (each fails on 64eb0a7).

Tiny Llama from a config with a fake, seeded generation (``tests/train_fakes.py``); no real sampling
except the periodic-eval test, which generates greedily on two items.
"""
from __future__ import annotations

import json

import pytest
import torch

from train_fakes import fake_rollouts, make_trainer


def _randomise_lora_b(trainer, seed: int = 0) -> None:
    """Non-zero LoRA B: the policy differs from the reference (adapter off), so KL > 0 at once."""
    g = torch.Generator().manual_seed(seed)
    model = trainer.accelerator.unwrap_model(trainer.model)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data = torch.randn(p.shape, generator=g) * 0.2


# ------------------------------------------------------------------------------ item 10: loss metrics

@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo", "bnpo"])
def test_issue23_item10_logged_loss_is_the_step_loss_whatever_the_accumulation(tiny_model_dir, tmp_path, loss_type):
    """loss = policy_loss + kl_loss, and (for the normalisers that do not depend on the micro-batch
    split) the same with 4 accumulation micro-batches as with one: dapo's used to be divided by 4."""
    got = {}
    for ga in (1, 4):
        trainer = make_trainer(tiny_model_dir, tmp_path / f"ga{ga}", max_steps=1, beta=0.04, loss_type=loss_type,
                               gradient_accumulation_steps=ga)
        _randomise_lora_b(trainer)
        got[ga] = trainer.optimize(fake_rollouts(trainer, 0))
    for m in got.values():
        assert m["kl_loss"] > 0 and m["kl"] > 0
        assert m["loss"] == pytest.approx(m["policy_loss"] + m["kl_loss"], rel=1e-6)
    if loss_type != "bnpo":  # bnpo is a token mean per micro-batch (as in TRL): its split matters
        for key in ("loss", "policy_loss", "kl_loss"):
            assert got[4][key] == pytest.approx(got[1][key], rel=1e-4, abs=1e-7), key


# ------------------------------------------------------------------------------ item 6 and (a): schedule

@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step()`")
@pytest.mark.parametrize("scheduler, warmup, factors", [
    ("constant", 2, [0.0, 0.5, 1.0, 1.0]),   # was [1, 1, 1, 1]: warmup ignored
    ("constant", 0, [1.0, 1.0, 1.0, 1.0]),
    ("constant", 0.5, [0.0, 0.5, 1.0, 1.0]),  # a fraction of max_steps
    ("linear", 2, [0.0, 0.5, 1.0, 0.5]),
    ("constant_with_warmup", 2, [0.0, 0.5, 1.0, 1.0]),
])
def test_issue23_item6_warmup_applies_with_every_schedule(tiny_model_dir, tmp_path, scheduler, warmup, factors):
    trainer = make_trainer(tiny_model_dir, tmp_path, max_steps=4, warmup=warmup, lr_scheduler=scheduler)
    lr = trainer.cfg.learning_rate
    seen = []
    for _ in range(4):
        seen.append(trainer.scheduler.get_last_lr()[0] / lr)
        trainer.scheduler.step()
    assert seen == pytest.approx(factors)


def test_issue23_a_skipped_steps_advance_the_schedule(tiny_model_dir, tmp_path):
    trainer = make_trainer(tiny_model_dir, tmp_path, zero_variance="skip", max_steps=4, num_iterations=2,
                           warmup=2, lr_scheduler="linear")
    r = fake_rollouts(trainer, 0)
    r.rewards = torch.ones(len(r))  # every group zero-variance: no update
    metrics = trainer.optimize(r)
    assert metrics["skipped_update"] == 1.0
    assert trainer.scheduler.last_epoch == 2  # mu scheduler steps, as for an update
    assert trainer.scheduler.get_last_lr()[0] == pytest.approx(0.5 * trainer.cfg.learning_rate)


# ------------------------------------------------------------------------------ item 9: periodic eval

def test_issue23_item9_periodic_eval_runs_the_policy_even_if_the_directory_exists(tiny_model_dir, tmp_path):
    from reasonkit.grpo.evaluation import evaluate_policy

    trainer = make_trainer(tiny_model_dir, tmp_path, max_steps=1, eval_limit=2, dataset="countdown")
    model = trainer.accelerator.unwrap_model(trainer.model)
    evaluate_policy(trainer.cfg, model, trainer.tokenizer, 2, trainer.out)
    samples = trainer.out / "eval" / "step-2" / "samples.jsonl"
    fresh = samples.read_text().splitlines()
    # what an earlier run (another policy) left at the same step: its rows must not be reused
    stale = [json.dumps({**json.loads(line), "completion": "STALE"}) for line in fresh]
    samples.write_text("\n".join(stale) + "\n")
    evaluate_policy(trainer.cfg, model, trainer.tokenizer, 2, trainer.out)
    again = samples.read_text()
    assert "STALE" not in again
    assert again.splitlines() == fresh
