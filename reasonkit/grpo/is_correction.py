r"""Sampler / trainer log-prob mismatch: the gap metrics and truncated importance-sampling weights.

A vLLM engine (in-process ``--backend vllm`` or a server, ``--backend vllm-server``) samples with
other kernels than the trainer's forward pass, and a server is one step stale whenever its adapter
load lags. So the policy log-prob the trainer recomputes, ``logp_old[i, t] = log pi_theta_old(o_t)``,
differs from the sampler's ``logp_s[i, t]``. Per step we log, over the tokens of the loss mask,

    sampler/logprob_gap_mean = mean |logp_old - logp_s|,   sampler/logprob_gap_max = max |...|

(TRL's ``sampling/sampling_logp_difference/{mean,max}``) and, unless the mode is ``none``, weight
every token's loss by ``w[i, t]`` (TRL's ``vllm_importance_sampling_correction``)::

    token_truncate     w = min(exp(logp_old - logp_s), C)                 per token
    token_mask         w = exp(logp_old - logp_s) if that is <= C, else 0  per token
    sequence_truncate  w = min(exp(sum_t m (logp_old - logp_s)), C)        one weight per sequence
    sequence_mask      w = exp(sum_t m (logp_old - logp_s)) if <= C, else 0

with the cap ``C = importance_sampling_cap`` (3.0 as in TRL 1.16). The weights carry no gradient;
:func:`reasonkit.grpo.loss.grpo_loss` multiplies each token's loss (surrogate plus KL term) by
them. Departures from TRL: no lower bound ``C_min``; a token whose sampler log-prob is missing
(NaN) gets weight 1 and leaves the gap metrics, as in TRL.

Where ``logp_old`` comes from. With several updates per batch (``num_iterations > 1``) it is
recorded under ``torch.no_grad`` in eval mode before the updates, as TRL does. With one update per
batch (the default) the policy being updated *is* the one that was synced to the sampler, so
``logp_old`` is the detached log-prob of each micro-batch's own training forward
(:class:`StepCorrection`). TRL runs an extra no-grad forward over the whole batch for it
instead; skipping it saves one forward over the batch per step. Without dropout the two agree to
float rounding (tested); with LoRA dropout the training forward's value carries that micro-batch's
dropout mask.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # torch is imported inside the tensor functions: TrainConfig imports check() lightly
    import torch

IS_MODES = ("none", "token_truncate", "token_mask", "sequence_truncate", "sequence_mask")
SAMPLER_BACKENDS = ("vllm", "vllm-server")


_DTYPES = {"fp32": "float32", "float32": "float32", "bf16": "bfloat16", "bfloat16": "bfloat16",
           "fp16": "float16", "float16": "float16", "half": "float16"}


def engine_dtype_differs(cfg) -> bool:
    """The in-process engine was given another dtype than the trainer's (``backend_options dtype=...``)."""
    engine = _DTYPES.get(str((cfg.backend_options or {}).get("dtype", "auto")))
    return cfg.backend == "vllm" and engine is not None and engine != _DTYPES.get(cfg.dtype)


def resolve_mode(mode: str, backend: str, dtype_differs: bool = False) -> str:
    """``auto`` -> ``token_truncate`` for the server (always one step stale risk) and for an engine
    in another dtype than the trainer (bf16 sampling, fp32 training), ``none`` otherwise."""
    if mode == "auto":
        return "token_truncate" if backend == "vllm-server" or dtype_differs else "none"
    return mode


def check(mode: str, cap: float, backend: str) -> str | None:
    """A fix-it message for an invalid combination, else None (called from ``TrainConfig``)."""
    if mode != "auto" and mode not in IS_MODES:
        return f"importance_sampling {mode!r}: choose auto, {', '.join(IS_MODES)}"
    if not cap > 0:
        return f"importance_sampling_cap = {cap}: must be > 0 (TRL's default is 3.0)"
    if resolve_mode(mode, backend) != "none" and backend not in SAMPLER_BACKENDS:
        return (f"importance_sampling {mode}: backend {backend} samples from the live policy, there are no "
                "sampler log-probs to correct; use --backend vllm or vllm-server, or --importance-sampling none")
    return None


def sampler_tensor(engine_logprobs: Sequence[Sequence[float] | None], T: int) -> torch.Tensor:
    """Per-completion sampler log-probs right-padded with NaN to ``[N, T]`` (NaN = not available)."""
    import torch

    out = torch.full((len(engine_logprobs), T), float("nan"), dtype=torch.float32)
    for i, lps in enumerate(engine_logprobs):
        if lps:
            vals = torch.tensor([float(x) for x in lps[:T]], dtype=torch.float32)
            out[i, :vals.numel()] = vals
    return out


