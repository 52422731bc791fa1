"""benchmarks/bench_grpo.py feeds TRL the prompts of the reasonkit trainer's first steps, in order:
``epoch_order`` must be the order the trainer really visits its items in."""
from __future__ import annotations

from reasonkit.grpo.trainer import epoch_order


def test_trainer_visits_items_in_epoch_order(tiny_model_dir, tmp_path):
    from train_fakes import ITEMS, make_trainer

    trainer = make_trainer(tiny_model_dir, tmp_path, prompts_per_step=2)
    seen = [trainer._next_batch()[1] for _ in range(3)]  # 3 steps x 2 prompts = one epoch of 6 items
    order = epoch_order(trainer.cfg.seed, 0, len(ITEMS))
    assert [it for step in seen for it in step] == [ITEMS[i] for i in order]
    assert order != sorted(order)  # a real shuffle, so the check can fail


def test_the_record_names_the_layouts_the_timings_chose(monkeypatch):
    """bench_grpo.py writes which linear layouts this host's timings picked, rollout and training."""
    import torch

    from reasonkit.engine import hf_linear
    from reasonkit.engine import frozen_linear

    from bench_scripts import load

    bench_grpo = load("bench_grpo")

    monkeypatch.setattr(hf_linear, "_CHOICE", {(torch.float32, 8, (1536, 576), 10, True): "packed",
                                               (torch.float32, 2, (192, 576), 10, True): "linear"})
    monkeypatch.setattr(frozen_linear, "_CHOICE", {(torch.float32, (1536, 576), 10): False})
    layouts = bench_grpo.chosen_layouts()
    assert layouts == {"rollout float32 192x576, 2 rows": "F.linear", "rollout float32 1536x576, 8 rows": "oneDNN packed",
                       "training float32 1536x576": "F.linear"}
    line = bench_grpo.layout_lines({"reasonkit": {"layouts": layouts}, "trl": {}})[0]
    assert "rollout float32 1536x576, 8 rows: oneDNN packed" in line and "training float32 1536x576: F.linear" in line
    assert bench_grpo.layout_lines({"trl": {}}) == []
