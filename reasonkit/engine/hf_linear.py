"""Decode-step linear layers on CPU: the layout this host computes fastest for a few rows.

Why: a decode step multiplies a few rows (one per sequence still generating) by every weight
matrix of the model. ``F.linear`` hands that to MKL's GEMM, which for a handful of rows reaches a
fraction of what the memory system can stream, and by how much depends on the host. Two other
layouts of the same product can win:

* ``transposed``: ``(W @ x^T)^T``. Measured on an AVX2-only AMD EPYC (2 cores, MKL 2024.2, 60
  distinct 1536x576 fp32 matrices so that the weights come from memory): 2 rows 520 vs 129 us per
  matrix, 8 rows 361 vs 271; in bf16 the other way round.
* ``packed``: oneDNN's matmul on the weight reordered once into oneDNN's blocked layout
  (``torch.ops.mkldnn._reorder_linear_weight`` / ``_linear_pointwise``, the pair PyTorch's
  inductor uses for frozen CPU linears). Measured on an AMD EPYC with AVX512-BF16 (2 cores, the
  same kind of pass; ``benchmarks/bench_linear_kernels.py``, ``results/linear_kernels.md``): 8 rows
  of a 1536x576 fp32 matrix 94 vs 286 us, the 49152x576 output layer 2.9 vs 12.1 ms, bf16 1536x576
  57 vs 110 us. MKL's fp32 GEMM streamed 9-14 GB/s of weights there and oneDNN 16-39, against
  44.5 GB/s for a plain ``sum`` over 1 GiB.

Since the answer depends on the host, the BLAS and the dtype, it is measured, not assumed.

How: :func:`streaming_linears` swaps the forward of the model's plain ``nn.Linear`` modules (peft
LoRA layers call theirs) for one that, for at most :data:`MAX_ROWS` rows, uses the layout that won
for that weight shape, dtype and row count. The choice is made once per process and (dtype, rows
rounded up to a power of two, weight shape) by timing the layouts over the model's weights of that
shape (32 to 128 MB of them, four alternating rounds, the fastest of each; a few hundred ms per row
count), and kept; another layout must beat ``F.linear`` by 5 %. Per shape, because shapes differ.
Larger inputs (prefill, training) and anything that needs a gradient always go to ``F.linear``.
Outputs are contiguous, so the layers after see the same tensor layout as before; values equal
``F.linear``'s up to float summation order. Only CPU models; the block restores the modules.

Packed weights: each weight is reordered at its first packed use (1.4 ms for a 1536x576 fp32
matrix, 160 ms for the 49152x576 output layer here) and the copy is kept as long as the weight
tensor lives, keyed weakly by it, so frozen weights (a LoRA run's MLPs and output layer) are
reordered once per process, while the merged LoRA weights of :mod:`hf_merge`, new tensors at each
generation, are reordered per generation. When a copy is still valid (issue 23, item 1):

* its stamp is ``(data_ptr, _version, shape, strides, dtype)`` of the weight's data, and the entry
  holds an alias of the data it was made from, so that storage cannot be freed and its address
  handed to another tensor while the copy lives (a ``weight.data = new`` swap, as :mod:`hf_merge`
  does, does not bump ``_version``: with a reused address the old stamp matched the new weights);
* :func:`forget` drops a weight's copy explicitly; :mod:`hf_merge` calls it when it restores the base;
* a :func:`fingerprint` of the values (fp32 sum and L2 norm of 32 evenly spaced rows: a few ms for
  all the linears of the embedded model, where whole weights took ~75 times longer) is recorded with
  the copy, and :func:`streaming_linears` checks it against the weight's current values
  at the first packed use of each weight in each block (once per generation): a write that moved
  neither the address nor the version counter (``weight.data.copy_(...)``) is caught there, the copy
  made again, and a copy whose fingerprint still differs is an error, not a silent wrong matmul.

The copies cost one more copy of the plain linears' weights; the
layout is offered only while those weights take at most :data:`PACK_MEMORY_FRACTION` of the
machine's memory (1/8: a 135M fp32 model's 0.5 GB qualifies on a 24 GB machine, a 7B bf16 model's
14 GB does not). fp32 and bf16 only (oneDNN's fp16 path needs AVX512-FP16).
"""
from __future__ import annotations

import contextlib
import os
import time

MAX_ROWS = 32
CALIBRATION_ELEMENTS = 32_000_000  # at most 128 MB of fp32 weights per timed pass
MIN_STREAM_ELEMENTS = 8_000_000    # at least 32 MB: more than a CPU cache holds
CALIBRATION_ROUNDS = 4
PACK_MEMORY_FRACTION = 1 / 8
FINGERPRINT_ROWS = 32  # rows of a weight read by fingerprint()
LAYOUTS = ("linear", "transposed", "packed")
_CHOICE: dict[tuple, str] = {}  # (dtype, rows bucket, weight shape, size timed, packing offered) -> layout
_PACKED = None  # WeakTensorKeyDictionary: weight -> _Entry
_CAN_PACK: dict = {}  # dtype -> whether oneDNN reorders weights of that dtype here


