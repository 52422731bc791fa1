"""Training-forward attention on CPU: PyTorch's SDPA with grouped-query heads, not repeated copies.

Why it exists: for a model with fewer key/value heads than query heads (SmolLM2-135M: 9 and 3)
and a padding mask, transformers' ``sdpa`` path repeats every key/value head to the query count
(``repeat_kv``, a copy) before calling ``scaled_dot_product_attention``, because on CUDA the
masked GQA call would fall back to a slow kernel. On CPU the masked call with ``enable_gqa=True``
runs the same flash kernel without the copy, and its backward writes key/value gradients for 3
heads instead of 9 that are then summed. Measured on the GRPO benchmark's completion forward
(q [8, 9, 63, 64], k/v [8, 3, 191, 64], a bool mask, forward + backward): 7.5 ms vs 11.5 ms per
layer call; the outputs are identical (max difference 0).

:func:`gqa_attention` switches a CPU model from ``sdpa`` to this function for the block (the
trainer wraps its log-prob forwards in it) and back, so nothing is saved with the model and
generation keeps its own decode attention (:mod:`reasonkit.engine.hf_attention`).
Anything unusual (soft-capping, attention sinks, position bias, a paged cache, a causal call
without a mask whose key is longer than its query) goes to transformers' ``sdpa`` unchanged.
"""
from __future__ import annotations

import contextlib

from reasonkit.engine.hf_attention import register_attention

NAME = "reasonkit_sdpa_gqa"


def _attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None,
               is_causal: bool | None = None, **kwargs):
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    q_len, kv_len = query.shape[2], key.shape[2]
    causal = (is_causal if is_causal is not None else getattr(module, "is_causal", True))
    causal = bool(q_len > 1 and attention_mask is None and causal)
    unusual = (groups <= 1 or kwargs.get("softcap") or kwargs.get("s_aux") is not None
               or kwargs.get("position_bias") is not None or kwargs.get("cache") is not None
               or getattr(module, "sinks", None) is not None or kwargs.get("output_attentions")
               or key.shape[-1] != value.shape[-1] or (causal and kv_len != q_len))
    if unusual:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask,
                                                           dropout_p=dropout, scale=scaling, is_causal=causal,
                                                           enable_gqa=True)
    return out.transpose(1, 2).contiguous(), None


def register() -> str:
    """Register the attention function and its mask builder (``sdpa``'s) with transformers."""
    return register_attention(NAME, _attention)


@contextlib.contextmanager
def gqa_attention(model, enabled: bool = True):
    """Within the block, a CPU model on ``sdpa`` attention runs :func:`_attention` instead."""
    # lazy: reasonkit.engine.packing imports torch
    from reasonkit.engine.packing import unwrap_model

    bare = unwrap_model(model)
    base = bare.get_base_model() if hasattr(bare, "get_base_model") else bare
    config = getattr(base, "config", None)
    params = next(bare.parameters(), None)
    if (not enabled or config is None or params is None or params.device.type != "cpu"
            or getattr(config, "_attn_implementation", None) != "sdpa"):
        yield
        return
    register()
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = "sdpa"
