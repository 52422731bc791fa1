"""Checkpoints of a GRPO run: loadable weights plus everything needed to resume exactly.

Layout of ``OUTPUT/checkpoint-N`` (N = completed training steps)::

    adapter_config.json, adapter_model.safetensors   # LoRA (peft layout), or
    config.json, model.safetensors                   # full fine-tuning (transformers layout)
    tokenizer files                                  # so `reasonkit eval --lora` / vLLM load it alone
    optimizer.pt, scheduler.pt                       # torch state dicts
    rng_state_<rank>.pth                             # python, numpy, torch RNG of every process
    trainer_state.json                               # step, data position, metrics of the last step

A checkpoint is written to ``checkpoint-N.tmp`` and renamed when complete, so a crash while saving
never leaves a half-written directory that ``--resume`` would pick up; the last good checkpoint is
always intact. Only the newest ``keep`` checkpoints are kept (``keep=0`` keeps all).

Every ``.pt`` / ``.pth`` file is read with ``torch.load(..., weights_only=True)``: tensors, numbers,
strings and containers only, so a checkpoint from elsewhere cannot run code when resumed (a file
holding anything else is refused with one line). The RNG states are stored in that form too: the
numpy Mersenne-Twister key as an int64 tensor, Python's state as a tuple of ints.

Sharded engines: under ZeRO-3 and FSDP2 the weights are gathered first (``accelerator.get_state_dict``)
and the main process writes the same peft / transformers layout. Under DeepSpeed (ZeRO-2 and 3) the
optimiser and scheduler are saved by the engine itself (``deepspeed/`` in the checkpoint: every
process writes its shard of the optimiser state; frozen base weights are left out) and restored by
``engine.load_checkpoint``; under FSDP2 ``optimizer.pt`` holds the full (gathered) optimiser state.

Hand-written rather than ``Accelerator.save_state``: that saves the whole model state dict
(base weights included, ~0.5 GB for a 135M model) at every checkpoint even for a LoRA run, and does
not produce the peft layout that the eval harness and vLLM load.
"""
from __future__ import annotations

import json
import pickle
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reasonkit.errors import ReasonkitError
from reasonkit.files import read_json

from .checkpoint_check import damaged
from .distributed import engine, full_state_dict, shards_parameters

STATE_FILE = "trainer_state.json"
_CKPT_RE = re.compile(r"^checkpoint-(\d+)$")


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states as tensors, numbers and tuples (``weights_only`` loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"python": random.getstate(), "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos),
                                                  int(has_gauss), float(gauss)),
            "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])