def _bucket(rows: int) -> int:
    return 1 << max(0, rows - 1).bit_length()


def _transposed(x, weight, bias):
    import torch

    rows = x.numel() // x.shape[-1]
    out = torch.mm(weight, x.reshape(rows, x.shape[-1]).t()).t()
    if bias is not None:
        out = out + bias
    return out.contiguous().view(*x.shape[:-1], weight.shape[0])


def reorder(weight):
    """``weight`` (out x in) in oneDNN's packed layout for :func:`matmul_packed` (a new tensor)."""
    import torch

    return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), None)


def can_pack(dtype) -> bool:
    """Whether this PyTorch build and CPU run oneDNN's packed matmul for ``dtype`` (tried once per dtype)."""
    import torch

    if dtype not in _CAN_PACK:
        ok = dtype in (torch.float32, torch.bfloat16) and torch.backends.mkldnn.is_available()
        if ok:
            try:
                w, x = torch.ones(4, 8, dtype=dtype), torch.ones(2, 8, dtype=dtype)
                ok = bool(torch.allclose(matmul_packed(x, reorder(w), None).float(), torch.full((2, 4), 8.0)))
            except (RuntimeError, AttributeError):  # an op missing from this build, or no CPU support
                ok = False
        _CAN_PACK[dtype] = ok
    return _CAN_PACK[dtype]


def matmul_packed(x, packed, bias):
    """``x @ W^T + bias`` with ``W`` in the packed layout of :func:`reorder` (oneDNN's matmul)."""
    import torch

    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


class _Entry:
    """The packed copies of one weight and what they were made from."""

    __slots__ = ("stamp", "source", "fingerprint", "copies")

    def __init__(self, weight):
        self.stamp = _stamp(weight)
        self.source = weight.detach()  # pins the storage: its address cannot be reused while the copies live
        self.fingerprint = fingerprint(weight)
        self.copies: dict = {}  # transposed -> packed copy


def _stamp(weight) -> tuple:
    return (weight.data_ptr(), weight._version, tuple(weight.shape), tuple(weight.stride()), weight.dtype)


def fingerprint(weight) -> tuple[str, str]:
    """A cheap checksum of ``weight``'s values: sum and L2 norm, accumulated in fp32, of
    :data:`FINGERPRINT_ROWS` evenly spaced rows (the first and last included; all rows of a smaller
    matrix), as hex so that NaN equals NaN. What a packed copy is checked against; a LoRA merge or a
    new set of values changes every row. About 0.1 ms per matrix whatever its size."""
    import torch

    with torch.no_grad():
        w = weight.detach()
        if w.dim() == 2 and w.shape[0] > FINGERPRINT_ROWS:
            w = w.index_select(0, torch.linspace(0, w.shape[0] - 1, FINGERPRINT_ROWS).round().long())
        return (float(w.sum(dtype=torch.float32)).hex(),
                float(torch.linalg.vector_norm(w, dtype=torch.float32)).hex())


def _cache():
    global _PACKED
    if _PACKED is None:
        from torch.utils.weak import WeakTensorKeyDictionary

        _PACKED = WeakTensorKeyDictionary()
    return _PACKED


def forget(weight) -> None:
    """Drop ``weight``'s packed copies (the next packed use reorders it again)."""
    if _PACKED is not None:
        _PACKED.pop(weight, None)


def packed_weight(weight, transposed: bool = False):
    """oneDNN's reordered copy of ``weight`` (of ``weight.T`` when ``transposed``: the weight of
    ``g @ W``, a backward pass), made at first use and kept while ``weight`` is unchanged (same
    storage, address, version counter and layout; see the module docstring)."""
    cache = _cache()
    entry = cache.get(weight)
    if entry is None or entry.stamp != _stamp(weight):
        entry = _Entry(weight)
        cache[weight] = entry
    if transposed not in entry.copies:
        entry.copies[transposed] = reorder(weight.detach().t().contiguous() if transposed else weight)
    return entry.copies[transposed]


def check_packed(weight) -> None:
    """Make sure ``weight``'s packed copy, if any, was made from its current values: the copy is made
    again when the fingerprint recorded with it differs from the weight's now (a write that kept the
    address and the version counter), and a copy that still differs raises."""
    entry = _cache().get(weight)
    if entry is None:
        return
    now = fingerprint(weight)
    if entry.fingerprint != now or entry.stamp != _stamp(weight):
        forget(weight)
        packed_weight(weight)
        if _cache()[weight].fingerprint != now:  # the weight changed under us: never decode with a stale copy
            raise RuntimeError("hf_linear: a packed weight does not match the weight it stands for")


