"""Training forwards on CPU: frozen linear layers through oneDNN's matmul on reordered weights.

Why it exists: in a LoRA run most of the training forward and backward is products with frozen
weights (the base projections under the adapters, the MLPs, the output layer): ``x @ W^T``
forward and ``g @ W`` for the input gradient, no weight gradient. ``F.linear`` hands both to
MKL's GEMM, which on some hosts runs far below what oneDNN reaches on the same CPU. Measured on
an AMD EPYC with AVX512-BF16 (2 cores, MKL 2024.2, fp32, a 1536x576 weight; ``benchmarks/
bench_linear_kernels.py``): 512 rows 4.8 ms vs 2.0 ms with oneDNN's matmul on a weight reordered
once into its blocked layout
(``torch.ops.mkldnn._reorder_linear_weight`` / ``_linear_pointwise``, the pair PyTorch's inductor
uses for frozen CPU linears; no library offers it with a backward, hence this module).

How: :func:`packed_frozen_linears` swaps, for the block, the forward of every plain CPU
``nn.Linear`` whose weight needs no gradient and that takes more than
:data:`reasonkit.engine.hf_linear.MAX_ROWS` rows (fewer are the rollout's business) for an
autograd function: forward ``x @ W^T + b`` on the packed ``W``, backward ``g @ W`` on the packed
``W^T``, the bias gradient ``g.sum()`` when the bias is trained. Whether it is used is measured,
per (dtype, weight shape), once per process: forward plus backward product at
:data:`CALIBRATION_ROWS` rows, both ways, over the model's weights of that shape (up to 128 MB),
alternating rounds, the fastest of each; the packed way must win by 5 %. The reordered copies
(two per frozen weight: ``W`` and ``W^T``) are the ones :mod:`~reasonkit.engine.hf_linear`
keeps per weight tensor (the rollout shares the ``W`` copy), and are offered only while they take
at most :data:`~reasonkit.engine.hf_linear.PACK_MEMORY_FRACTION` of the machine's memory.
Values equal ``F.linear``'s up to float summation order (tested with gradients).

Not used: weights that are trained (full fine-tuning, the LoRA matrices), non-CPU models,
sharded parameters (DeepSpeed ZeRO-3, FSDP: the trainer does not enable it there), fp16.
"""
from __future__ import annotations

import contextlib
import time

import torch

from reasonkit.engine import hf_linear

CALIBRATION_ROWS = 256
CALIBRATION_ROUNDS = 3
_CHOICE: dict[tuple, bool] = {}  # (dtype, weight shape, size timed) -> whether the packed way is faster


class _PackedFrozenLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.weight = weight  # the packed W^T is looked up in the backward (cached per weight)
        ctx.bias_grad = bias is not None and bias.requires_grad
        return hf_linear.matmul_packed(x, hf_linear.packed_weight(weight), bias)

    @staticmethod
    def backward(ctx, grad):
        grad_x = hf_linear.matmul_packed(grad, hf_linear.packed_weight(ctx.weight, transposed=True), None)
        grad_b = grad.reshape(-1, grad.shape[-1]).sum(0) if ctx.bias_grad else None
        return grad_x, None, grad_b


def _plain_pass(x, g, weights):
    import torch.nn.functional as F

    for w in weights:
        F.linear(x, w)
        torch.mm(g, w)


def _packed_pass(x, g, weights, copies):
    for w in weights:
        hf_linear.matmul_packed(x, copies[id(w)][0], None)
        hf_linear.matmul_packed(g, copies[id(w)][1], None)


def _calibrate(weights, dtype) -> bool:
    """Whether forward + input-gradient products at :data:`CALIBRATION_ROWS` rows run at least 5 %
    faster on packed copies of ``weights`` (one shape) than with ``F.linear`` / ``torch.mm``."""
    chosen, total = [], 0
    for w in weights:
        if total >= hf_linear.CALIBRATION_ELEMENTS:
            break
        chosen.append(w.detach())
        total += w.numel()
    rng = torch.Generator().manual_seed(0)  # the caller's global RNG stays untouched
    x = torch.randn(CALIBRATION_ROWS, chosen[0].shape[1], generator=rng).to(dtype)
    g = torch.randn(CALIBRATION_ROWS, chosen[0].shape[0], generator=rng).to(dtype)
    copies = {id(w): (hf_linear.reorder(w), hf_linear.reorder(w.t().contiguous())) for w in chosen}
    best = {False: float("inf"), True: float("inf")}
    with torch.no_grad():
        for _ in range(CALIBRATION_ROUNDS):
            for packed in (False, True):
                t0 = time.perf_counter()
                _packed_pass(x, g, chosen, copies) if packed else _plain_pass(x, g, chosen)
                best[packed] = min(best[packed], time.perf_counter() - t0)
    return best[True] < 0.95 * best[False]


def _frozen_cpu_linears(model) -> list:
    linears = [m for m in model.modules() if type(m) is torch.nn.Linear]
    return [m for m in linears if not m.weight.requires_grad and m.weight.device.type == "cpu"
            and m.weight.dim() == 2 and type(m.weight) in (torch.nn.Parameter, torch.Tensor)]


@contextlib.contextmanager
def packed_frozen_linears(model, enabled: bool = True):
    """Within the block, ``model``'s frozen CPU linears run many-row inputs on packed weights where
    that was measured faster (see the module docstring)."""
    linears = _frozen_cpu_linears(model) if enabled else []
    groups: dict = {}
    for m in linears:
        groups.setdefault((m.weight.dtype, tuple(m.weight.shape)), {})[id(m.weight)] = m.weight
    copies_bytes = 2 * sum(w.numel() * w.element_size() for ws in groups.values() for w in ws.values())
    if not groups or copies_bytes > hf_linear.PACK_MEMORY_FRACTION * hf_linear.memory_bytes():
        yield
        return
    use = {}
    for (dtype, shape), weights in groups.items():
        weights = list(weights.values())
        key = (dtype, shape, min(sum(w.numel() for w in weights), hf_linear.CALIBRATION_ELEMENTS))
        if key not in _CHOICE:
            _CHOICE[key] = hf_linear.can_pack(dtype) and _calibrate(weights, dtype)
        use[(dtype, shape)] = _CHOICE[key]
    patched = [m for m in linears if use[(m.weight.dtype, tuple(m.weight.shape))]]

    def make_forward(module):
        import torch.nn.functional as F

        def forward(x):
            rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
            if rows > hf_linear.MAX_ROWS and x.dtype == module.weight.dtype and not module.weight.requires_grad:
                return _PackedFrozenLinear.apply(x, module.weight, module.bias)
            return F.linear(x, module.weight, module.bias)
        return forward

    with hf_linear.swapped_forwards(patched, make_forward):
        yield
