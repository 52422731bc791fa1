r"""The GRPO policy loss on per-token log-probabilities, as implemented.

Inputs for ``N`` sampled completions of (padded) length ``T``: the current policy's log-probs
``logp[i, t] = log pi_theta(o_{i,t} | q, o_{i,<t})`` (with gradient), the log-probs of the policy
that sampled them ``old_logp`` (no gradient), optionally the reference policy's ``ref_logp``,
one advantage ``A_i`` per completion (see :mod:`reasonkit.grpo.advantages`) and a token mask
``m[i, t]`` (1 on completion tokens that count; the caller zeroes padding, truncated completions
when ``mask_truncated`` is on, and unscored completions).

Per token (``s`` is the importance ratio, per token or per sequence)::

    r[i, t]  = logp - old_logp                                   # log ratio
    s        = exp(r[i, t])                                 token level (PPO / GRPO, the default)
    s        = exp(sum_t m r[i, t] / sum_t m)               sequence level (GSPO, arXiv 2507.18071):
                                                            one ratio per completion, the geometric
                                                            mean of its token ratios
    surr     = min(s * A, clip(s, 1 - eps_low, 1 + eps_high) * A)
    k3       = exp(ref_logp - logp) - (ref_logp - logp) - 1     # k3 estimator of KL(pi_theta || pi_ref)
    kl       = k3            kl_estimator "k3"          (DeepSeekMath eq. 4, as the paper writes it)
    kl       = s * k3        kl_estimator "weighted_k3" (DeepSeek-V3.2, arXiv 2512.02556; TRL 1.16's
                                                         default, ``use_bias_correction_kl=True``)
    l[i, t]  = -surr + beta * kl

and the loss aggregates ``l`` over the masked tokens according to ``loss_type``:

=========  ==================================================================================
grpo       (1/N) sum_i (1/|o_i|) sum_t m l       mean per sequence, then over sequences (paper)
bnpo       sum_{i,t} m l / sum_{i,t} m           token mean over this micro-batch
dapo       sum_{i,t} m l / (num_items_in_batch / num_processes)
                                                 token mean over the *global* batch: every token
                                                 of the optimiser step (all processes, all
                                                 accumulation micro-batches) weighs the same
dr_grpo    sum_{i,t} m l / (N * max_completion_length)   constant normaliser (Dr. GRPO)
=========  ==================================================================================

With ``importance_sampling_level = "sequence"`` use ``loss_type = "grpo"`` to get GSPO's
per-sequence objective; the token-sum types (bnpo, dapo, dr_grpo) then weigh each sequence by its
length (TRL warns about the same).

``grpo``, ``bnpo`` and ``dr_grpo`` are then divided by ``gradient_accumulation_steps`` so that
summing the gradients of the micro-batches of one optimiser step averages them; ``dapo`` already
divides by the token count of the whole step, so it is not. The ``num_processes`` factor in
``dapo`` undoes DDP's averaging of gradients over processes. With these two arguments the
returned loss is exactly the one to call ``backward()`` on (do not let accelerate divide by the
accumulation steps again: create the ``Accelerator`` without ``gradient_accumulation_steps`` or
pass ``gradient_accumulation_steps=1`` here). Under DeepSpeed, whose engine divides every loss by
its own accumulation steps in ``backward``, pass ``gradient_accumulation_steps=1`` and multiply a
``dapo`` loss by the accumulation steps. The normalisations match TRL 1.16's
``GRPOTrainer`` for these four loss types (checked in ``tests/train/test_grpo_loss.py``).

``is_weights`` (optional, ``[N, T]``, no gradient) multiplies every token's policy term (the clipped
surrogate) before the KL term is added and before aggregation, as TRL 1.16 does: the truncated
importance-sampling correction for a sampler whose log-probs differ from the trainer's (see
:mod:`reasonkit.grpo.is_correction`). A weight of 0 (a masked sequence) removes the token's policy
gradient but keeps its KL penalty.

When ``old_logp`` is None (``num_iterations`` mu = 1, one update per generation batch) the ratio
is ``exp(logp - logp.detach())``: value 1, gradient that of ``logp``, so the clip never fires.
With mu > 1 the caller stores ``old_logp`` from the policy at generation time.

Departures from DeepSeekMath (arXiv 2402.03300, eq. 3 and section 4.1):

- KL estimator. The paper puts ``beta * D_KL`` inside the per-token objective using the k3
  estimator ``pi_ref/pi_theta - log(pi_ref/pi_theta) - 1``; we do the same (it is added to each
  token's loss before aggregation, so it follows ``loss_type``'s normalisation), and ``beta = 0``
  (the default, following DAPO / Dr. GRPO and TRL) needs no reference model at all. The paper's
  unweighted k3 (``kl_estimator = "k3"``) is an unbiased estimate of the KL *value*, but its gradient
  on samples from pi_theta is ``(1 - pi_ref/pi_theta) grad log pi_theta``, whose expectation is the
  gradient of the *forward* KL(pi_ref || pi_theta), not of the reverse KL the objective names.
  Multiplying k3 by the importance ratio ``s`` (value 1 on-policy, gradient ``grad log pi_theta``)
  adds ``k3 * grad log pi_theta`` and makes the expected gradient the reverse-KL one. Because that is
  the gradient of the objective as written, and it is TRL 1.16's default, ``weighted_k3`` is our
  default too (it changes nothing when ``beta = 0``). With ``importance_sampling_level = "sequence"``
  the sequence ratio is broadcast onto the per-token k3, as in TRL.
- GSPO. ``importance_sampling_level = "sequence"`` replaces the token ratios by one length-normalised
  sequence ratio (GSPO); the clip then acts on whole completions, so the clip ranges are usually far
  smaller (the GSPO paper uses 3e-4 / 4e-4). The clip metrics are then token means of the broadcast
  per-sequence flags (TRL averages them over sequences instead).
- Clip-higher. ``epsilon_high`` (DAPO, arXiv 2503.14476) allows an upper clip bound different
  from the lower one; ``epsilon_high = None`` gives the paper's symmetric clip.
- Aggregation. The paper's per-sequence mean is ``grpo``; ``bnpo``, ``dapo`` (DAPO's token-level
  policy gradient loss) and ``dr_grpo`` (Dr. GRPO, arXiv 2503.20783, which removes the length
  normalisation bias) are alternatives. Sequences whose mask is all zero contribute 0 to
  ``grpo`` but still count in its ``N`` (as in TRL).
- No reward model and no process supervision: rewards come from verifiers, one outcome reward
  per completion, and every token of a completion shares its advantage.
- No iterative reward-model retraining; the reference policy is fixed (the initial model, or the
  LoRA base with the adapter disabled), not refreshed every iteration as in the paper's
  iterative GRPO.
"""
from __future__ import annotations

