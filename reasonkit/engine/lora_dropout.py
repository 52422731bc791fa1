"""LoRA dropout that draws its mask from 16-bit random words: the same dropout, 3.5x cheaper on CPU.

Why it exists: peft's LoRA branch is ``B(A(dropout(x)))`` with ``torch.nn.Dropout``. On CPU
PyTorch draws one Mersenne-Twister number per element for the mask (``bernoulli_``), and with
dropout on q/k/v/o that is four masks of the hidden size per token and layer. Profiled on the
GRPO benchmark's update (SmolLM2-135M fp32, 2 prompts x 4 completions x 64 tokens, 2 cores):
``bernoulli_`` took 0.84 s of a 6.6 s update, more than any matmul shape. One 64-bit draw here
gives four 16-bit words, and the mask is ``word < k`` with ``k = round(p * 65536)``; the kept
values are scaled by ``1 / (1 - k / 65536)``, so the expectation of every element is unchanged,
as with ``nn.Dropout``. Measured on a [8, 63, 576] fp32 input (forward): 0.8 ms vs 2.8 ms for
``F.dropout``.

Where it departs from ``nn.Dropout``: the drop probability is ``p`` rounded to a multiple of
2^-16 (0.05 becomes 0.0500031), and the random stream is another one (same global generator, so
seeded runs are reproducible and ``--resume`` restores it as before). On other devices than the
CPU it calls ``F.dropout``, whose fused kernels are already cheap. No library offers a cheaper
CPU dropout mask (``torch.bernoulli``, ``torch.rand`` and ``F.dropout`` all draw per element),
hence written here.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

WORDS = 1 << 16


def _drop_mask(shape: torch.Size, k: int) -> torch.Tensor:
    """Bool mask of ``shape``: True (dropped) with probability ``k / 65536``, independently."""
    n = shape.numel()
    raw = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-2**63, None)  # every 64-bit value equally likely
    words = raw.view(torch.int16)[:n].view(shape)  # four independent uniform 16-bit words per draw
    return words < (k - WORDS // 2)  # int16 words run from -32768: P(word < k - 32768) = k / 65536


class _MaskedScale(torch.autograd.Function):
    """``x`` with the masked elements zeroed and the rest scaled; the same on the gradient."""

    @staticmethod
    def forward(ctx, x, drop, scale):
        ctx.save_for_backward(drop)
        ctx.scale = scale
        return x.masked_fill(drop, 0.0).mul_(scale)

    @staticmethod
    def backward(ctx, grad):
        (drop,) = ctx.saved_tensors
        return grad.masked_fill(drop, 0.0).mul_(ctx.scale), None, None


class WordDropout(torch.nn.Module):
    """``nn.Dropout(p)`` with the mask drawn from 16-bit words (see the module docstring)."""

    def __init__(self, p: float):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.k = round(p * WORDS)
        self.scale = 1.0 / (1.0 - self.k / WORDS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.k == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, True)
        return _MaskedScale.apply(x, _drop_mask(x.shape, self.k), self.scale)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def use_word_dropout(model: torch.nn.Module) -> int:
    """Replace the ``nn.Dropout`` of every peft LoRA branch by :class:`WordDropout`; returns how many."""
    replaced = 0
    for module in model.modules():
        branches = getattr(module, "lora_dropout", None)
        if not isinstance(branches, torch.nn.ModuleDict):
            continue
        for name, layer in list(branches.items()):
            if type(layer) is torch.nn.Dropout and layer.p > 0:
                branches[name] = WordDropout(layer.p)
                replaced += 1
    return replaced
