"""The generate stage of ``reasonkit eval``: start the engine, render the prompts, generate in chunks.

* :func:`start_engine` — an engine the caller gave is used as is (and not closed); otherwise, when
  anything is left to generate, the planned backend starts with every adapter
  (:func:`open_backend`), after a hub model that cannot be had is refused in one line (issue 28).
* :func:`batches` — the pending items in chunks of ``chunk_size``; for each chunk, each adapter's
  items not yet done go to the engine in one call, each item with its own sampling seed
  (:func:`reasonkit.eval.identity.item_seed`, so a resume draws the same samples). Prompts are
  rendered once per item (:func:`reasonkit.eval.engine_io.engine_prompt`). It yields one
  :class:`Batch` per (chunk, adapter), so the caller scores and saves each before the next is
  generated (a killed run loses at most one chunk).
* :class:`Progress` — the rich progress bar over prompts, with requests and tokens per second and
  the count of failed requests.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

from .config import EvalConfig
from .engine_io import engine_prompt
from .identity import item_seed
from .plan import BASE, Plan
from reasonkit.engine import get_backend
from reasonkit.engine.types import Adapter
from reasonkit.engine.models import resolve_model
from reasonkit.engine.types import SamplingConfig


def open_backend(config: EvalConfig):
    """Resolve the model and start the engine with every adapter (each checked by the backend with
    :func:`reasonkit.engine.models.check_adapter` before the model loads)."""
    adapters = [Adapter(name, path) for name, path in config.adapters]
    # --backend openai: --model and --lora are served names (no local path, no base check here)
    engine = get_backend(config.backend, config.model, adapters=adapters, **config.engine_options())
    return engine, getattr(engine, "model_path", None)


class Progress:
    """A rich progress bar over prompts with generated tokens per second."""

    def __init__(self, total: int, show: bool):
        self.tokens = 0
        self.start = time.perf_counter()
        self.bar = None
        if show and total:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rps]} req/s {task.fields[tps]} tok/s"),
                                TextColumn("{task.fields[errors]}"), TimeElapsedColumn(), console=Console(stderr=True))
            self.bar.start()
            self.task = self.bar.add_task("generating", total=total, tps="-", rps="-", errors="")
        self.done = self.errors = 0

    def set_description(self, text: str) -> None:
        if self.bar:
            self.bar.update(self.task, description=text)

    def __call__(self, prompts: int, tokens: int) -> None:
        self.tokens += tokens
        self.done += prompts
        if self.bar:
            elapsed = max(time.perf_counter() - self.start, 1e-9)
            self.bar.update(self.task, advance=prompts, tps=f"{self.tokens / elapsed:,.0f}",
                            rps=f"{self.done / elapsed:,.1f}")

    def error(self, count: int) -> None:
        """A prompt's request failed (the backend calls this before counting it done)."""
        self.errors += count
        if self.bar:
            self.bar.update(self.task, errors=f"[red]{self.errors} failed")

    def close(self) -> None:
        if self.bar:
            self.bar.stop()


@dataclass
class EngineUse:
    """The engine a run generates with, and what the summary records about it."""
    engine: Any
    model_path: str | None = None
    choice: str | None = None   # "backend hf (auto: ...)"; None when the caller gave the engine
    own: bool = False           # started here, so closed here
    timing: dict[str, Any] = field(default_factory=lambda: {"engine_start_s": 0.0, "generation_s": 0.0,
                                                            "completion_tokens": 0})

    def close(self) -> None:
        if self.own and self.engine is not None:
            self.engine.close()


def start_engine(plan: Plan, engine: Any, total: int, show: bool, opener=open_backend) -> EngineUse:
    """The engine to generate with (see the module docstring); ``opener`` starts one from a config."""
    config = plan.config
    if plan.early_engine is not None:
        return EngineUse(plan.early_engine[0], plan.early_engine[1], "backend openai", own=True)
    if engine is not None or total == 0:
        return EngineUse(engine)
    if config.model and config.backend != "openai":  # a hub model that cannot be had: one line, before

        resolve_model(config.model)
    choice = f"backend {plan.backend}" + (f" (auto: {plan.why})" if config.backend == "auto" else "")
    if show:
        print(choice, file=sys.stderr)
    t0 = time.perf_counter()
    started, model_path = opener(replace(config, backend=plan.backend))
    use = EngineUse(started, model_path, choice, own=True)
    use.timing["engine_start_s"] = time.perf_counter() - t0
    return use


@dataclass
class Batch:
    """One engine call: an adapter's items of one chunk and their outputs (one per item, ``n`` samples)."""
    adapter: str
    items: list[dict[str, Any]]
    outputs: list[Any]


def batches(plan: Plan, use: EngineUse, progress: Progress) -> Iterator[Batch]:
    """Generate what is pending, chunk by chunk and adapter by adapter (see the module docstring)."""
    config, engine, done = plan.config, use.engine, plan.done
    pending = plan.pending
    if not pending:
        return
    prompts = {it["id"]: engine_prompt(plan.bench, it, engine, engine.tokenizer, config.chat_template_kwargs)
               for it in pending}
    sampling = SamplingConfig(n=config.n, temperature=config.temperature, top_p=config.top_p,
                              max_tokens=config.max_tokens, seed=config.seed, stop=config.stop)
    for start in range(0, len(pending), config.chunk_size):
        chunk = pending[start:start + config.chunk_size]
        for adapter in plan.adapters:
            sub = [it for it in chunk if (it["id"], adapter) not in done]
            if not sub:
                continue
            progress.set_description(f"generating ({adapter})")
            t0 = time.perf_counter()
            seeds = tuple(item_seed(config.seed, it) for it in sub)  # per item, not per position in the chunk
            outs = engine.generate([prompts[it["id"]] for it in sub], replace(sampling, seeds=seeds),
                                   adapter=None if adapter == BASE else adapter, progress=progress)
            use.timing["generation_s"] += time.perf_counter() - t0
            use.timing["completion_tokens"] += sum(c.num_tokens or 0 for out in outs for c in out.completions)
            yield Batch(adapter, sub, outs)


def served(plan: Plan, use: EngineUse, total: int) -> dict[str, dict[str, Any]]:
    """Per adapter, what the server reported about the served name (``--backend openai``), else {}."""
    if not total or not hasattr(use.engine, "served"):
        return {}
    return {a: use.engine.served(None if a == BASE else a) for a in plan.adapters}
