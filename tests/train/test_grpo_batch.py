"""The pure batch preparation of a GRPO step (``reasonkit.grpo.batch.prepare_batch``): no model."""
from __future__ import annotations

import math

import pytest
import torch

from reasonkit.grpo.batch import prepare_batch
from reasonkit.grpo.config import TrainConfig
from reasonkit.grpo.rollout import Rollouts


def rollouts(rewards, completions, finish=None, prompts=((1, 2), (3,))):
    G = len(rewards) // len(prompts)
    pids = [list(p) for p in prompts for _ in range(G)]
    r = Rollouts(["p"] * len(pids), [{}] * len(pids), pids, [list(c) for c in completions],
                 ["x"] * len(pids), list(finish or ["stop"] * len(pids)), G)
    r.rewards = torch.tensor(rewards, dtype=torch.float32)
    return r


def cfg(**kw):
    return TrainConfig(group_size=2, prompts_per_step=2, **kw)


def test_mask_advantages_and_packing():
    nan = math.nan
    r = rollouts([1.0, 0.0, 1.0, 1.0], [[5, 6], [7], [8, 9, 4], [2]])
    b = prepare_batch(cfg(zero_variance="skip"), r, r.rewards, rank=0, pad_id=0, micro_batch=2)
    assert b.input_ids.tolist() == [[1, 2, 5, 6, 0], [1, 2, 7, 0, 0], [0, 3, 8, 9, 4], [0, 3, 2, 0, 0]]
    assert b.completion_mask.tolist() == [[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 0, 0]]
    assert b.zero_variance.tolist() == [False, True] and not b.skip
    assert b.mask.tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0]]  # group 2 has zero variance
    assert b.advantages[0] > 0 > b.advantages[1] and b.advantages[2:].tolist() == [0.0, 0.0]
    assert b.chunks == [slice(0, 2), slice(2, 4)] and b.width == 3
    keep = prepare_batch(cfg(zero_variance="keep"), r, r.rewards, rank=0, pad_id=0, micro_batch=4)
    assert keep.mask[2:].sum() == 4 and keep.chunks == [slice(0, 4)]
    # unscored (NaN) and, with mask_truncated, truncated completions leave the mask
    r = rollouts([nan, 0.0, 1.0, 0.0], [[5], [7], [8], [2]], finish=["stop", "stop", "length", "stop"])
    b = prepare_batch(cfg(mask_truncated=True), r, r.rewards, rank=0, pad_id=0, micro_batch=2)
    assert b.mask[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0]


def test_rank_takes_its_rows_of_the_gathered_rewards_and_skip_needs_every_group():
    mine = rollouts([3.0, 3.0], [[1], [2]], prompts=((4,),))
    everyone = torch.tensor([1.0, 0.0, 3.0, 3.0])
    b = prepare_batch(cfg(zero_variance="skip"), mine, everyone, rank=1, pad_id=0, micro_batch=2)
    assert b.advantages.tolist() == [0.0, 0.0] and b.zero_variance.tolist() == [False, True] and not b.skip
    b = prepare_batch(cfg(zero_variance="skip"), mine, torch.tensor([1.0, 1.0, 3.0, 3.0]), rank=1, pad_id=0,
                      micro_batch=2)
    assert b.skip


def test_shared_prefix_packs_groups_only_when_micro_batches_hold_whole_groups():
    r = rollouts([1.0, 0.0, 1.0, 0.0], [[5], [7], [8], [2]])
    b = prepare_batch(cfg(), r, r.rewards, rank=0, pad_id=0, micro_batch=2, shared_prefix=True)
    pids, pmask, cids, cmask = b.groups
    assert pids.tolist() == [[1, 2], [0, 3]] and cids.tolist() == [[5], [7], [8], [2]]
    assert prepare_batch(cfg(), r, r.rewards, rank=0, pad_id=0, micro_batch=1, shared_prefix=True).groups is None
    with pytest.raises(ValueError, match="micro-batches of 3"):
        prepare_batch(cfg(), r, r.rewards, rank=0, pad_id=0, micro_batch=3)
