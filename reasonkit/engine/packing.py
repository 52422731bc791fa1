"""Token rows to tensors and teacher-forced log-probs: the one place reasonkit pads, packs and scores.

Used by the hf backend (generation batches, log-probs of sampled tokens), its decode loop, the GRPO
rollouts and trainer (policy / reference / old log-probs) and the shared-prefix forward.

Layout. Prompts are left-padded and completions right-padded, so every prompt ends at the same
column ``P`` and completion token ``t`` of every row sits at column ``P + t``:
``input_ids = [pad.. prompt | completion ..pad]``, ``attention_mask`` 1 on real tokens. A batch
whose completions are all empty still gets one completion column so shapes stay valid (its
completion mask is all zero).

Teacher-forced log-probs. The logits at position ``p`` predict token ``p + 1``, so the ``T``
completion tokens are scored by the logits of positions ``-T-1 .. -2``; only those ``T + 1``
positions go through the LM head when the model's forward takes transformers' ``logits_to_keep``.
Logits are divided by the sampling temperature (as TRL does), so the log-probs are those of the
distribution the tokens were drawn from.

Selective log-softmax: ``log p(token) = logit[token] - logsumexp(logits)``, in float32, a few
rows at a time: no full ``[N, T, V]`` log-softmax tensor is built, and bf16 logits are upcast
chunk by chunk (the ratio ``exp(logp - old_logp)`` would otherwise see bf16 rounding).

Position ids: the GRPO forwards pass none (the model numbers columns from 0, the same in the plain
and the shared-prefix forward, which the tests hold equal); :func:`sequence_logprobs`, which scores
completions for the hf backend, passes ``cumsum(mask) - 1`` as generation does.
"""
from __future__ import annotations

import inspect
from typing import Sequence

import torch


