"""Reference-policy log-probs for the KL term.

With LoRA (a peft ``PeftModel``) the reference policy is the base model, obtained with
``model.disable_adapter()``: no second copy of the weights. For full fine-tuning the caller keeps
a frozen copy of the initial model and passes it as ``ref_model``. The log-probs themselves (layout,
``logits_to_keep``, temperature, the selective float32 log-softmax) are
:func:`reasonkit.engine.packing.completion_logprobs`.
"""
from __future__ import annotations

import torch

from reasonkit.engine.packing import completion_logprobs, unwrap_model


def is_peft_model(model: torch.nn.Module) -> bool:
    return hasattr(unwrap_model(model), "disable_adapter")


def reference_logprobs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    completion: torch.Tensor | int,
    temperature: float = 1.0,
    ref_model: torch.nn.Module | None = None,
) -> torch.Tensor:
    """Reference-policy log-probs [N, T], without gradient.

    ``ref_model`` given: use it (full fine-tuning keeps a frozen copy of the initial model).
    Otherwise ``model`` must be a peft model: the same weights are run with the adapter disabled.
    """
    with torch.no_grad():
        if ref_model is not None:
            return completion_logprobs(ref_model, input_ids, attention_mask, completion, temperature)
        if not is_peft_model(model):
            raise ValueError(
                "the reference policy of a full fine-tuning run needs a frozen copy of the initial model: "
                "pass ref_model (or use LoRA, lora_r > 0, whose reference is the base with the adapter disabled, "
                "or set beta = 0 to train without a KL term)"
            )
        peft_model = unwrap_model(model)
        with peft_model.disable_adapter():
            return completion_logprobs(peft_model, input_ids, attention_mask, completion, temperature)
