"""Helpers for fast GRPO-trainer tests (not a test module): a trainer on the tiny Llama whose
generation is a deterministic fake, as in ``tests/train/test_grpo_trainer.py``.

The fake still goes through the trainer's data order (``_next_batch``) and is seeded like the real
sampler (``step_seed``), so masks, updates, schedules, checkpoints and resume run as in a real run.
"""
from __future__ import annotations

import torch

from reasonkit.grpo.config import TrainConfig
from reasonkit.grpo.rollout import Rollouts
from reasonkit.grpo.build import step_seed
from reasonkit.grpo.trainer import GRPOTrainer

ITEMS = [{"id": str(i), "question": f"q{i}"} for i in range(6)]


def make_trainer(tiny_model_dir, tmp_path, *, fake=True, items=ITEMS, **overrides) -> GRPOTrainer:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = dict(model=tiny_model_dir, dtype="fp32", max_steps=4, group_size=4, prompts_per_step=2, max_tokens=8,
              learning_rate=1e-2, output=str(tmp_path / "run"), log_completions_steps=1, lora_dropout=0.0)
    kw.update(overrides)
    cfg = TrainConfig(**kw)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    prompts = [f"Question {i}: say something." for i in range(len(items))]
    trainer = GRPOTrainer(cfg, model=model, tokenizer=tok, items=list(items), prompts=prompts,
                          verifier="format", show_progress=False)
    if fake:  # the rollout stage is the fake; its completions come with their rewards (no reward stage)
        trainer.generate = lambda step: fake_rollouts(trainer, step)
        trainer.reward = keep_rewards
    return trainer


def keep_rewards(rollouts: Rollouts) -> Rollouts:
    """A reward stage for fake rollouts that already carry their rewards."""
    return rollouts


def fake_rollouts(trainer, step: int) -> Rollouts:
    """Completions of random tokens drawn from the step's seed; reward = share of even token ids."""
    prompts, items = trainer._next_batch()
    g = torch.Generator().manual_seed(step_seed(trainer.cfg.seed, step, trainer.rank))
    G, T = trainer.cfg.group_size, trainer.cfg.max_tokens
    rows = {"prompts": [], "items": [], "pids": [], "cids": [], "fin": []}
    for p, it in zip(prompts, items):
        pid = trainer.tokenizer(p, add_special_tokens=False)["input_ids"]
        for _ in range(G):
            n = int(torch.randint(2, T + 1, (1,), generator=g))
            rows["prompts"].append(p)
            rows["items"].append(it)
            rows["pids"].append(pid)
            rows["cids"].append(torch.randint(0, 1000, (n,), generator=g).tolist())
            rows["fin"].append("length" if n == T else "stop")
    r = Rollouts(rows["prompts"], rows["items"], rows["pids"], rows["cids"], ["x"] * len(rows["cids"]),
                 rows["fin"], G)
    r.rewards = torch.tensor([sum(t % 2 == 0 for t in c) / len(c) for c in rows["cids"]])
    r.per_verifier = {"even": r.rewards.clone()}
    return r