def left_pad(rows: Sequence[Sequence[int]], pad_id: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``ids``, ``mask`` (B, max length): each row right-aligned after ``pad_id`` padding."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row):] = 1
    return ids.to(device), mask.to(device)


def right_pad(rows: Sequence[Sequence[int]], pad_id: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``ids``, ``mask`` (B, max(1, max length)): each row left-aligned before its padding."""
    width = max(1, max((len(r) for r in rows), default=0))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, :len(row)] = 1
    return ids.to(device), mask.to(device)


def pack(prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]], pad_id: int,
         device=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(prompt, completion) pairs as one batch: ``input_ids`` and ``attention_mask`` (B, P+C) and
    ``completion_mask`` (B, C), 1 on the sampled tokens (an EOS that ended a completion included)."""
    p_ids, p_mask = left_pad(prompt_ids, pad_id, device)
    c_ids, c_mask = right_pad(completion_ids, pad_id, device)
    return torch.cat([p_ids, c_ids], dim=1), torch.cat([p_mask, c_mask], dim=1), c_mask


def pack_groups(prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]], group_size: int,
                pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The distinct prompts (every ``group_size``-th row) left-padded and all completions right-padded:
    ``prompt_ids`` / ``prompt_mask`` (B, P), ``completion_ids`` / ``completion_mask`` (B*G, C).
    Rows of one group must share their prompt (the shared-prefix forward encodes it once)."""
    firsts = list(prompt_ids[::group_size])
    for g, p in enumerate(firsts):
        if any(prompt_ids[g * group_size + j] != p for j in range(group_size)):
            raise ValueError(f"group {g}: completions of one group must share the same prompt")
    return (*left_pad(firsts, pad_id), *right_pad(completion_ids, pad_id))


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """Strip DDP / DeepSpeed / torch.compile wrappers (``.module`` / ``._orig_mod``)."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(getattr(model, "module", None), torch.nn.Module):
            model = model.module
        else:
            return model


def accepts_logits_to_keep(model: torch.nn.Module) -> bool:
    m = unwrap_model(model)
    if hasattr(m, "get_base_model"):  # peft: its forward takes **kwargs and passes them on
        m = m.get_base_model()
    try:
        return "logits_to_keep" in inspect.signature(m.forward).parameters
    except (TypeError, ValueError):
        return False


class _SelectiveLogSoftmax(torch.autograd.Function):
    """``log_softmax(logits / temperature)[..., index]`` with a hand-written backward.

    Autograd's own graph for ``gather - logsumexp`` builds three vocabulary-sized tensors in the
    backward (a zero-filled scatter for the gather, ``exp(z - lse)`` times the gradient, their
    sum) besides the gradient itself; here the gradient ``(onehot - softmax(z)) * g / temperature``
    is written chunk by chunk into one buffer. On CPU each such [8, 64, 49152] fp32 tensor costs
    ~30 ms of page faults and memory traffic (GRPO benchmark, 2 cores).
    """

    @staticmethod
    def forward(ctx, logits, index, chunk_rows, inv_temp):
        picked, lse = [], []
        for start in range(0, logits.size(0), chunk_rows):
            z = logits[start:start + chunk_rows].float()
            if inv_temp != 1.0:
                z = z * inv_temp
            picked.append(torch.gather(z, -1, index[start:start + chunk_rows].unsqueeze(-1)).squeeze(-1))
            lse.append(torch.logsumexp(z, dim=-1))
        lse = torch.cat(lse, dim=0)
        ctx.save_for_backward(logits, index, lse)
        ctx.chunk_rows, ctx.inv_temp = chunk_rows, inv_temp
        return torch.cat(picked, dim=0) - lse

    @staticmethod
    def backward(ctx, grad_out):
        logits, index, lse = ctx.saved_tensors
        rows, inv_temp = ctx.chunk_rows, ctx.inv_temp
        grad = torch.empty(logits.shape, dtype=logits.dtype, device=logits.device)
        for start in range(0, logits.size(0), rows):
            c = slice(start, start + rows)
            buf = grad[c] if grad.dtype == torch.float32 else torch.empty(logits[c].shape, device=logits.device)
            if inv_temp != 1.0:  # z = logits / T, written straight into the buffer (no float32 copy first)
                torch.mul(logits[c], inv_temp, out=buf).sub_(lse[c].unsqueeze(-1))
            else:
                torch.sub(logits[c], lse[c].unsqueeze(-1), out=buf)
            g = grad_out[c].float().unsqueeze(-1)
            buf.exp_().mul_(-g).scatter_add_(-1, index[c].unsqueeze(-1), g)  # (onehot - softmax) * g
            if inv_temp != 1.0:
                buf.mul_(inv_temp)
            if buf is not grad[c]:
                grad[c].copy_(buf)
        return grad, None, None, None


def selective_log_softmax(logits: torch.Tensor, index: torch.Tensor, chunk_rows: int = 8,
                          temperature: float = 1.0) -> torch.Tensor:
    """``log_softmax(logits / temperature)[..., index]`` for logits [N, T, V] and index [N, T], in
    float32, ``chunk_rows`` sequences at a time (bounds the float32 copy and the logsumexp buffer);
    differentiable in ``logits`` with the backward of :class:`_SelectiveLogSoftmax`."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 to score sampled tokens, got {temperature}")
    return _SelectiveLogSoftmax.apply(logits, index, chunk_rows, 1.0 / temperature)


def completion_logprobs(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                        completion: torch.Tensor | int, temperature: float = 1.0,
                        position_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Float32 [N, T]: log-probs of the last ``T`` tokens of ``input_ids`` under ``model``.

    ``completion`` is the completion mask [N, T] (only its width is used) or ``T`` itself (TRL's
    ``logits_to_keep``). Gradients flow when called outside ``torch.no_grad()``; padding positions
    get a finite log-prob that the caller masks out.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 to score sampled tokens, got {temperature}")
    t = int(completion) if not isinstance(completion, torch.Tensor) else completion.size(-1)
    if not 0 < t < input_ids.size(1):
        raise ValueError(f"completion length {t} must be in 1..{input_ids.size(1) - 1} (input length)")
    kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "use_cache": False}
    if position_ids is not None:
        kwargs["position_ids"] = position_ids
    if accepts_logits_to_keep(model):
        kwargs["logits_to_keep"] = t + 1
    logits = model(**kwargs).logits[:, -(t + 1):-1, :]  # the positions predicting the completion tokens
    return selective_log_softmax(logits, input_ids[:, -t:], temperature=temperature)


def sequence_logprobs(model, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]],
                      pad_id: int, chunk: int = 4) -> list[list[float]]:
    """Log-prob (raw logits, temperature 1) of each completion token given its prompt, without
    gradient, ``chunk`` rows per forward; positions as in generation (see the module docstring)."""
    device = next(model.parameters()).device
    out: list[list[float]] = []
    for start in range(0, len(prompt_ids), chunk):
        c_rows = completion_ids[start:start + chunk]
        if not any(c_rows):
            out.extend([] for _ in c_rows)
            continue
        ids, mask, c_mask = pack(prompt_ids[start:start + chunk], c_rows, pad_id, device)
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        with torch.no_grad():
            logp = completion_logprobs(model, ids, mask, c_mask, position_ids=positions)
        out.extend(logp[i, :len(row)].tolist() for i, row in enumerate(c_rows))
    return out
