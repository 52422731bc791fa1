"""LoRA merged into the base weights for the length of a generation, restored exactly afterwards.

Why: a peft LoRA layer runs its base matmul and then, per adapter, dropout, ``A``, ``B`` and a
scale: four more small ops per projection, in every decode step. With the weights merged
(``W + scale * B @ A``) a step is the base model's. What it saves on a GRPO rollout (embedded model,
fp32, LoRA r=8 on q/k/v/o, 8 rows x 64 sampled tokens) is measured by
``benchmarks/bench_decode_paths.py`` (``benchmarks/results/decode_paths.md``).

How: for each active vanilla LoRA layer the merged weight ``W + delta`` is built here as a *new*
tensor from peft's ``get_delta_weight`` (``scale * B @ A``, transposed for ``fan_in_fan_out``) and
swapped in; the original weight tensor is kept, and on exit it is put back and the layer marked
unmerged, and the packed copy :mod:`hf_linear` made of the merged weight is dropped (``.data``
swaps do not bump a tensor's version counter, so the next merge, given the freed address, would
otherwise be served this merge's copy). So nothing is subtracted again (peft's ``unmerge`` does
``W -= delta``, which in bf16 would round the base weights a little more on every call, and a
trainer merges once per step). The cost is one extra copy of the adapted weights while the block
runs, and the merge itself (one ``B @ A`` per layer). peft's own ``merge(safe_merge=True)`` is not
used: up to 0.21 it swapped in a new tensor, from 0.22 it copies into the old one in place, and
the kept "original" would then be the merged weight (the base model would decode with the adapter
after the block).

Not merged (the block does nothing): a model without LoRA layers, adapters disabled
(``disable_adapter()``), LoRA variants (DoRA and the like), several active adapters, and
parameters that are sharded or partitioned (DeepSpeed ZeRO-3, DTensor): those generate through
the adapter as before. Gradients are not tracked (the caller runs under ``no_grad``).
"""
from __future__ import annotations

import contextlib

from reasonkit.engine.hf_linear import forget


def lora_layers(model) -> list[tuple[str, object]]:
    """``(name, layer)`` of every peft LoRA layer of ``model`` (none without peft)."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:  # peft absent: nothing can be a LoRA layer
        return []
    return [(name, m) for name, m in model.named_modules() if isinstance(m, LoraLayer)]


def plain_adapter(layer) -> str | None:
    """The one active, enabled, unmerged vanilla LoRA adapter of ``layer`` (not DoRA and the like), else None."""
    active = [a for a in layer.active_adapters if a in layer.lora_A]
    if layer.disable_adapters or layer.merged or len(active) != 1 or active[0] in getattr(layer, "lora_variant", {}):
        return None
    return active[0]


def _mergeable_layers(model) -> list:
    layers = [layer for _, layer in lora_layers(model)]
    for layer in layers:
        weight = getattr(layer.get_base_layer(), "weight", None)
        adapter = plain_adapter(layer)
        if (adapter is None or weight is None or hasattr(weight, "ds_id")
                or type(weight.data).__name__ == "DTensor"
                or (getattr(layer, "lora_bias", {}).get(adapter, False) and layer.get_base_layer().bias is None)):
            return []
    return layers


def _merge_new_tensor(layer, base) -> None:
    """Point ``base``'s weight (and bias, with ``lora_bias``) at new tensors holding the merged values;
    the tensors they held before are left untouched. The NaN check is peft's ``safe_merge``'s."""
    import torch

    adapter = plain_adapter(layer)
    weight = base.weight.data
    merged = weight + layer.get_delta_weight(adapter).to(weight.dtype)
    if not torch.isfinite(merged).all():
        raise ValueError(f"NaNs in the weights merged with LoRA adapter {adapter!r}: the adapter is broken")
    bias = None
    if getattr(layer, "lora_bias", {}).get(adapter, False):
        bias = base.bias.data + (layer.lora_B[adapter].bias * layer.scaling[adapter]).to(base.bias.dtype)
    base.weight.data = merged
    if bias is not None:
        base.bias.data = bias
    layer.merged_adapters.append(adapter)


@contextlib.contextmanager
def merged_lora(model, enabled: bool = True):
    """Within the block, ``model``'s active LoRA adapter is merged into its base weights."""
    import torch

    layers = _mergeable_layers(model) if enabled else []
    saved = []
    try:
        with torch.no_grad():
            for layer in layers:
                base = layer.get_base_layer()
                saved.append((layer, base, base.weight.data, None if base.bias is None else base.bias.data))
                _merge_new_tensor(layer, base)
        yield
    finally:
        for layer, base, weight, bias in saved:
            forget(base.weight)  # the merged weight's packed copy (issue 23, item 1): never served again
            base.weight.data = weight
            if bias is not None:
                base.bias.data = bias
            layer.merged_adapters.clear()