def _packed(x, weight, bias):
    return matmul_packed(x, packed_weight(weight), bias)


def _run(layout: str, x, weight, bias):
    import torch.nn.functional as F

    if layout == "transposed":
        return _transposed(x, weight, bias)
    if layout == "packed":
        return _packed(x, weight, bias)
    return F.linear(x, weight, bias)


def _calibrate(weights, dtype, bucket: int, pack: bool = False) -> str:
    """The fastest layout for ``weights`` (all of one shape) at ``bucket`` rows: ``linear`` unless
    another streams them at least 5 % faster.

    The pass covers up to :data:`CALIBRATION_ELEMENTS` of the weights; fewer than
    :data:`MIN_STREAM_ELEMENTS` are topped up with copies, so that the pass streams from memory as a
    decode step does instead of hitting the cache. The layouts alternate for
    :data:`CALIBRATION_ROUNDS` rounds and each keeps its fastest, which discounts rounds slowed by
    other work on the machine. ``pack``: whether ``packed`` is a candidate (its reordered copies
    are made for the pass and dropped after).
    """
    import torch

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
    candidates = {"linear": lambda w: _run("linear", x, w, None),
                  "transposed": lambda w: _transposed(x, w, None)}
    if pack:
        reordered = {id(w): reorder(w) for w in chosen}
        candidates["packed"] = lambda w: matmul_packed(x, reordered[id(w)], None)
    best = dict.fromkeys(candidates, float("inf"))
    with torch.no_grad():
        for _ in range(CALIBRATION_ROUNDS):
            for name, fn in candidates.items():
                t0 = time.perf_counter()
                for w in chosen:
                    fn(w)
                best[name] = min(best[name], time.perf_counter() - t0)
    fastest = min(best, key=best.get)
    return fastest if best[fastest] < 0.95 * best["linear"] else "linear"


def _decider(weights, dtype, pack: bool):
    """``layout(rows)`` for linears whose weights are ``weights`` (one dtype, one shape)."""
    size = min(sum(w.numel() for w in weights), CALIBRATION_ELEMENTS)
    shape = tuple(weights[0].shape)

    def layout(rows: int) -> str:
        key = (dtype, _bucket(rows), shape, size, pack)
        if key not in _CHOICE:
            _CHOICE[key] = _calibrate(weights, dtype, key[1], pack)
        return _CHOICE[key]
    return layout


def memory_bytes() -> int:
    """This machine's physical memory in bytes (0 where the OS does not say: then nothing is packed)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf (not Linux/macOS): do not pack
        return 0


@contextlib.contextmanager
def streaming_linears(model, enabled: bool = True):
    """Within the block, ``model``'s plain linear layers use the fastest layout for few-row inputs."""
    import torch

    linears = [m for m in model.modules() if type(m) is torch.nn.Linear] if enabled else []
    linears = [m for m in linears if m.weight.device.type == "cpu" and m.weight.dim() == 2]
    if not linears:
        yield
        return
    groups: dict = {}
    for m in linears:
        groups.setdefault((m.weight.dtype, tuple(m.weight.shape)), []).append(m.weight)
    weight_bytes = sum(w.numel() * w.element_size() for ws in groups.values() for w in {id(w): w for w in ws}.values())
    fits = weight_bytes <= PACK_MEMORY_FRACTION * memory_bytes()
    deciders = {key: _decider(weights, key[0], fits and can_pack(key[0])) for key, weights in groups.items()}
    checked: set = set()  # modules whose packed copy was checked against their weights in this block

    def make_forward(module):
        layout_for = deciders[(module.weight.dtype, tuple(module.weight.shape))]

        def forward(x):
            rows = x.numel() // x.shape[-1] if x.shape[-1] else MAX_ROWS + 1
            if rows <= MAX_ROWS and x.dtype == module.weight.dtype:
                layout = layout_for(rows)
                if layout == "packed" and torch.is_grad_enabled() and (x.requires_grad or module.weight.requires_grad):
                    layout = "linear"  # the packed matmul has no backward
                if layout == "packed" and module not in checked:  # once per weight and block: no stale copy
                    check_packed(module.weight)
                    checked.add(module)
                return _run(layout, x, module.weight, module.bias)
            return _run("linear", x, module.weight, module.bias)
        return forward

    with swapped_forwards(linears, make_forward):
        yield


@contextlib.contextmanager
def swapped_forwards(modules, make_forward):
    """Within the block, each module's ``forward`` is ``make_forward(module)``; the class's afterwards."""
    for m in modules:
        m.forward = make_forward(m)
    try:
        yield
    finally:
        for m in modules:
            m.__dict__.pop("forward", None)
