"""The trainer's distributed engines: one process, DDP, DeepSpeed ZeRO-2/3 and FSDP2, on GPUs and on CPU.

The GRPO loop (:mod:`reasonkit.grpo.trainer`) is written once; what differs between engines lives here.

Rank and world size. They come from the ``torch.distributed`` process group (the launcher's
``RANK``/``WORLD_SIZE``), and :func:`make_accelerator` builds an ``Accelerator`` whose own bookkeeping
agrees with it (checked; a disagreement stops the run). accelerate 1.15 gets this wrong on a machine
without an accelerator device (read in ``accelerate/state.py``):

- ``Accelerator()`` under ``accelerate launch --use_deepspeed`` (or ``torchrun`` with
  ``ACCELERATE_USE_DEEPSPEED=true``): ``PartialState._prepare_backend`` finds no device type and
  returns backend ``None``; DeepSpeed's ``init_distributed`` still joins a gloo group of all
  processes, but the branch for backend ``None`` then sets ``num_processes = 1, process_index = 0``
  and the type is switched to ``DEEPSPEED`` afterwards. Every process believes it is the only one
  and the main one (each trains on the whole data split, all write the checkpoints).
- ``Accelerator(cpu=True)`` (right for DDP on CPU: ``MULTI_CPU`` with gloo, correct ranks) skips
  DeepSpeed entirely (both ``PartialState`` and ``AcceleratorState`` test ``not cpu``): the run is
  silently plain DDP.
- FSDP: ``AcceleratorState`` switches to ``DistributedType.FSDP`` only from a list of GPU-like types
  that lacks ``MULTI_CPU``, so with or without ``cpu=True`` an FSDP launch on CPU runs as DDP (or,
  without ``cpu=True``, as ``num_processes = 1`` in every process).

The fixes: for DeepSpeed on CPU, ``cpu=False`` plus ``InitProcessGroupKwargs(backend="gloo")`` (the
backend is then not ``None``, so accelerate reads rank and world size from the process group); for
FSDP on CPU, ``cpu=True`` (gloo, right ranks) and then the state is switched to ``FSDP`` with the
plugin accelerate dropped — accelerate's own FSDP2 ``prepare``, clipping and state-dict code then run
unchanged on gloo. On GPUs nothing is patched.

DeepSpeed gradient accumulation. ``Accelerator.backward`` under DeepSpeed marks every call as an
accumulation boundary and calls ``engine.step()`` after it, i.e. one optimiser step per micro-batch
(accelerate expects ``accumulate()`` around it, which needs the accumulation steps at construction).
:func:`backward` marks only the last micro-batch of an update. The engine divides each loss by its
``gradient_accumulation_steps`` (``scale_wrt_gas``); :func:`deepspeed_loss_factor` undoes that for
``dapo``, whose loss is already normalised by the tokens of the whole optimiser step.

Sharded parameters (ZeRO-3, FSDP2). Every forward of a sharded model is a collective (parameters are
all-gathered layer by layer), and sampled completions differ in length between processes, so a
decode loop would call forward a different number of times on each process and hang.
:func:`gathered` therefore gathers the full parameters once and runs the model without the
collective hooks (as TRL's ``unwrap_model_for_generation`` does for ZeRO-3): generation, the
main-process evaluation and checkpoint writing happen inside it. Training forwards (policy and
reference log-probs, the same number of micro-batches on every process) run sharded.

Interrupted op builds. On CPU, DeepSpeed's communication backend compiles a shared-memory op the
first time it starts (``torch.utils.cpp_extension``, under ``$TORCH_EXTENSIONS_DIR``, by default
``~/.cache/torch_extensions``). The building process holds a ``lock`` file and every other process
polls until it disappears; a build killed midway leaves the file, and every later launch waits on it
forever without a word. :func:`check_build_locks` stops the launch in one line instead when a lock is
older than any build takes (:data:`STALE_LOCK_SECONDS`).
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any, Iterator

import torch

from reasonkit.errors import ReasonkitError

ENGINES = ("single", "ddp", "deepspeed", "fsdp")
STALE_LOCK_SECONDS = 15 * 60  # an op build takes a few minutes on 2 cores; a lock this old was left behind


def _has_device() -> bool:
    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


def _env_true(name: str) -> bool:
    return os.environ.get(name, "false").lower() == "true"


def make_accelerator(**kwargs):
    """An ``Accelerator`` whose process index / count match the process group (see the module docstring)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin, InitProcessGroupKwargs

    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1 or int(os.environ.get("LOCAL_RANK", "-1")) != -1
    if _has_device() or not launched:
        acc = Accelerator(cpu=not _has_device(), **kwargs)
    elif _env_true("ACCELERATE_USE_DEEPSPEED"):
        check_build_locks()  # DeepSpeed compiles its CPU communication op first (module docstring)
        handlers = list(kwargs.pop("kwargs_handlers", None) or []) + [InitProcessGroupKwargs(backend="gloo")]
        acc = Accelerator(cpu=False, kwargs_handlers=handlers, **kwargs)
    else:
        acc = Accelerator(cpu=True, **kwargs)  # gloo, right ranks; an FSDP plugin is dropped here
        if _env_true("ACCELERATE_USE_FSDP"):  # so switch to FSDP with a plugin read from the same env
            from accelerate.state import PartialState

            acc.state.fsdp_plugin = FullyShardedDataParallelPlugin()
            acc.state.distributed_type = DistributedType.FSDP
            PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    rank, world = process_group_rank()
    if (acc.process_index, acc.num_processes) != (rank, world):
        raise RuntimeError(f"accelerate reports process {acc.process_index} of {acc.num_processes}, the process "
                           f"group says {rank} of {world} ({acc.distributed_type}); launch with accelerate launch "
                           f"--config_file train/accelerate/<engine>.yaml or torchrun")
    return acc


