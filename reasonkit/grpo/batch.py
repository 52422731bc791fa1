"""One generation batch made ready for the GRPO updates: advantages, the loss mask, packed tensors.

:func:`prepare_batch` is pure (tensors in, tensors out: no model, no accelerator); the trainer
gathers the rewards of every process first and then runs the updates on the result.

* advantages: group-relative over the gathered rewards (:func:`reasonkit.grpo.advantages.group_advantages`,
  groups never straddle processes), this process's rows ``rank * n .. rank * n + n - 1``;
* the token mask: completion tokens (:func:`reasonkit.engine.packing.pack`), minus unscored completions
  (reward NaN), minus truncated ones when ``mask_truncated``, minus the rows of zero-variance groups
  when ``zero_variance == "skip"``;
* ``skip``: every group of every process has zero variance under ``"skip"`` (no update is made);
* micro-batches: ``chunks`` of ``micro_batch`` rows, which must divide the rows of the process
  (the config's batch check guarantees it); with the shared-prefix forward
  (:mod:`reasonkit.grpo.prefix`) a micro-batch holds whole groups and the distinct prompts are
  packed once (:func:`reasonkit.engine.packing.pack_groups`).
* ``sampler_logprobs``: the vLLM sampler's log-prob of each sampled token, ``(n, T)`` NaN-padded
  (:func:`reasonkit.grpo.is_correction.sampler_tensor`), when the rollouts carry them, and always on
  a sampler backend (``vllm``, ``vllm-server``): a completion without log-probs is a NaN row (IS
  weight 1, outside the gap metrics), never a reason to drop the correction for the whole batch,
  and every process takes part in the correction's collectives.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from reasonkit.engine.packing import pack, pack_groups

from .advantages import group_advantages, scored_mask, zero_variance_groups
from .is_correction import SAMPLER_BACKENDS, sampler_tensor


@dataclass
class UpdateBatch:
    """What the updates of one step need, on CPU (the trainer moves the tensors to its device)."""
    input_ids: torch.Tensor            # (n, P + T) prompt left-padded | completion right-padded
    attention_mask: torch.Tensor       # (n, P + T)
    completion_mask: torch.Tensor      # (n, T) long: 1 on every sampled token
    mask: torch.Tensor                 # (n, T) float: the tokens the loss trains on
    advantages: torch.Tensor           # (n,)
    zero_variance: torch.Tensor        # (groups of all processes,) bool
    chunks: list[slice]                # micro-batches of rows
    skip: bool                         # no update: every group is zero-variance and zero_variance="skip"
    groups: tuple[torch.Tensor, ...] | None = None  # pack_groups(...) when the shared-prefix forward is used
    sampler_logprobs: torch.Tensor | None = None    # (n, T) the sampler's log-probs (NaN: not available)

    @property
    def width(self) -> int:
        """``T``: the completion columns."""
        return self.mask.size(1)


def prepare_batch(cfg, rollouts, all_rewards: torch.Tensor, *, rank: int, pad_id: int, micro_batch: int,
                  shared_prefix: bool = False) -> UpdateBatch:
    """Advantages, mask, packed tensors and micro-batches of this process's ``rollouts``.

    ``all_rewards`` are the rewards of every process in process order (this one's at ``rank``);
    ``cfg`` supplies ``group_size``, ``scale_rewards``, ``mask_truncated`` and ``zero_variance``.
    """
    G = cfg.group_size
    n = len(rollouts)
    if n % micro_batch:
        raise ValueError(f"{n} completions per process do not split into micro-batches of {micro_batch}")
    adv_all = group_advantages(all_rewards, G, scale=cfg.scale_rewards)
    zv_all = zero_variance_groups(all_rewards, G)
    lo = rank * n
    advantages = adv_all[lo:lo + n]
    zv = zv_all[lo // G:(lo + n) // G].repeat_interleave(G)

    input_ids, attention, cmask = pack(rollouts.prompt_ids, rollouts.completion_ids, pad_id)
    mask = cmask.float() * scored_mask(rollouts.rewards).float()[:, None]
    if cfg.mask_truncated:
        mask = mask * (~rollouts.truncated).float()[:, None]
    if cfg.zero_variance == "skip":
        mask = mask * (~zv).float()[:, None]
    shared = shared_prefix and micro_batch % G == 0
    groups = pack_groups(rollouts.prompt_ids, rollouts.completion_ids, G, pad_id) if shared else None

    sampler = None
    engine_lp = getattr(rollouts, "engine_logprobs", None)
    if engine_lp is not None or cfg.backend in SAMPLER_BACKENDS:
        # On a sampler backend every process has a tensor (NaN where a completion has no log-probs), so
        # every process runs the correction's collectives in the same step (issue 23 c).
        sampler = sampler_tensor(engine_lp if engine_lp is not None else [None] * n, mask.size(1))
    return UpdateBatch(input_ids, attention, cmask, mask, advantages, zv_all,
                       [slice(i, i + micro_batch) for i in range(0, n, micro_batch)],
                       skip=cfg.zero_variance == "skip" and bool(zv_all.all()), groups=groups,
                       sampler_logprobs=sampler)
