"""The transformers backend: batched generation with left padding and peft adapters.

* Decoding: :func:`reasonkit.engine.hf_decode.decode_batch` (transformers' model forward
  and a preallocated KV cache; rows leave the batch as they finish) with, on CPU, the decode-step
  attention of :mod:`reasonkit.engine.hf_attention`, an active LoRA adapter merged for
  the call (:mod:`reasonkit.engine.hf_merge`) and few-row linears in the layout this host
  computes faster (:mod:`reasonkit.engine.hf_linear`). ``fast_decode=False`` uses plain
  ``model.generate`` instead; the tests hold the two to the same output.
* Batching: prompts are sorted by token length (longest first, so a batch that does not fit in
  memory fails early and batches hold similar lengths, i.e. little padding), generated in batches
  of at most ``batch_size`` sequences (prompts x samples) and returned in the caller's order.
* Sampling: ``temperature == 0`` is greedy; ``n`` greedy samples are one generation copied ``n``
  times (they would be identical, as in vLLM). Otherwise ``n`` samples per prompt (temperature,
  top-p; top-k disabled: transformers defaults to 50, vLLM to none). ``torch.manual_seed(seed)``
  is set once per ``generate`` call, so the same call with the same batch size repeats exactly.
  With ``sampling.seeds`` (one per prompt: the eval runner's per-item seeds) sample ``j`` of prompt
  ``i`` draws from its own generator seeded ``seeds[i] + j``, whatever else is in the batch
  (``fast_decode=False``: one prompt per ``generate`` call, the global RNG seeded ``seeds[i]``).
* Stops: EOS, or the first of ``sampling.stop``: the text is cut
  before the stop string and ``finish_reason`` is ``"stop"``; the token ids run up to and including
  the token that completed the stop string (vLLM's convention). ``"length"`` when ``max_tokens``
  were generated with neither. Token ids include the EOS token; text never does.
* Log-probs (``sampling.logprobs``): recomputed after generation with one teacher-forced forward
  pass over prompt + completion, ``log_softmax`` of the raw logits in fp32 (temperature 1, no
  top-p) at each sampled token. That is the same quantity vLLM returns by default
  (``logprobs_mode="raw_logprobs"``) and what a trainer computes, and unlike ``output_scores`` it
  does not keep a ``steps x batch x vocab`` tensor alive during generation.
* Adapters: the base is loaded once and wrapped in a ``PeftModel``; every adapter is loaded with
  ``load_adapter(path, adapter_name=name)``; ``generate(adapter=name)`` switches with
  ``set_adapter`` and ``adapter=None`` runs the base under ``disable_adapter()``. Re-adding a name
  deletes the old weights and loads the new ones (no base reload).
* dtype ``"auto"``: :func:`reasonkit.engine.types.pick_dtype` (bf16 on a CPU with native
  bf16 and on GPUs that support it, fp16 on other GPUs, fp32 otherwise). Greedy text in bf16 can
  differ from fp32 after some tokens; pass ``dtype="float32"`` for reference runs. Speeds are
  measured by ``benchmarks/bench_hf_decode.py`` and ``bench_backends.py`` (``benchmarks/results/``).
* Padding and the teacher-forced log-probs: :mod:`reasonkit.engine.packing`.

``generate_with_model(model, tokenizer, prompts, sampling)`` exposes the same generation for a
live model (the GRPO trainer's rollouts).
"""
from __future__ import annotations

import time
import warnings
from typing import Iterable, Sequence

from reasonkit.errors import ReasonkitError, did_you_mean
from reasonkit.engine.types import (VLLM_ONLY_OPTIONS, Adapter, Backend, Completion, GenerationOutput,
                                          ProgressFn, SamplingConfig, default_device, pick_dtype)
from reasonkit.engine.hf_attention import decode_attention
from reasonkit.engine.hf_linear import streaming_linears
from reasonkit.engine.hf_merge import merged_lora
from reasonkit.engine.models import check_adapter, resolve_model
from reasonkit.threads import apply_torch_threads


# --------------------------------------------------------------------------- generation

