"""The one interface every generation backend (vllm, hf, openai) implements.

Prompts arrive as already-rendered text (chat template applied by the harness); backends
tokenize them with ``add_special_tokens=False`` so both see the same token ids. A backend whose
``chat_api`` is true (the OpenAI-compatible one: the server applies the chat template) gets a
:class:`ChatPrompt` instead when a chat template applies.

A :class:`Completion` with ``error`` set is a request that failed (``finish_reason="error"``, no
text): it is saved as an error row, never scored, and regenerated on the next run.

Also here, shared by the backends and the trainer without importing torch at module level: the
dtype choice (:func:`pick_dtype`) and each backend's own option names (one option set can be given
to ``get_backend`` whichever backend ``--backend auto`` picks; each backend ignores the other's).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Sequence

from reasonkit.errors import ReasonkitError

BACKENDS = ("auto", "vllm", "hf", "openai")  # openai: an OpenAI-compatible server, only when asked for
DTYPES = ("auto", "float32", "bfloat16", "float16")
# Options only one backend understands; the other accepts and ignores them.
HF_ONLY_OPTIONS = frozenset({"batch_size", "threads", "fast_decode", "device"})
VLLM_ONLY_OPTIONS = frozenset({"gpu_memory_utilization", "tensor_parallel_size", "max_model_len", "max_loras",
                               "enable_lora", "enable_prefix_caching", "kv_cache_space_gib", "seed", "max_lora_rank",
                               "enforce_eager", "use_tqdm", "enable_chunked_prefill", "data_parallel_size",
                               "logprobs_mode", "worker_extension_cls"})


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 matmul instructions (AVX512-BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_dtype(dtype: str = "auto", device: str = "cpu"):
    """A dtype name as a torch dtype; ``auto``: bf16 on a GPU that supports it (else fp16), bf16 on
    a CPU with native bf16 instructions, fp32 on other CPUs."""
    import torch

    if dtype not in DTYPES:
        raise ReasonkitError(f"unknown dtype {dtype!r} (choose from: {', '.join(DTYPES)})")
    if dtype != "auto":
        return getattr(torch, dtype)
    if str(device).startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class SamplingConfig:
    n: int = 1
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = 0
    stop: tuple[str, ...] = ()
    logprobs: bool = False  # return the log-prob of each sampled token
    # One seed per prompt (sample j of prompt i: seeds[i] + j), so that a prompt's samples do not depend
    # on which other prompts share the call (issue 23: the eval runner seeds by item identity). None:
    # prompt i of a call gets seed + i * n.
    seeds: tuple[int, ...] | None = None

    def prompt_seed(self, i: int, n: int) -> int | None:
        """The seed of prompt ``i``'s first sample (``n`` samples per prompt in this call)."""
        if self.seeds is not None:
            return self.seeds[i]
        return None if self.seed is None else self.seed + i * n


@dataclass(frozen=True)
class Adapter:
    """A LoRA adapter directory (peft layout) under a display name."""
    name: str
    path: str


@dataclass(frozen=True)
class ChatPrompt:
    """Chat messages (and an assistant pre-fill) for a server that applies the chat template itself."""
    messages: tuple[dict[str, str], ...]
    prefill: str = ""

    def __str__(self) -> str:
        import json

        return json.dumps({"messages": list(self.messages), "prefill": self.prefill}, ensure_ascii=False)


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    finish_reason: str  # "stop" (EOS or stop string) | "length" (hit max_tokens) | "error"
    logprobs: list[float] | None = None
    error: str | None = None  # why the request failed (finish_reason "error")
    n_tokens: int | None = None  # token count reported by a server that returns no ids
    # The stop string that ended the completion: cut from ``text`` (vLLM's convention), given back to the
    # verifiers, which see ``text + stop_string`` (so ``--stop '</answer>'`` still closes the tag).
    stop_string: str | None = None

    @property
    def num_tokens(self) -> int | None:
        if self.n_tokens is not None:
            return self.n_tokens
        return None if self.error else len(self.token_ids)


@dataclass
class GenerationOutput:
    """All samples for one prompt."""
    prompt: str
    prompt_token_ids: list[int]
    completions: list[Completion] = field(default_factory=list)


ProgressFn = Callable[[int, int], None]  # (prompts_done_delta, tokens_generated_delta)


class Backend(ABC):
    name: str = "?"

    @abstractmethod
    def generate(self, prompts: Sequence[str], sampling: SamplingConfig, adapter: str | None = None,
                 progress: ProgressFn | None = None) -> list[GenerationOutput]:
        """Generate ``sampling.n`` completions for each prompt, with the named adapter (None = base)."""

    @abstractmethod
    def add_adapter(self, adapter: Adapter) -> None:
        """Register (or replace, under the same name) a LoRA adapter without reloading the base."""

    @property
    @abstractmethod
    def tokenizer(self):
        """The Hugging Face tokenizer of the served model."""

    def close(self) -> None:
        """Free the engine / model."""