def check_build_locks(root: str | os.PathLike | None = None, *, now: float | None = None) -> None:
    """Refuse in one line when a torch extension build under ``root`` left a stale ``lock`` behind.

    ``root`` defaults to where torch builds: each extension in ``$TORCH_EXTENSIONS_DIR/<name>/`` when
    that is set, else in ``~/.cache/torch_extensions/<python-and-device>/<name>/``.
    """
    if root is None:
        from torch.utils.cpp_extension import get_default_build_root

        root = os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()
    now = time.time() if now is None else now
    for lock in sorted({*Path(root).glob("*/lock"), *Path(root).glob("*/*/lock")}):
        try:
            age = now - lock.stat().st_mtime
        except FileNotFoundError:  # the build just finished
            continue
        if age > STALE_LOCK_SECONDS:
            raise ReasonkitError(f"{lock}: an interrupted extension build left this lock {age / 60:.0f} minutes ago "
                                 f"and every process would wait on it forever; delete it (the op is rebuilt at "
                                 f"the next launch)")


def process_group_rank() -> tuple[int, int]:
    """(rank, world size) of the default process group; (0, 1) when there is none."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def engine(acc) -> str:
    """``single`` | ``ddp`` | ``deepspeed`` | ``fsdp``."""
    from accelerate.utils import DistributedType

    if acc.distributed_type == DistributedType.DEEPSPEED:
        return "deepspeed"
    if acc.distributed_type == DistributedType.FSDP:
        return "fsdp"
    return "ddp" if acc.num_processes > 1 else "single"


def zero_stage(acc) -> int:
    plugin = getattr(acc.state, "deepspeed_plugin", None)
    return int(plugin.zero_stage) if engine(acc) == "deepspeed" and plugin is not None else 0


def shards_parameters(acc) -> bool:
    """True when the prepared model holds only a shard of its parameters (ZeRO-3, FSDP)."""
    return engine(acc) == "fsdp" or zero_stage(acc) == 3


def backward(acc, model, loss: torch.Tensor, *, last: bool) -> None:
    """Backward of one micro-batch; under DeepSpeed the engine steps only after the ``last`` one.

    accelerate's engine wrapper is built around ``model`` here rather than taken from the
    accelerator, which ties itself to the first engine it prepared (a second trainer in the same
    process, as in the tests, would step the first one)."""
    if engine(acc) == "deepspeed":
        from accelerate.utils.deepspeed import DeepSpeedEngineWrapper

        DeepSpeedEngineWrapper(model).backward(loss, sync_gradients=last)
    else:
        acc.backward(loss)


def average_gradients(model, world: int) -> None:
    """DDP by hand: all-reduce (mean) the gradients of the trainable parameters in one flat buffer
    (for the shared-prefix forward, which calls the bare model twice per backward)."""
    import torch.distributed as dist

    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n


def grad_norm(acc, model, max_norm: float) -> torch.Tensor:
    """The gradient norm of the update, clipped to ``max_norm`` (> 0) first; DeepSpeed: the norm its
    engine measured (and clipped) in the step it has already taken."""
    if engine(acc) == "deepspeed":
        return torch.tensor(as_float(model.get_global_grad_norm()))
    if max_norm > 0 and engine(acc) == "fsdp":
        # torch's clipping handles DTensor gradients; accelerate's FSDP branch looks the model up by
        # comparing parameter lists with ==, which fails once a process has prepared a second model
        params = [p for p in model.parameters() if p.grad is not None]
        return torch.tensor(as_float(torch.nn.utils.clip_grad_norm_(params, max_norm)))
    if max_norm > 0:
        return torch.tensor(as_float(acc.clip_grad_norm_(model.parameters(), max_norm)))
    grads = [p.grad.norm() for p in model.parameters() if p.grad is not None]
    return torch.tensor(as_float(torch.stack(grads).norm() if grads else torch.tensor(0.0)))


def deepspeed_loss_factor(acc, model, loss_type: str) -> float:
    """What to multiply a micro-batch loss by so that DeepSpeed's division by its accumulation steps
    leaves the intended gradient: GA for ``dapo`` (normalised over the whole step), else 1 (the loss
    is passed with ``gradient_accumulation_steps=1`` and the engine does the division)."""
    if engine(acc) != "deepspeed" or loss_type != "dapo":
        return 1.0
    return float(model.gradient_accumulation_steps())


def as_float(value: Any) -> float:
    """A gradient norm as a float (FSDP2 returns a DTensor, DeepSpeed a float or None)."""
    if value is None:
        return float("nan")
    if hasattr(value, "full_tensor"):
        value = value.full_tensor()
    return float(value)


def _zero3_offload(model):
    opt = getattr(model, "optimizer", None)
    return getattr(opt, "parameter_offload", None) or getattr(model, "parameter_offload", None)


@contextlib.contextmanager
def gathered(acc, model) -> Iterator[torch.nn.Module]:
    """The bare model with full parameters and no collectives in its forward, on every process.

    Enter it on all processes at once (it all-gathers). One process may then run any number of
    forwards (generation, evaluation) or read the full ``state_dict``. Other engines: the bare model.
    """
    bare = acc.unwrap_model(model)
    if zero_stage(acc) == 3:
        import deepspeed

        offload = _zero3_offload(model)
        with deepspeed.zero.GatheredParameters(list(bare.parameters())):
            for p in bare.parameters():
                p.ds_active_sub_modules.clear()
            offload._remove_module_hooks()
            offload.forward_hooks, offload.backward_hooks = [], []
            try:
                yield bare
            finally:
                offload.setup_zero_stage3_hooks()
    elif engine(acc) == "fsdp":
        from torch.distributed.fsdp import FSDPModule

        mods = [m for m in bare.modules() if isinstance(m, FSDPModule)]
        for m in mods:  # all-gather now; with resharding off, forwards find the parameters present
            m.unshard()
            m.set_reshard_after_forward(False, recurse=False)
        try:
            yield bare
        finally:
            for m in mods:
                m.set_reshard_after_forward(True, recurse=False)
                m.reshard()
    else:
        yield bare


def full_state_dict(acc, model) -> dict[str, torch.Tensor] | None:
    """The full (gathered) state dict of a sharded model on the main process (None elsewhere);
    None on every process for unsharded engines (``save_pretrained`` reads the model itself)."""
    if not shards_parameters(acc):
        return None
    sd = acc.get_state_dict(model, unwrap=True)
    return sd if acc.is_main_process else None
