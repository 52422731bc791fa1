"""Group-relative advantages for GRPO (DeepSeekMath, arXiv 2402.03300, section 4.1.2).

Rewards arrive as one flat tensor ``[N]`` laid out group by group: completions ``0..G-1``
answer prompt 0, ``G..2G-1`` answer prompt 1, and so on (``G = group_size``). For a completion
``i`` in group ``g``::

    A_i = (r_i - mean_g(r)) / (s + eps)

where ``s`` depends on ``scale``:

- ``"group"``  s = std of the rewards in group ``g`` (the paper's outcome supervision);
- ``"batch"``  s = std of all rewards passed in: the centring stays per group, only the scale is
  shared (TRL's ``scale_rewards="batch"``; the group-mean / batch-std pairing of "Tricks or Traps?
  A Deep Dive into RL for LLM Reasoning", Liu et al. 2025). Pass the rewards of the whole global
  batch (all processes) so every process divides by the same number;
- ``"none"``   no division at all: ``A_i = r_i - mean_g(r)`` (Dr. GRPO, arXiv 2503.20783, which
  argues the std division biases updates toward too-easy/too-hard prompts).

Standard deviation: the *sample* (unbiased, Bessel-corrected, divide by ``n - 1``) std. This is
what TRL 1.16 uses (``trl.trainer.utils.nanstd`` applies the ``n / (n - 1)`` correction, the same
as ``torch.std``'s default), and what the tests compare against; the paper does not say which.
``eps`` defaults to ``1e-4``, TRL's constant.

"Could not score" (NaN rewards). A verifier that cannot score a completion (bad gold answer,
crash, timeout) yields NaN, never 0, because 0 would be a real "wrong" signal. Policy:

- the group mean and std are NaN-aware: they are computed over the scored completions of the
  group only (like TRL, which marks unscorable rows NaN before its ``nanmean``/``nanstd``);
- an unscored completion gets advantage exactly 0, and :func:`scored_mask` tells the caller to
  drop it from the loss altogether (token mask and token counts), so it neither moves the policy
  through the surrogate nor through the KL term. TRL only zeroes the advantage; dropping it from
  the mask is our choice, so the token-count normalisers see only completions that carry signal;
- a group with fewer than two scored completions has no usable baseline: all its advantages are
  0 and it counts as a zero-variance group.

Zero-variance groups (every scored reward equal, e.g. all wrong) have advantage 0 for every
member; :func:`zero_variance_groups` finds them so the trainer can skip them (DAPO's dynamic
sampling filter, arXiv 2503.14476) or keep them (they still contribute the KL term), and log
their share.
"""
from __future__ import annotations

import torch

from .choices import SCALE_REWARDS


def _check(rewards: torch.Tensor, group_size: int) -> None:
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be a 1-D tensor [N], got shape {tuple(rewards.shape)}")
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    if rewards.numel() % group_size:
        raise ValueError(
            f"{rewards.numel()} rewards are not a whole number of groups of {group_size}: "
            "pass group_size completions per prompt, laid out group by group"
        )


def _nan_mean_std(x: torch.Tensor, dim: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """NaN-aware mean and sample (n - 1) std along ``dim`` (all elements when None), keepdim.

    Where fewer than two values are finite the std is 0 (no spread can be measured) and where none
    is the mean is 0; both cases only arise for groups whose advantages end up 0 anyway.
    """
    if dim is None:
        x = x.reshape(1, -1)
        dim = 1
    ok = ~torch.isnan(x)
    n = ok.sum(dim=dim, keepdim=True)
    filled = torch.where(ok, x, torch.zeros_like(x))
    mean = filled.sum(dim=dim, keepdim=True) / n.clamp(min=1)
    sq = torch.where(ok, (x - mean) ** 2, torch.zeros_like(x)).sum(dim=dim, keepdim=True)
    std = torch.sqrt(sq / (n - 1).clamp(min=1))
    std = torch.where(n > 1, std, torch.zeros_like(std))
    return mean, std


def scored_mask(rewards: torch.Tensor) -> torch.Tensor:
    """BoolTensor[N]: True where the reward is a number (the completion could be scored).

    Multiply the token mask by ``scored_mask(rewards)[:, None]`` so unscored completions leave
    the loss, its token counts and the KL term (see the module docstring).
    """
    return ~torch.isnan(rewards)


def group_advantages(
    rewards: torch.Tensor, group_size: int, scale: str = "group", eps: float = 1e-4
) -> torch.Tensor:
    """Tensor[N] of advantages, (r - group mean) / (std + eps); see the module docstring.

    ``rewards`` is float [N] with N a multiple of ``group_size``; NaN marks "could not score"
    and gets advantage 0. The result is always finite and has the dtype of ``rewards`` (float32
    when rewards are integers).
    """
    if scale not in SCALE_REWARDS:
        raise ValueError(f"unknown scale {scale!r}: choose from {', '.join(SCALE_REWARDS)}")
    _check(rewards, group_size)
    r = rewards if rewards.is_floating_point() else rewards.float()
    grouped = r.view(-1, group_size)
    mean, std = _nan_mean_std(grouped, dim=1)
    centred = grouped - mean
    if scale == "group":
        adv = centred / (std + eps)
    elif scale == "batch":
        _, batch_std = _nan_mean_std(r, dim=None)
        adv = centred / (batch_std.reshape(()) + eps)
    else:
        adv = centred
    # Groups with < 2 scored members have no baseline; NaN rewards have no signal.
    n_scored = (~torch.isnan(grouped)).sum(dim=1, keepdim=True)
    adv = torch.where((n_scored >= 2) & ~torch.isnan(grouped), adv, torch.zeros_like(adv))
    return adv.reshape(-1)


def zero_variance_groups(rewards: torch.Tensor, group_size: int, atol: float = 1e-6) -> torch.Tensor:
    """BoolTensor[N / group_size]: True for groups whose scored rewards are all equal (within
    ``atol``), including groups with fewer than two scored completions. Their advantages are
    all 0, so they carry no policy-gradient signal."""
    _check(rewards, group_size)
    grouped = (rewards if rewards.is_floating_point() else rewards.float()).view(-1, group_size)
    ok = ~torch.isnan(grouped)
    hi = torch.where(ok, grouped, torch.full_like(grouped, float("-inf"))).amax(dim=1)
    lo = torch.where(ok, grouped, torch.full_like(grouped, float("inf"))).amin(dim=1)
    few = ok.sum(dim=1) < 2
    return few | ((hi - lo) <= atol)
