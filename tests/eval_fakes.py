"""Test doubles for the eval harness: a fake tokenizer and a fake Backend answering from a script.

The fake backend is a legitimate unit-test double of the generation interface (``Backend``): it lets the
harness logic (chunking, resume, scoring, metrics, reports) be tested in milliseconds. The real backends
are exercised by the end-to-end tests in ``test_eval_e2e.py``.
"""
from __future__ import annotations

from typing import Callable, Sequence

from reasonkit.engine.types import Adapter, Backend, Completion, GenerationOutput, SamplingConfig


class FakeTokenizer:
    chat_template = "fake"

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        text = "".join(f"<|{m['role']}|>{m['content']}\n" for m in messages)
        return text + ("<|assistant|>" if add_generation_prompt else "")


Script = Callable[[str, "str | None", int], "tuple[str, str] | str"]


class FakeBackend(Backend):
    """``script(prompt, adapter, sample_index)`` -> completion text, or (text, finish_reason), or
    (text, finish_reason, stop_string) for a completion a stop string ended."""

    name = "fake"

    def __init__(self, script: Script, fail_after_calls: int | None = None):
        self.script = script
        self.calls: list[tuple[int, str | None]] = []  # (number of prompts, adapter) per generate call
        self.adapters: dict[str, Adapter] = {}
        self.fail_after_calls = fail_after_calls
        self.closed = False

    def generate(self, prompts: Sequence[str], sampling: SamplingConfig, adapter: str | None = None,
                 progress=None) -> list[GenerationOutput]:
        if self.fail_after_calls is not None and len(self.calls) >= self.fail_after_calls:
            raise KeyboardInterrupt("simulated kill")
        self.calls.append((len(prompts), adapter))
        outs = []
        for p in prompts:
            comps = []
            for s in range(sampling.n):
                got = self.script(p, adapter, s)
                text, reason, matched = ((got, "stop") if isinstance(got, str) else tuple(got)) + (None,) * (
                    1 if isinstance(got, str) or len(got) == 2 else 0)
                comps.append(Completion(text=text, token_ids=list(range(len(text.split()))), finish_reason=reason,
                                        stop_string=matched))
            outs.append(GenerationOutput(prompt=p, prompt_token_ids=[1, 2, 3], completions=comps))
            if progress:
                progress(1, sum(len(c.token_ids) for c in comps))
        return outs

    def add_adapter(self, adapter: Adapter) -> None:
        self.adapters[adapter.name] = adapter

    @property
    def tokenizer(self):
        return FakeTokenizer()

    def close(self) -> None:
        self.closed = True