def load_tensors(path: Path) -> Any:
    """``torch.load(path, weights_only=True)``; anything that is not plain data is one line, exit 2."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ReasonkitError(f"--resume: {path} is missing") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise damaged(Path(path).parent, path, "it holds objects other than tensors and numbers (loading it "
                      f"could run code) or it is damaged: {type(exc).__name__}", verb="was refused") from None


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints in ``output_dir``, oldest first."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out.iterdir()
             if (m := _CKPT_RE.match(p.name)) and (p / STATE_FILE).is_file()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    ckpts = list_checkpoints(output_dir)
    return ckpts[-1] if ckpts else None


def save_checkpoint(output_dir: str | Path, step: int, *, accelerator, model, tokenizer, optimizer, scheduler,
                    state: dict[str, Any], keep: int = 0) -> Path:
    """Save ``checkpoint-<step>``; every process must call it (each writes its own RNG state)."""
    out = Path(output_dir)
    final = out / f"checkpoint-{step}"
    tmp = out / f"checkpoint-{step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()

    kind, sharded = engine(accelerator), shards_parameters(accelerator)
    unwrapped = accelerator.unwrap_model(model)
    gathered = full_state_dict(accelerator, model)  # sharded engines: every process takes part
    # peft's save_pretrained writes only the adapter; a plain transformers model writes everything.
    if not sharded or accelerator.is_main_process:
        unwrapped.save_pretrained(str(tmp), is_main_process=accelerator.is_main_process,
                                  save_function=accelerator.save, safe_serialization=True,
                                  **({"state_dict": gathered} if sharded else {}))
    torch.save(rng_state(), tmp / f"rng_state_{accelerator.process_index}.pth")
    if kind == "deepspeed":  # optimiser shards, scheduler: every process
        model.save_checkpoint(str(tmp), tag="deepspeed", save_latest=False, exclude_frozen_parameters=True)
    optim_state = _full_optimizer_state(model, optimizer) if kind == "fsdp" else None
    if accelerator.is_main_process:
        tokenizer.save_pretrained(str(tmp))
        if kind != "deepspeed":
            torch.save(optim_state or optimizer.state_dict(), tmp / "optimizer.pt")
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        (tmp / STATE_FILE).write_text(json.dumps({"step": step, **state}, indent=2, default=str))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        if keep > 0:
            for old in list_checkpoints(out)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(path: str | Path, *, accelerator, model, optimizer, scheduler) -> dict[str, Any]:
    """Restore weights, optimiser, scheduler and this process's RNG from ``path``; return trainer state."""
    path = Path(path)

    kind = engine(accelerator)
    if kind == "fsdp":
        raise ReasonkitError(f"{path}: --resume is not supported under FSDP yet; the checkpoint's weights load "
                             f"with reasonkit eval, or resume the run under DeepSpeed ZeRO-2/3 or DDP")
    if kind == "deepspeed":
        if not (path / "deepspeed").is_dir():
            raise ReasonkitError(f"{path}: no deepspeed/ state in this checkpoint (written by another engine); "
                                 f"resume it with the engine that wrote it")
        rng, state = _read_rng_and_state(path, accelerator)
        # DeepSpeed reads its own files (deepspeed/) with its own loader, outside the weights_only rule above.
        model.load_checkpoint(str(path), tag="deepspeed", load_module_strict=False, load_optimizer_states=True,
                              load_lr_scheduler_states=True)
        return _apply_rng(path, accelerator, rng, state)
    unwrapped = accelerator.unwrap_model(model)
    if (path / "adapter_model.safetensors").is_file():
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(unwrapped, _load_safetensors(path, path / "adapter_model.safetensors"))
        missing = [k for k in getattr(result, "unexpected_keys", []) if "lora" in k]
        if missing:
            raise RuntimeError(f"{path}: adapter keys not in the model: {missing[:3]}")
    else:
        files = sorted(path.glob("model*.safetensors"))
        sd = {}
        for f in files:
            sd.update(_load_safetensors(path, f))
        _check_full_weights(path, unwrapped, unwrapped.load_state_dict(sd, strict=False))
    optimizer_state = load_tensors(path / "optimizer.pt")
    scheduler_state = load_tensors(path / "scheduler.pt")
    rng, state = _read_rng_and_state(path, accelerator)
    optimizer.load_state_dict(optimizer_state)
    scheduler.load_state_dict(scheduler_state)
    return _apply_rng(path, accelerator, rng, state)


def _load_safetensors(checkpoint: Path, f: Path) -> dict[str, Any]:
    """``safetensors.torch.load_file``; a damaged file is one line naming the previous checkpoint."""
    from safetensors.torch import load_file

    try:
        return load_file(str(f))
    except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError: the file cannot be read
        raise damaged(checkpoint, f, f"{type(exc).__name__}: {str(exc)[:120]}") from None


def _check_full_weights(path: Path, model, result) -> None:
    """Full fine-tuning resume: every weight of the model must come from the checkpoint (one line, exit 2).

    ``strict=False`` because ``save_pretrained`` leaves out a tied weight (the output head that shares
    the embedding); any other missing or unexpected key means another model's checkpoint (issue 23 e).
    """
    own = model.state_dict()
    loaded = {own[k].data_ptr() for k in own if k not in result.missing_keys}
    missing = [k for k in result.missing_keys if own[k].data_ptr() not in loaded]  # tied to a loaded one: fine
    if missing or result.unexpected_keys:
        what = (f"lacks {len(missing)} weights of the model (first: {missing[0]})" if missing
                else f"has {len(result.unexpected_keys)} weights the model does not (first: {result.unexpected_keys[0]})")
        raise ReasonkitError(f"--resume {path}: the checkpoint {what}; it was written for another model")


def _full_optimizer_state(model, optimizer) -> dict[str, Any]:
    """FSDP2: the optimiser state gathered into full tensors (collective; every process calls it)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    inner = getattr(optimizer, "optimizer", optimizer)
    return get_optimizer_state_dict(model, inner, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def _read_rng_and_state(path: Path, accelerator) -> tuple[Any, dict[str, Any]]:
    """Read (never execute) this process's RNG file and the trainer state, before anything is applied."""
    rng_file = path / f"rng_state_{accelerator.process_index}.pth"
    rng = load_tensors(rng_file) if rng_file.is_file() else None
    return rng, read_json(path / STATE_FILE, "--resume ")


def _apply_rng(path: Path, accelerator, rng, state: dict[str, Any]) -> dict[str, Any]:
    if rng is not None:
        try:
            set_rng_state(rng)
        except (KeyError, TypeError, ValueError) as exc:
            rng_file = path / f"rng_state_{accelerator.process_index}.pth"
            raise ReasonkitError(f"--resume: {rng_file}: not an RNG state written by reasonkit ({exc})") from None
    return state
