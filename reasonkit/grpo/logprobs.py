"""Per-token log-probabilities of sampled completions under the policy and the reference.

Layout (as the rollout builds it): ``input_ids = [prompt | completion]`` with prompts left-padded
and completions right-padded to a common length ``T``; ``attention_mask`` covers both parts, and
the completion occupies the last ``T`` columns. The logits at position ``p`` predict token
``p + 1``, so the completion tokens are scored by the logits of positions ``-T-1 .. -2``.

One forward pass per call. Only the logits of those ``T + 1`` final positions are computed when
the model's forward accepts transformers' ``logits_to_keep`` (it skips the LM head on the
prompt, the largest saving for long prompts); otherwise the full logits are sliced before any
softmax. The logits are divided by the sampling temperature (TRL does the same) so the
log-probs are those of the distribution the tokens were sampled from.

Log-softmax: a selective log-softmax, ``logit[token] - logsumexp(logits)``, computed per row
chunk in float32. It never materialises a full ``[N, T, V]`` log-softmax tensor (only the chunk
being reduced), and bf16 logits are upcast chunk by chunk so the log-probs of a bf16 model are
not rounded to bf16 before the ratio ``exp(logp - old_logp)``. Written here rather than taken
from TRL because TRL is only a test dependency.

Reference log-probs: with LoRA (a peft ``PeftModel``) the reference policy is the base model,
obtained with ``model.disable_adapter()`` — no second copy of the weights. For full fine-tuning
the caller keeps a frozen copy of the initial model and passes it as ``ref_model``.
"""
from __future__ import annotations

import inspect
import torch


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """Strip DDP / DeepSpeed / torch.compile wrappers (``.module`` / ``._orig_mod``)."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(getattr(model, "module", None), torch.nn.Module):
            model = model.module
        else:
            return model


def _accepts_logits_to_keep(model: torch.nn.Module) -> bool:
    m = unwrap_model(model)
    if hasattr(m, "get_base_model"):  # peft: its forward takes **kwargs and passes them on
        m = m.get_base_model()
    try:
        return "logits_to_keep" in inspect.signature(m.forward).parameters
    except (TypeError, ValueError):
        return False


def selective_log_softmax(logits: torch.Tensor, index: torch.Tensor, chunk_rows: int = 8) -> torch.Tensor:
    """``log_softmax(logits)[..., index]`` for logits [N, T, V] and index [N, T], in float32.

    Rows are processed ``chunk_rows`` sequences at a time so the float32 copy of the logits and the
    logsumexp work buffer are bounded by one chunk.
    """
    out = []
    for start in range(0, logits.size(0), chunk_rows):
        chunk = logits[start : start + chunk_rows].float()
        idx = index[start : start + chunk_rows].unsqueeze(-1)
        picked = torch.gather(chunk, -1, idx).squeeze(-1)
        out.append(picked - torch.logsumexp(chunk, dim=-1))
    return torch.cat(out, dim=0)


def completion_logprobs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    completion: torch.Tensor | int,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Float32 Tensor[N, T]: log-probs of the last ``T`` tokens of ``input_ids`` under ``model``.

    ``completion`` is the completion mask [N, T] (only its width is used) or ``T`` itself
    (TRL's ``logits_to_keep``). Gradients flow when called outside ``torch.no_grad()``. Padding
    positions get a finite log-prob that the loss masks out.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 to score sampled tokens, got {temperature}")
    t = int(completion) if not isinstance(completion, torch.Tensor) else completion.size(-1)
    if not 0 < t < input_ids.size(1):
        raise ValueError(f"completion length {t} must be in 1..{input_ids.size(1) - 1} (input length)")
    kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "use_cache": False}
    if _accepts_logits_to_keep(model):
        kwargs["logits_to_keep"] = t + 1
    logits = model(**kwargs).logits
    logits = logits[:, -(t + 1) : -1, :]  # positions predicting the completion tokens
    if temperature != 1.0:
        logits = logits / temperature
    return selective_log_softmax(logits, input_ids[:, -t:])


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
