"""Completion log-probs with the prompt computed once per group (shared-prefix forward).

GRPO scores ``group_size`` completions of the same prompt. The plain forward
(:func:`reasonkit.engine.packing.completion_logprobs`) runs ``[prompt | completion]`` for every
completion, so each prompt is encoded ``G`` times. Here the ``B`` distinct prompts go through the
model once, with the KV cache kept (and gradients flowing through it), the cache is repeated ``G``
times along the batch, and the ``B*G`` completions run on top of it. Work and activation memory
drop from ``B*G*(P+C)`` tokens to ``B*P + B*G*C`` (about half for Countdown prompts with 64-token
completions, G = 4). The result equals the plain forward up to float rounding (tested): same
positions (the cache continues at ``P``), same mask, same logits.

Not used with gradient checkpointing (transformers turns the KV cache off when it is on) or
DeepSpeed; the trainer then falls back to the plain forward. No library offers this for training
forwards (vLLM shares prefixes only for inference), hence written here. The batch comes from
:func:`reasonkit.engine.packing.pack_groups`.
"""
from __future__ import annotations

import torch

from reasonkit.engine.packing import selective_log_softmax


def shared_prefix_logprobs(model, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                           completion_ids: torch.Tensor, completion_mask: torch.Tensor, group_size: int,
                           temperature: float = 1.0) -> torch.Tensor:
    """Float32 [B*G, C]: log-probs of each completion token, prompts encoded once per group.

    ``model`` is the bare (not DDP-wrapped) model: two forward calls feed one backward, which DDP's
    reducer does not allow; the trainer averages gradients across processes itself in that case.
    """
    G = group_size
    out = model(input_ids=prompt_ids, attention_mask=prompt_mask, use_cache=True, logits_to_keep=1)
    cache = out.past_key_values
    first = out.logits[:, -1:, :].repeat_interleave(G, dim=0)  # predicts completion token 0
    cache.batch_repeat_interleave(G)
    mask = torch.cat([prompt_mask.repeat_interleave(G, dim=0), completion_mask], dim=1)
    logp = selective_log_softmax(first, completion_ids[:, :1], temperature=temperature)
    if completion_ids.size(1) > 1:  # scored apart from token 0: no copy of the vocabulary-sized logits
        rest = model(input_ids=completion_ids[:, :-1], attention_mask=mask[:, :-1], past_key_values=cache,
                     use_cache=True).logits
        logp = torch.cat([logp, selective_log_softmax(rest, completion_ids[:, 1:], temperature=temperature)], dim=1)
    return logp