import torch

from .choices import IMPORTANCE_SAMPLING_LEVELS, KL_ESTIMATORS, LOSS_TYPES


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor | None,
    ref_logp: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    loss_type: str = "grpo",
    max_completion_length: int | None = None,
    num_items_in_batch: int | float | torch.Tensor | None = None,
    num_processes: int = 1,
    gradient_accumulation_steps: int = 1,
    kl_estimator: str = "weighted_k3",
    importance_sampling_level: str = "token",
    is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """GRPO loss for one micro-batch and its metrics (see the module docstring for the formulas).

    Args:
        logp: [N, T] log-probs of the sampled tokens under the current policy (with gradient).
        old_logp: [N, T] log-probs under the sampling policy, or None (on-policy, mu = 1).
        ref_logp: [N, T] reference log-probs; needed only when ``beta > 0`` (used for the ``kl``
            metric whenever given).
        advantages: [N] (or [N, T]) advantages; they must be finite.
        mask: [N, T] bool/float, 1 on tokens that count.
        epsilon / epsilon_high: lower / upper clip range (epsilon_high None = epsilon).
        beta: KL weight.
        kl_estimator: "weighted_k3" (k3 times the importance ratio; TRL's default) | "k3" (the paper's).
        importance_sampling_level: "token" (GRPO) | "sequence" (GSPO).
        loss_type: "grpo" | "bnpo" | "dapo" | "dr_grpo".
        max_completion_length: the generation's max new tokens; required by "dr_grpo".
        num_items_in_batch: for "dapo", the number of mask tokens in the whole optimiser step
            (summed over processes and accumulation micro-batches). May be omitted only with one
            process and no accumulation (it is then this micro-batch's token count).
        num_processes: DDP world size (dapo only; see the module docstring).
        gradient_accumulation_steps: micro-batches per optimiser step (grpo, bnpo, dr_grpo).
        is_weights: [N, T] importance-sampling weights per token (None = all 1).

    Returns:
        ``(loss, metrics)``: a scalar to ``backward()``, and detached scalar tensors
        ``policy_loss`` (the clipped-surrogate part, without the KL term) and ``kl_loss`` (the
        ``beta * kl`` part; 0 when ``beta = 0``), both aggregated like the loss and before the
        accumulation division, so ``policy_loss + kl_loss`` is this micro-batch's loss (for
        ``dapo``: its share of the optimiser step's loss, which the micro-batches *sum* to), ``kl`` (token mean of the chosen KL
        estimator; only when ``ref_logp`` is given), ``ratio`` (token mean of s), ``clip_ratio/low``
        (rho < 1 - eps_low with A < 0), ``clip_ratio/high`` (rho > 1 + eps_high with A > 0),
        ``clip_ratio/region`` (either) — token means over the mask — and ``tokens`` (mask sum).
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"unknown loss_type {loss_type!r}: choose from {', '.join(LOSS_TYPES)}")
    if kl_estimator not in KL_ESTIMATORS:
        raise ValueError(f"unknown kl_estimator {kl_estimator!r}: choose from {', '.join(KL_ESTIMATORS)}")
    if importance_sampling_level not in IMPORTANCE_SAMPLING_LEVELS:
        raise ValueError(f"unknown importance_sampling_level {importance_sampling_level!r}: choose from "
                         f"{', '.join(IMPORTANCE_SAMPLING_LEVELS)}")
    if logp.dim() != 2:
        raise ValueError(f"logp must be [N, T], got shape {tuple(logp.shape)}")
    if mask.shape != logp.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} differs from logp shape {tuple(logp.shape)}")
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if beta > 0 and ref_logp is None:
        raise ValueError("beta > 0 needs ref_logp (reference log-probs); pass them or set beta = 0")
    eps_low = float(epsilon)
    eps_high = float(epsilon if epsilon_high is None else epsilon_high)

    keep = mask.bool()
    m = keep.to(logp.dtype)
    # Zero the inputs at masked positions first (not only the outputs), so padding log-probs such as
    # -inf can never turn into NaN gradients through exp().
    logp = logp.masked_fill(~keep, 0.0)
    old = logp.detach() if old_logp is None else old_logp.detach().to(logp.dtype).masked_fill(~keep, 0.0)
    adv = advantages.detach().to(logp.dtype)
    if adv.dim() == 1:
        adv = adv.unsqueeze(1)

    log_ratio = logp - old
    if importance_sampling_level == "sequence":  # GSPO: one length-normalised ratio per completion
        log_ratio = (log_ratio * m).sum(dim=1, keepdim=True) / m.sum(dim=1, keepdim=True).clamp(min=1.0)
    ratio = torch.exp(log_ratio)  # [N, T] or [N, 1]
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    per_token = -torch.min(ratio * adv, clipped * adv)

    if is_weights is not None:  # the policy term only, before the KL term is added (TRL 1.16's order)
        per_token = per_token * is_weights.detach().to(logp.dtype).masked_fill(~keep, 0.0)

    kl = None
    kl_term = None
    if ref_logp is not None:
        d = ref_logp.detach().to(logp.dtype).masked_fill(~keep, 0.0) - logp
        kl = torch.exp(d) - d - 1.0
        if kl_estimator == "weighted_k3":
            kl = kl * ratio
        if beta > 0:
            kl_term = beta * kl

    if loss_type == "dapo":
        if num_items_in_batch is None:
            if num_processes > 1 or gradient_accumulation_steps > 1:
                raise ValueError(
                    "loss_type 'dapo' with several processes or accumulation steps needs num_items_in_batch "
                    "(mask tokens summed over all processes and micro-batches of the optimiser step)"
                )
            num_items_in_batch = m.sum()
        n_items = torch.as_tensor(num_items_in_batch, dtype=logp.dtype, device=logp.device).clamp(min=1.0)
    elif loss_type == "dr_grpo" and not max_completion_length:
        raise ValueError("loss_type 'dr_grpo' needs max_completion_length (the generation's max tokens)")

    def aggregate(x: torch.Tensor) -> torch.Tensor:
        """``loss_type``'s aggregation of per-token terms (linear, so policy and KL parts add up)."""
        x = x.expand_as(logp) * m
        if loss_type == "grpo":
            return (x.sum(dim=1) / m.sum(dim=1).clamp(min=1.0)).mean()
        if loss_type == "bnpo":
            return x.sum() / m.sum().clamp(min=1.0)
        if loss_type == "dr_grpo":
            return x.sum() / (logp.size(0) * max_completion_length)
        return x.sum() / (n_items / num_processes)  # dapo

    policy_loss = aggregate(per_token)
    kl_loss = aggregate(kl_term) if kl_term is not None else torch.zeros((), dtype=logp.dtype, device=logp.device)
    loss = policy_loss + kl_loss
    if loss_type != "dapo":  # dapo already divides by the token count of the whole optimiser step
        loss = loss / gradient_accumulation_steps

    with torch.no_grad():
        ratio = ratio.expand_as(logp)
        low = ((ratio < 1.0 - eps_low) & (adv < 0)).to(logp.dtype).expand_as(logp)
        high = ((ratio > 1.0 + eps_high) & (adv > 0)).to(logp.dtype).expand_as(logp)
        metrics: dict[str, torch.Tensor] = {
            "policy_loss": policy_loss.detach(),
            "kl_loss": kl_loss.detach(),
            "ratio": _masked_mean(ratio, m),
            "clip_ratio/low": _masked_mean(low, m),
            "clip_ratio/high": _masked_mean(high, m),
            "clip_ratio/region": _masked_mean(torch.clamp(low + high, max=1.0), m),
            "tokens": m.sum(),
        }
        if kl is not None:
            metrics["kl"] = _masked_mean(kl, m)
    return loss, {k: v.detach() for k, v in metrics.items()}
