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
for that weight shape, dtype and row count. The choice is made once per process and (dtype, rows
rounded up to a power of two, weight shape) by timing both layouts over the model's weights of that
shape (32 to 128 MB of them, four alternating rounds, the fastest of each; a few hundred ms per row
count), and kept; the transposed layout must win by 5 %. Per shape, because shapes differ: in the
same measurement a 576x1536 matrix at 8 rows favoured ``F.linear``. Larger inputs (prefill,
training) always go to ``F.linear``. The output is made contiguous, so the layers after it see the
same tensor layout as before; values equal ``F.linear``'s up to float summation order. Only CPU
models; the block restores the modules.
"""
from __future__ import annotations

import contextlib
import time

MAX_ROWS = 32
CALIBRATION_ELEMENTS = 32_000_000  # at most 128 MB of fp32 weights per timed pass
MIN_STREAM_ELEMENTS = 8_000_000    # at least 32 MB: more than a CPU cache holds
CALIBRATION_ROUNDS = 4
_CHOICE: dict[tuple, bool] = {}  # (dtype, rows bucket, weight shape, size timed) -> whether W @ x^T is faster


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
    """Whether ``W @ x^T`` streams ``weights`` (all of one shape) at least 5 % faster than ``F.linear``.

    The pass covers up to :data:`CALIBRATION_ELEMENTS` of the weights; fewer than
    :data:`MIN_STREAM_ELEMENTS` are topped up with copies, so that the pass streams from memory as a
    decode step does instead of hitting the cache. The layouts alternate for
    :data:`CALIBRATION_ROUNDS` rounds and each keeps its fastest, which discounts rounds slowed by
    other work on the machine.
    """
    import torch
    import torch.nn.functional as F

    chosen, total = [], 0
    for w in weights:
        if total >= CALIBRATION_ELEMENTS:
            break
        chosen.append(w)
        total += w.numel()
    while total < MIN_STREAM_ELEMENTS:
        chosen.append(weights[0].detach().clone())
        total += weights[0].numel()
    rng = torch.Generator().manual_seed(0)  # the global RNG is the caller's: seeded sampling stays repeatable
    x = torch.randn(bucket, weights[0].shape[1], generator=rng).to(dtype)
    best = {True: float("inf"), False: float("inf")}
    with torch.no_grad():
        for _ in range(CALIBRATION_ROUNDS):
            for transposed in (False, True):
                t0 = time.perf_counter()
                for w in chosen:
                    _transposed(x, w, None) if transposed else F.linear(x, w)
                best[transposed] = min(best[transposed], time.perf_counter() - t0)
    return best[True] < 0.95 * best[False]


def _decider(weights, dtype):
    """``use_transposed(rows)`` for linears whose weights are ``weights`` (one dtype, one shape)."""
    size = min(sum(w.numel() for w in weights), CALIBRATION_ELEMENTS)
    shape = tuple(weights[0].shape)

    def use_transposed(rows: int) -> bool:
        key = (dtype, _bucket(rows), shape, size)
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
    groups: dict = {}
    for m in linears:
        groups.setdefault((m.weight.dtype, tuple(m.weight.shape)), []).append(m.weight)
    deciders = {key: _decider(weights, key[0]) for key, weights in groups.items()}

    def make_forward(module):
        use = deciders[(module.weight.dtype, tuple(module.weight.shape))]

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