def gap_metrics(old_logp: torch.Tensor, sampler_logp: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """Mean and max of |old - sampler| over the masked tokens that have a sampler log-prob."""
    import torch

    delta = (old_logp.float() - sampler_logp.to(old_logp.device).float()).abs()
    keep = mask.bool() & ~torch.isnan(delta)
    vals = delta[keep]
    if vals.numel() == 0:
        return {"sampler/logprob_gap_mean": 0.0, "sampler/logprob_gap_max": 0.0}
    return {"sampler/logprob_gap_mean": float(vals.mean()), "sampler/logprob_gap_max": float(vals.max())}


def importance_weights(old_logp: torch.Tensor, sampler_logp: torch.Tensor, mask: torch.Tensor, mode: str,
                       cap: float) -> tuple[torch.Tensor | None, dict[str, float]]:
    """``[N, T]`` weights (None for mode ``none``) and their metrics: mean weight over the mask and the
    share of masked tokens whose weight was capped (truncate) or zeroed (mask)."""
    import torch

    if mode == "none":
        return None, {}
    m = mask.float()
    diff = torch.nan_to_num(old_logp.float() - sampler_logp.to(old_logp.device).float(), nan=0.0) * m
    if mode.startswith("sequence"):
        diff = diff.sum(dim=1, keepdim=True)
    ratio = torch.exp(diff)
    hit = ratio > cap
    weights = torch.clamp(ratio, max=cap) if mode.endswith("truncate") else ratio.masked_fill(hit, 0.0)
    weights = weights.expand_as(m).contiguous().detach()
    hit = hit.expand_as(m).float()
    total = m.sum().clamp(min=1.0)
    return weights, {"sampler/is_weight_mean": float((weights * m).sum() / total),
                     "sampler/is_capped": float((hit * m).sum() / total)}


def step_correction(accelerator, cfg, old_logp: torch.Tensor, sampler_logp: torch.Tensor, mask: torch.Tensor):
    """This process's weights and the step's metrics (gap and weight means averaged
    over processes, the gap max the max over processes)."""
    import torch

    local = gap_metrics(old_logp, sampler_logp, mask)
    weights, is_metrics = importance_weights(old_logp, sampler_logp, mask, resolve_mode(cfg.importance_sampling,
                                                                                           cfg.backend,
                                                                                           engine_dtype_differs(cfg)),
                                             cfg.importance_sampling_cap)
    local.update(is_metrics)
    keys = sorted(local)
    dev = accelerator.device
    means = accelerator.reduce(torch.tensor([local[k] for k in keys], device=dev), "mean").cpu()
    out = {k: float(v) for k, v in zip(keys, means)}
    out["sampler/logprob_gap_max"] = float(accelerator.gather(
        torch.tensor([local["sampler/logprob_gap_max"]], device=dev)).max())
    return weights, out


class StepCorrection:
    """The trainer's hook for one step: ``weights(c, logp)`` per micro-batch, then ``metrics(accelerator)``.

    Given a recorded ``old_logp`` (several updates per batch), the weights and metrics come from it.
    Without one (one update per batch), each micro-batch's training log-probs (``logp``, with grad;
    slice ``c`` of the batch) are detached and used, and the metrics are computed over all of them.
    """

    def __init__(self, cfg, sampler_logp: torch.Tensor, mask: torch.Tensor, old_logp: torch.Tensor | None = None):
        self.cfg, self.sampler_logp, self.mask, self.old_logp = cfg, sampler_logp, mask, old_logp
        self.mode = resolve_mode(cfg.importance_sampling, cfg.backend, engine_dtype_differs(cfg))
        self.seen: list = []
        self._recorded = None
        if old_logp is not None:
            self._recorded = importance_weights(old_logp, sampler_logp, mask, self.mode, cfg.importance_sampling_cap)[0]

    def weights(self, c: slice, logp: torch.Tensor) -> torch.Tensor | None:
        if self.old_logp is not None:
            return None if self._recorded is None else self._recorded[c]
        self.seen.append(logp.detach())
        return importance_weights(self.seen[-1], self.sampler_logp[c], self.mask[c], self.mode,
                                  self.cfg.importance_sampling_cap)[0]

    def metrics(self, accelerator) -> dict[str, float]:
        import torch

        old = self.old_logp if self.old_logp is not None else torch.cat(self.seen)
        return step_correction(accelerator, self.cfg, old, self.sampler_logp, self.mask)[1]