def _eos_ids(model, tokenizer) -> list[int]:
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    ids = [eos] if isinstance(eos, int) else list(eos or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def _pad_id(tokenizer, eos_ids: list[int]) -> int:
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    return eos_ids[0] if eos_ids else 0


def _finish(tokenizer, new_ids: list[int], eos_ids: list[int], stop: tuple[str, ...],
            max_tokens: int) -> tuple[str, list[int], str, str | None]:
    """Trim one generated row (may carry padding after EOS) -> (text, token_ids, finish_reason, stop string)."""
    cut = next((i for i, t in enumerate(new_ids) if t in eos_ids), None)
    body = new_ids if cut is None else new_ids[:cut]
    text = tokenizer.decode(body, skip_special_tokens=True)
    if stop:
        hits = [(text.find(s), s) for s in stop if s and s in text]
        if hits:
            pos, matched = min(hits)
            # Fewest tokens whose text contains a stop string (monotone in k: binary search).
            lo, hi = 1, len(body)
            while lo < hi:
                mid = (lo + hi) // 2
                part = tokenizer.decode(body[:mid], skip_special_tokens=True)
                if any(s and s in part for s in stop):
                    hi = mid
                else:
                    lo = mid + 1
            return text[:pos], list(body[:lo]), "stop", matched
    if cut is not None:
        return text, list(new_ids[: cut + 1]), "stop", None
    return text, list(body), "length" if len(body) >= max_tokens else "stop", None


def generate_with_model(model, tokenizer, prompts: Sequence[str], sampling: SamplingConfig, *,
                        batch_size: int = 16, progress: ProgressFn | None = None,
                        prompt_token_ids: Sequence[Sequence[int]] | None = None,
                        fast_decode: bool = True) -> list[GenerationOutput]:
    """Generate ``sampling.n`` completions per prompt with a live transformers (or peft) model.

    ``prompts`` are rendered text, tokenized with ``add_special_tokens=False`` unless
    ``prompt_token_ids`` are given. ``batch_size`` bounds the sequences (prompts x samples) per
    batch. ``fast_decode`` (default) generates with :func:`hf_decode.decode_batch` (finished rows
    leave the batch) and, for a CPU model on ``sdpa``, reasonkit's decode-step attention
    (:mod:`reasonkit.engine.hf_attention`); ``fast_decode=False`` is plain transformers
    ``generate`` with the model's attention, the reference both are tested against. With
    ``fast_decode`` an active LoRA adapter is also merged into the base weights for the call and
    restored exactly afterwards (:mod:`reasonkit.engine.hf_merge`), and few-row linears use
    the layout this host computes faster (:mod:`reasonkit.engine.hf_linear`). The model's
    train/eval mode is restored afterwards.
    """
    import torch

    # lazy: reasonkit.engine.hf_decode imports transformers
    from reasonkit.engine.hf_decode import decode_batch, stop_string_checker
    # lazy: reasonkit.engine.packing imports torch
    from reasonkit.engine.packing import left_pad, sequence_logprobs

    if batch_size < 1:
        raise ReasonkitError(f"batch size must be at least 1, got {batch_size}")
    prompts = list(prompts)
    if prompt_token_ids is None:
        prompt_token_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    prompt_token_ids = [list(ids) for ids in prompt_token_ids]
    if len(prompt_token_ids) != len(prompts):
        raise ValueError("prompts and prompt_token_ids differ in length")
    if any(len(ids) == 0 for ids in prompt_token_ids):  # before any batch is generated
        raise ReasonkitError("an empty prompt cannot be generated from (no tokens)")
    results = [GenerationOutput(prompt=p, prompt_token_ids=ids) for p, ids in zip(prompts, prompt_token_ids)]
    if not prompts:
        return results

    greedy = sampling.temperature <= 0
    per_prompt = 1 if greedy else sampling.n  # greedy samples are identical: generate once, copy
    prompts_per_batch = max(1, batch_size // per_prompt)
    per_prompt_seeds = sampling.seeds is not None and not greedy
    if per_prompt_seeds and len(sampling.seeds) != len(prompts):
        raise ValueError("sampling.seeds needs one seed per prompt")
    if per_prompt_seeds and not fast_decode:
        prompts_per_batch = 1  # plain generate draws from the global RNG: seeded per prompt, one at a time
    device = next(model.parameters()).device
    eos_ids = _eos_ids(model, tokenizer)
    pad_id = _pad_id(tokenizer, eos_ids)
    stop = tuple(s for s in sampling.stop if s)
    if fast_decode:
        is_stopped = stop_string_checker(tokenizer, stop)

        def generate_rows(rows, seeds=None):
            return decode_batch(model, rows, max_new_tokens=sampling.max_tokens, eos_ids=eos_ids, pad_id=pad_id,
                                temperature=sampling.temperature, top_p=sampling.top_p, n=per_prompt,
                                is_stopped=is_stopped, seeds=seeds)
    else:
        kwargs = dict(max_new_tokens=sampling.max_tokens, num_return_sequences=per_prompt, pad_token_id=pad_id,
                      eos_token_id=eos_ids, return_dict_in_generate=True)
        if greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        if stop:
            kwargs.update(stop_strings=list(stop), tokenizer=tokenizer)

        def generate_rows(rows, seeds=None):
            if seeds is not None:  # one prompt per batch (see below): its own seed on the global RNG
                torch.manual_seed(int(seeds[0]))
            ids, mask = left_pad(rows, pad_id, device)
            out = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
            return out.sequences[:, ids.shape[1]:].tolist()

    order = sorted(range(len(prompts)), key=lambda i: -len(prompt_token_ids[i]))
    was_training = model.training
    model.eval()
    if sampling.seed is not None:
        torch.manual_seed(sampling.seed)
    try:
        with (decode_attention(model, enabled=fast_decode), merged_lora(model, enabled=fast_decode),
              streaming_linears(model, enabled=fast_decode), torch.no_grad()):
            for start in range(0, len(order), prompts_per_batch):
                batch = order[start:start + prompts_per_batch]
                rows = [prompt_token_ids[i] for i in batch]
                new = generate_rows(rows, [sampling.seeds[i] for i in batch] if per_prompt_seeds else None)
                finished = [_finish(tokenizer, row, eos_ids, stop, sampling.max_tokens) for row in new]
                logprobs = None
                if sampling.logprobs:
                    repeated = [rows[j // per_prompt] for j in range(len(finished))]
                    logprobs = sequence_logprobs(model, repeated, [f[1] for f in finished], pad_id)
                n_tokens = 0
                for j, (text, token_ids, reason, matched) in enumerate(finished):
                    target = results[batch[j // per_prompt]]
                    copies = sampling.n if greedy else 1
                    for _ in range(copies):
                        target.completions.append(Completion(text=text, token_ids=list(token_ids),
                                                             finish_reason=reason, stop_string=matched,
                                                             logprobs=list(logprobs[j]) if logprobs else None))
                        n_tokens += len(token_ids)
                if progress is not None:
                    progress(len(batch), n_tokens)
    finally:
        if was_training:
            model.train()
    return results


# --------------------------------------------------------------------------- backend

class HFBackend(Backend):
    """transformers + peft. Options: ``dtype`` (auto|float32|bfloat16|float16), ``batch_size``
    (sequences per generate call, default 16), ``device`` (default cuda if available else cpu),
    ``check_base`` (verify each adapter's base model, default True), ``threads`` (torch CPU
    threads; default: :func:`reasonkit.threads.apply_torch_threads`, the idle cores), ``fast_decode``
    (default True; False: plain ``model.generate``)."""

    name = "hf"

    def __init__(self, model: str | None, adapters: Iterable[Adapter] = (), *, dtype: str = "auto",
                 batch_size: int = 16, device: str | None = None, check_base: bool = True,
                 threads: int | None = None, fast_decode: bool = True, **unused):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        ignored = {k for k, v in unused.items() if v is not None} - VLLM_ONLY_OPTIONS
        if ignored:
            raise ReasonkitError(f"hf backend: unknown option(s) {', '.join(sorted(ignored))}")
        if batch_size < 1:
            raise ReasonkitError(f"--batch-size must be at least 1, got {batch_size}")
        self.model_name = model
        self.model_path = resolve_model(model)
        self.device = device or default_device()
        if threads or str(self.device).startswith("cpu"):  # a busy machine: see reasonkit/threads.py

            self.threads = apply_torch_threads(threads)
        self.dtype = pick_dtype(dtype, self.device)
        self.batch_size = batch_size
        self.check_base = check_base
        self.fast_decode = fast_decode
        adapters = list(adapters)
        for adapter in adapters:  # before the model loads: a wrong adapter fails fast
            check_adapter(adapter.path, model, check_base)
        t0 = time.perf_counter()
        self._tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self._tokenizer.padding_side = "left"
        if self._tokenizer.pad_token is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token
        self.base = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=self.dtype).to(self.device)
        self.base.eval()
        self.model = self.base  # becomes a PeftModel once an adapter is added
        self.adapters: dict[str, Adapter] = {}
        for adapter in adapters:
            self.add_adapter(adapter)
        self.startup_seconds = time.perf_counter() - t0

    @property
    def tokenizer(self):
        return self._tokenizer

    def add_adapter(self, adapter: Adapter) -> None:
        from peft import PeftModel

        check_adapter(adapter.path, self.model_name, self.check_base)
        if self.model is self.base:
            self.model = PeftModel.from_pretrained(self.base, adapter.path, adapter_name=adapter.name)
        else:
            if adapter.name in self.adapters:
                with warnings.catch_warnings():  # "adapter X was active which is now deleted"
                    warnings.simplefilter("ignore", UserWarning)
                    self.model.delete_adapter(adapter.name)
            self.model.load_adapter(adapter.path, adapter_name=adapter.name)
        self.model.eval()
        self.adapters[adapter.name] = adapter

    def generate(self, prompts: Sequence[str], sampling: SamplingConfig, adapter: str | None = None,
                 progress: ProgressFn | None = None) -> list[GenerationOutput]:
        if adapter is not None and adapter not in self.adapters:
            raise ReasonkitError(str(did_you_mean(adapter, list(self.adapters) or ["(none loaded)"], "adapter")))
        if adapter is None:
            if self.model is self.base:
                return generate_with_model(self.base, self._tokenizer, prompts, sampling,
                                           batch_size=self.batch_size, progress=progress,
                                           fast_decode=self.fast_decode)
            with self.model.disable_adapter():
                return generate_with_model(self.model, self._tokenizer, prompts, sampling,
                                           batch_size=self.batch_size, progress=progress,
                                           fast_decode=self.fast_decode)
        self.model.set_adapter(adapter)
        if self.model.active_adapter != adapter:  # decode with the weights of the adapter reported, or not at all
            raise RuntimeError(f"hf backend: asked for adapter {adapter!r}, peft has {self.model.active_adapter!r} active")
        return generate_with_model(self.model, self._tokenizer, prompts, sampling, batch_size=self.batch_size,
                                   progress=progress, fast_decode=self.fast_decode)

    def close(self) -> None:
        import gc

        self.model = self.base = None
        gc.collect()
