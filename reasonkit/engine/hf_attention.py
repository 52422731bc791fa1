"""A faster decode-step attention for the transformers backend on CPU.

Why it exists: at one new token per step, transformers' ``sdpa`` path spends most of a CPU decode
step outside the matmuls. For grouped-query attention with a padding mask it first copies every
layer's whole KV cache to repeat the key/value heads (``repeat_kv``), then calls PyTorch's CPU
flash-attention kernel, which is slow for a single query row. Profiled here (SmolLM2-135M, bf16,
32 sequences, 10 decode steps): flash attention 37 % of the step, the ``repeat_kv`` copies 34 %,
all matmuls 17 %. PyTorch's own ``enable_gqa=True`` avoids the copy but not the slow kernel
(2.05 vs 2.29 ms per layer call at 150 cached tokens).

What it does: for a one-token query it groups the query heads that share a key/value head and
computes ``softmax(q k^T * scale + mask) v`` with two batched matmuls on the cache as it is, in
fp32 (q, k, v upcast; the result cast back). Measured per layer call (32 sequences, 9 query / 3
key-value heads, bf16 cache; ``benchmarks/bench_decode_attention.py``; ``tests/engine/test_hf_attention.py``
checks the values): 0.32 ms vs sdpa's 2.25 ms at 150 cached tokens, 0.76 vs 6.29 ms at 400, with
the same error against an fp32 reference as sdpa (max 0.0077). Rounding the scores to bf16 instead
(transformers' ``eager`` numerics) is 2x faster again but 5x less accurate, so it is not done. The
result is not bit-identical to ``sdpa``: greedy text in bf16 can differ where two tokens are nearly
tied, as between any two kernels; in fp32 greedy text matched sdpa on 32/32 GSM8K prompts x 64
tokens.
Prefill (more than one query token) and anything unusual (training, dropout, soft-capping,
attention sinks, position bias) go to transformers' ``sdpa`` function unchanged.

It is registered with transformers' public ``AttentionInterface`` / ``AttentionMaskInterface``
under :data:`NAME` (masks are built as for ``sdpa``) and switched on around generation only by
:func:`decode_attention`, so training forwards never see it.
"""
from __future__ import annotations

import contextlib

NAME = "reasonkit_sdpa_decode"
_registered: set[str] = set()


def _attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None,
               **kwargs):
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    unusual = (query.shape[2] != 1 or module.training or dropout or kwargs.get("softcap")
               or kwargs.get("s_aux") is not None or kwargs.get("position_bias") is not None
               or kwargs.get("cache") is not None or getattr(module, "sinks", None) is not None)
    if unusual:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    batch, heads, _, dim = query.shape
    kv_heads, length = key.shape[1], key.shape[2]
    groups = heads // kv_heads
    scale = dim ** -0.5 if scaling is None else scaling
    q = query.reshape(batch, kv_heads, groups, dim).float()
    scores = torch.matmul(q, key.float().transpose(-1, -2)) * scale  # (batch, kv_heads, groups, length)
    if attention_mask is not None:
        mask = attention_mask[..., -length:].reshape(attention_mask.shape[0], 1, 1, length)
        if mask.dtype == torch.bool:
            # finfo.min, not -inf: a row with no visible token gets a uniform average, not NaN
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + mask.float()
    probs = torch.softmax(scores, dim=-1)
    out = torch.matmul(probs, value.float())  # (batch, kv_heads, groups, dim)
    return out.reshape(batch, 1, heads, dim).to(query.dtype), None


def register_attention(name: str, function) -> str:
    """Register an attention ``function`` under ``name`` with transformers' ``AttentionInterface``, with
    ``sdpa``'s mask builder (``AttentionMaskInterface``); idempotent per name."""
    if name not in _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

        AttentionInterface.register(name, function)
        AttentionMaskInterface.register(name, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])
        _registered.add(name)
    return name


def register() -> str:
    """Register the decode attention function and its mask builder with transformers (idempotent)."""
    return register_attention(NAME, _attention)


def _configs(model):
    """The configs whose ``_attn_implementation`` the decoder layers read (peft wrappers unwrapped)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    return [config] if config is not None else []


@contextlib.contextmanager
def decode_attention(model, enabled: bool = True):
    """Within the block, a CPU model on ``sdpa`` attention decodes with :func:`_attention`."""
    device = next(model.parameters()).device
    configs = [c for c in _configs(model) if getattr(c, "_attn_implementation", None) == "sdpa"]
    if not enabled or device.type != "cpu" or not configs:
        yield
        return
    register()
    for config in configs:
        config._attn_implementation = NAME
    try:
        yield
    finally:
        for config in configs:
            config._attn_implementation = "sdpa"
