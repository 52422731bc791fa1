"""benchmarks/bench_grpo.py feeds TRL the prompts of the reasonkit trainer's first steps, in order:
``epoch_order`` must be the order the trainer really visits its items in."""
from __future__ import annotations

from reasonkit.grpo.trainer import epoch_order


def test_trainer_visits_items_in_epoch_order(tiny_model_dir, tmp_path):
    from test_grpo_trainer import ITEMS, make_trainer

    trainer = make_trainer(tiny_model_dir, tmp_path, prompts_per_step=2)
    seen = [trainer._next_batch()[1] for _ in range(3)]  # 3 steps x 2 prompts = one epoch of 6 items
    order = epoch_order(trainer.cfg.seed, 0, len(ITEMS))
    assert [it for step in seen for it in step] == [ITEMS[i] for i in order]
    assert order != sorted(order)  # a real shuffle, so the check can fail
