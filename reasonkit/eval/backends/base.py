"""The one interface every generation backend (vllm, hf) implements.

Prompts arrive as already-rendered text (chat template applied by the harness); backends
tokenize them with ``add_special_tokens=False`` so both see the same token ids.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Sequence


@dataclass(frozen=True)
class SamplingConfig:
    n: int = 1
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = 0
    stop: tuple[str, ...] = ()
    logprobs: bool = False  # return the log-prob of each sampled token


@dataclass(frozen=True)
class Adapter:
    """A LoRA adapter directory (peft layout) under a display name."""
    name: str
    path: str


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    finish_reason: str  # "stop" (EOS or stop string) | "length" (hit max_tokens)
    logprobs: list[float] | None = None


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
