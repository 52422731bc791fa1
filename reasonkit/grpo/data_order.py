"""Which items each GRPO step trains on: the training data, its seeded epoch order, and the position in it.

Every process holds the same :class:`DataOrder` and advances it by the global ``prompts_per_step`` each
step; a process keeps its own slice of the picked items (rank ``r`` of ``W`` takes the ``r``-th
``prompts_per_step / W``). Epoch ``e`` visits the items in ``permutation(seed + e)`` (numpy's
``default_rng``), so a run resumed from ``(epoch, position)`` sees exactly the items the uninterrupted
run would have, and ``benchmarks/bench_grpo.py`` can feed TRL the same prompts.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from reasonkit.errors import ReasonkitError
from reasonkit.verifiers import resolve


def epoch_order(seed: int, epoch: int, n: int) -> list[int]:
    """The order in which one epoch visits the ``n`` items (benchmarks feed other trainers the same)."""
    return np.random.default_rng(seed + epoch).permutation(n).tolist()


class DataOrder:
    """Position ``(epoch, position)`` in the seeded visiting order of ``num_items`` items."""

    def __init__(self, seed: int, num_items: int, epoch: int = 0, position: int = 0):
        self.seed, self.num_items = seed, num_items
        self.epoch, self.position = epoch, position
        self._order = epoch_order(seed, epoch, num_items)

    def take(self, need: int) -> list[int]:
        """The next ``need`` item indices (crossing into the next epoch when this one runs out)."""
        picked: list[int] = []
        while len(picked) < need:
            if self.position >= len(self._order):
                self.epoch, self.position = self.epoch + 1, 0
                self._order = epoch_order(self.seed, self.epoch, self.num_items)
            take = min(need - len(picked), len(self._order) - self.position)
            picked += self._order[self.position:self.position + take]
            self.position += take
        return picked

    def state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed, "num_items": self.num_items}

    def restore(self, state: dict[str, Any]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = epoch_order(self.seed, self.epoch, self.num_items)


FEW_PROMPTS = 50  # distinct training prompts below which a run can memorise its data


def few_prompts_warning(prompts, steps: int, per_step: int) -> str | None:
    """A warning when the training data hold fewer than :data:`FEW_PROMPTS` distinct prompts and the
    run will see each of them several times: the policy can learn the answers by heart and its
    training reward says nothing about held-out accuracy. Measured: reasoning-gym ``products`` at
    difficulty 0 has 100 possible questions; the test split holds 99 of them, and dropping those from
    the training split left one (``3 * 8``). A run reached training reward 1.0 by step 40 and stayed
    at 0.06-0.09 held-out."""
    distinct = len(set(prompts))
    visits = steps * per_step / max(distinct, 1)
    if distinct >= FEW_PROMPTS or visits < 2:
        return None
    return (f"the training data have only {distinct} distinct prompt(s) ({len(prompts)} items) and the run will see "
            f"each about {visits:.0f} times: it can memorise the answers, and its training reward will not say "
            "how it does on new items. Use a task with more distinct questions (a higher difficulty, more "
            "digits or terms) or more data.")


def load_training_data(cfg, tokenizer):
    """``(benchmark, items, prompts, verifier)`` of a config's training split."""
    # lazy: reasonkit.grpo.build imports torch
    from .build import build_benchmark

    bench = build_benchmark(cfg)
    items = list(bench.load(split=cfg.split, data=cfg.data))
    if len(items) < cfg.num_prompts_per_step:
        raise ReasonkitError(f"dataset {cfg.dataset!r} has {len(items)} items, fewer than "
                             f"prompts_per_step={cfg.num_prompts_per_step}; lower --prompts-per-step")
    prompts = [bench.render(item, tokenizer) for item in items]
    return bench, items, prompts, resolve(cfg.reward_spec)
