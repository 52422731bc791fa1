"""Decode-step linear layers on CPU: ``(W @ x^T)^T`` where this host's BLAS computes it faster than ``x @ W^T``.

Why: a decode step multiplies a few rows (one per sequence still generating) by every weight
matrix of the model, so its time is the time to stream the weights from memory. ``F.linear``
computes ``x @ W^T``; for a handful of rows, MKL's fp32 kernel for that layout streams the
weights at a fraction of the memory bandwidth on some hosts, while the same product written as
``W @ x^T`` does not. Measured here (AMD EPYC, 2 cores, MKL 2024.2, 60 distinct 1536x576 fp32
matrices so that the weights come from memory): 2 rows 520 vs 129 us per matrix, 8 rows 361 vs
271, 32 rows 564 vs 544; in bf16 the other way round (8 rows 158 vs 207). Since the answer depends
on the host, the BLAS and the dtype, it is measured, not assumed.

How: :func:`streaming_linears` swaps the forward of the model's plain ``nn.Linear`` modules (peft
LoRA layers call theirs) for one that, for at most :data:`MAX_ROWS` rows, uses the layout that won
for that dtype and row count. The choice is made once per process and (dtype, rows rounded up to a
power of two, the weights' total size) by timing both layouts over the model's own linear weights
(up to 128 MB of them, six alternating rounds, fastest of each: well under a second per row count),
and kept; the transposed layout must win by 5 %. Larger inputs (prefill, training) always go to
``F.linear``. The output is made contiguous, so the layers after it see the same tensor layout as
before; values equal ``F.linear``'s up to float summation order. Only CPU models; the block restores the modules.
"""
from __future__ import annotations

import contextlib
import time

MAX_ROWS = 32
CALIBRATION_ELEMENTS = 32_000_000  # 128 MB of fp32 weights per timed pass
CALIBRATION_ROUNDS = 6
_CHOICE: dict[tuple, bool] = {}  # (dtype, rows bucket, weights' total size) -> whether W @ x^T is faster


def _bucket(rows: int) -> int:
    return 1 << max(0, rows - 1).bit_length()


def _transposed(x, weight, bias):
    import torch

    rows = x.numel() // x.shape[-1]
    out = torch.mm(weight, x.reshape(rows, x.shape[-1]).t()).t()
    if bias is not None:
        out = out + bias
    return out.contiguous().view(*x.shape[:-1], weight.shape[0])


def _calibrate(weights, dtype, bucket: int) -> bool:
    """Whether ``W @ x^T`` streams ``weights`` at least 5 % faster than ``F.linear`` at ``bucket`` rows.

    Up to :data:`CALIBRATION_ELEMENTS` of the weights are used (more than a CPU cache holds, so they
    stream from memory as in a decode step); the layouts alternate for :data:`CALIBRATION_ROUNDS`
    rounds and each keeps its fastest, which discounts rounds slowed by other work on the machine.
    """
    import torch
    import torch.nn.functional as F

    chosen, total = [], 0
    for w in weights:
        if total >= CALIBRATION_ELEMENTS:
            break
        chosen.append(w)
        total += w.numel()
    rng = torch.Generator().manual_seed(0)  # the global RNG is the caller's: seeded sampling stays repeatable
    inputs = {w.shape[1]: torch.randn(bucket, w.shape[1], generator=rng).to(dtype) for w in chosen}
    best = {True: float("inf"), False: float("inf")}
    with torch.no_grad():
        for _ in range(CALIBRATION_ROUNDS):
            for transposed in (False, True):
                t0 = time.perf_counter()
                for w in chosen:
                    x = inputs[w.shape[1]]
                    _transposed(x, w, None) if transposed else F.linear(x, w)
                best[transposed] = min(best[transposed], time.perf_counter() - t0)
    return best[True] < 0.95 * best[False]


def _decider(weights, dtype):
    size = sum(w.numel() for w in weights)  # a model whose weights fit in cache may choose differently

    def use_transposed(rows: int) -> bool:
        key = (dtype, _bucket(rows), size)
        if key not in _CHOICE:
            _CHOICE[key] = _calibrate(weights, dtype, key[1])
        return _CHOICE[key]
    return use_transposed


@contextlib.contextmanager
def streaming_linears(model, enabled: bool = True):
    """Within the block, ``model``'s plain linear layers use the faster layout for few-row inputs."""
    import torch
    import torch.nn.functional as F

    linears = [m for m in model.modules() if type(m) is torch.nn.Linear] if enabled else []
    linears = [m for m in linears if m.weight.device.type == "cpu" and m.weight.dim() == 2]
    if not linears:
        yield
        return
    by_dtype: dict = {}
    for m in linears:
        by_dtype.setdefault(m.weight.dtype, []).append(m.weight)
    deciders = {dtype: _decider(weights, dtype) for dtype, weights in by_dtype.items()}

    def make_forward(module):
        use = deciders[module.weight.dtype]

        def forward(x):
            rows = x.numel() // x.shape[-1] if x.shape[-1] else MAX_ROWS + 1
            if rows <= MAX_ROWS and x.dtype == module.weight.dtype and use(rows):
                return _transposed(x, module.weight, module.bias)
            return F.linear(x, module.weight, module.bias)
        return forward

    for m in linears:
        m.forward = make_forward(m)
    try:
        yield
    finally:
        for m in linears:
            m.__dict__.pop("forward", None)
