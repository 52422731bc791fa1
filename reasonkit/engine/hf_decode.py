"""The hf backend's decode loop: ``model.generate`` minus the rows that have finished.

Why it exists: transformers' ``generate`` keeps every row of a batch in every decode step until
the last row finishes, so one completion that runs to ``max_tokens`` makes the whole batch pay for
its length. In GSM8K evaluation of the embedded model (64 items, 256 tokens) a third of the
completions hit the limit while the rest stop after ~105 tokens on average, and a decode step's cost
grows with the rows in it (measured here, bf16, with :mod:`hf_attention`: 30 ms at 8 rows, 56 ms
at 32). Continuous batching (vLLM; transformers' ``generate_batch``, whose paged path took 38 s on
this CPU for 8 prompts x 32 tokens that ``generate`` makes in 2 s) also adds new requests to the
freed slots; this loop only removes finished rows, which needs nothing but transformers'
``DynamicCache.batch_select_indices``.

The loop, for one left-padded batch:

* prefill each distinct prompt once (``logits_to_keep=1``); for ``n`` samples per prompt the KV
  cache is then repeated ``n`` times (``batch_repeat_interleave``) instead of prefilling ``n``
  copies as ``generate(num_return_sequences=n)`` does;
* each step picks the next token from fp32 logits as ``generate`` does: ``argmax`` when greedy,
  else logits / temperature, top-p with transformers' ``TopPLogitsWarper`` (top-k off, as in
  vLLM), ``softmax``, then one draw per row on the global RNG (:func:`sample_rows`);
* a row finishes at an EOS token, when its text contains a stop string, or at ``max_new_tokens``;
  finished rows are dropped from the cache, the mask and the positions before the next step.

Two parts of a CPU decode step that transformers makes costly are done differently (shares of the
step profiled on the embedded model, fp32, 8 rows x 64 tokens, 2 cores; what each saves end to end:
``benchmarks/bench_decode_paths.py``):

* the KV cache: ``DynamicCache`` appends by ``torch.cat``, so every step copies every layer's whole
  cache (13 % of the step here). :class:`PreallocatedLayer` writes each new token into a buffer
  sized for prompt + ``max_new_tokens`` and hands attention a view of the filled part. Layers of
  other kinds (sliding windows, linear attention) stay transformers' own;
* the draw: ``torch.multinomial`` on CPU draws one exponential variate per vocabulary entry and row
  (7 % of the step at a 49k vocabulary). :func:`sample_rows` draws one uniform per row and inverts
  the cumulative distribution (``searchsorted``): the same distribution, other random numbers.

Position ids follow ``generate`` (cumulative sum of the mask minus one), so greedy output equals
``generate``'s up to floating-point differences from the changing batch shape (identical in the
fp32 tests). The model's own ``generation_config`` (repetition penalty and the like) is not
applied: the caller's sampling settings are all there is, as with vLLM given ``SamplingParams``.
"""
from __future__ import annotations

from typing import Callable, Sequence

from transformers.cache_utils import DynamicLayer


class PreallocatedLayer(DynamicLayer):
    """A full-attention cache layer that appends into a preallocated buffer instead of ``torch.cat``.

    ``keys`` / ``values`` are views of the filled part of the buffer, so everything that reads a
    ``DynamicLayer`` reads this one the same way. The buffer holds ``capacity`` positions; an update
    past it doubles the buffer (correct, only slower).
    """

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.length = 0
        self._k = self._v = None

    def _views(self) -> None:
        self.keys, self.values = self._k[:, :, :self.length], self._v[:, :, :self.length]

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        new = key_states.shape[-2]
        if self._k is None or self.length + new > self._k.shape[-2]:
            size = max(self.capacity, 2 * (self.length + new))
            k = key_states.new_empty(*key_states.shape[:2], size, key_states.shape[-1])
            v = value_states.new_empty(*value_states.shape[:2], size, value_states.shape[-1])
            if self.length:
                k[:, :, :self.length], v[:, :, :self.length] = self.keys, self.values
            self._k, self._v = k, v
        self._k[:, :, self.length:self.length + new] = key_states
        self._v[:, :, self.length:self.length + new] = value_states
        self.length += new
        self._views()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.length:
            self._k, self._v = self._k.repeat_interleave(repeats, dim=0), self._v.repeat_interleave(repeats, dim=0)
            self._views()

    def batch_select_indices(self, indices) -> None:
        if self.length:
            self._k, self._v = self._k[indices], self._v[indices]
            self._views()

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove < 0:  # transformers' convention: a negative count is removed from the end
            self.length = max(0, self.length + tokens_to_remove)
        elif tokens_to_remove < self.length:  # a positive one is the length to keep
            self.length = tokens_to_remove
        if self._k is not None:
            self._views()

    def reset(self) -> None:
        self.length = 0
        self._k = self._v = None
        super().reset()


def preallocated_cache(model, capacity: int):
    """transformers' ``DynamicCache`` for ``model`` with its plain full-attention layers preallocated."""
    from transformers import DynamicCache

    cache = DynamicCache(config=getattr(model, "config", None))
    if not cache.layers:  # no config: the cache would add plain layers lazily
        from transformers.cache_utils import Cache

        cache = Cache(layer_class_to_replicate=lambda: PreallocatedLayer(capacity))
    cache.layers = [PreallocatedLayer(capacity) if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


def sample_rows(probs, generators=None):
    """One token per row of ``probs`` (rows sum to ~1, entries >= 0): inverse-CDF sampling.

    ``generators``: one ``torch.Generator`` per row (each row's draws then depend on its own seed
    only, not on the other rows of the batch); None: the global RNG.

    A uniform ``u`` per row is scaled to the row's total and located in the cumulative sums with
    ``searchsorted(..., right=True)``, so a token of probability 0 is never drawn (its cumulative
    sum equals its predecessor's). Rounding can put the point past the last sum (probability about
    2^-24 per draw); such a row takes its most likely token.
    """
    import torch

    cdf = probs.cumsum(dim=-1)
    if generators is None:
        uniform = torch.rand((probs.shape[0], 1), device=probs.device, dtype=cdf.dtype)
    else:
        uniform = torch.cat([torch.rand((1, 1), generator=g, device=probs.device, dtype=cdf.dtype)
                             for g in generators])
    point = uniform * cdf[:, -1:]
    tokens = torch.searchsorted(cdf, point, right=True).squeeze(1)
    past = tokens >= probs.shape[-1]
    if bool(past.any()):
        tokens = torch.where(past, probs.argmax(dim=-1), tokens)
    return tokens


def decode_batch(model, rows: Sequence[Sequence[int]], *, max_new_tokens: int, eos_ids: Sequence[int], pad_id: int,
                 temperature: float = 0.0, top_p: float = 1.0, n: int = 1,
                 is_stopped: Callable[[list[int]], bool] | None = None,
                 seeds: Sequence[int] | None = None) -> list[list[int]]:
    """Generate for ``rows`` (prompt token ids, none empty); ``n`` completions per row when sampling.

    Returns ``len(rows) * n`` lists of new token ids, row-major (row ``i``'s completions at
    ``i * n .. i * n + n - 1``), each ending with its EOS token when it stopped on one.
    ``is_stopped(ids)`` is asked after each new token of a row (stop strings). ``seeds`` (one per
    row of ``rows``): sample ``j`` of row ``i`` draws from its own generator seeded ``seeds[i] + j``,
    so its tokens do not depend on the batch it is in; None: the global RNG.
    """
    import torch
    from transformers.generation.logits_process import TopPLogitsWarper

    # lazy: reasonkit.engine.packing imports torch
    from reasonkit.engine.packing import left_pad

    greedy = temperature <= 0
    copies = 1 if greedy else n
    device = next(model.parameters()).device
    ids, mask = left_pad(rows, pad_id, device)
    positions = mask.cumsum(-1) - 1
    positions.masked_fill_(mask == 0, 1)
    cache = preallocated_cache(model, ids.shape[1] + max_new_tokens)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                       use_cache=True, logits_to_keep=1).logits[:, -1]
    if copies > 1:
        cache.batch_repeat_interleave(copies)
        logits = logits.repeat_interleave(copies, dim=0)
        mask = mask.repeat_interleave(copies, dim=0)
        positions = positions.repeat_interleave(copies, dim=0)
    next_position = positions[:, -1:] + 1
    top_p_warper = TopPLogitsWarper(top_p) if not greedy and top_p < 1.0 else None
    eos = set(eos_ids)
    out: list[list[int]] = [[] for _ in range(len(rows) * copies)]
    active = list(range(len(out)))  # the output row of each row still in the batch
    generators = None
    if seeds is not None and not greedy:
        generators = [torch.Generator(device=device).manual_seed(int(seeds[r // copies]) + r % copies)
                      for r in range(len(out))]
    for step in range(max_new_tokens):
        scores = logits.float()
        if greedy:
            tokens = scores.argmax(dim=-1)
        else:
            if temperature != 1.0:
                scores = scores / temperature
            if top_p_warper is not None:
                scores = top_p_warper(None, scores)
            probs = torch.softmax(scores, dim=-1)
            tokens = sample_rows(probs) if generators is None else sample_rows(probs, [generators[r] for r in active])
        keep = []
        for j, (row, token) in enumerate(zip(active, tokens.tolist())):
            out[row].append(token)
            if token not in eos and not (is_stopped is not None and is_stopped(out[row])):
                keep.append(j)
        if not keep or step == max_new_tokens - 1:
            break
        if len(keep) < len(active):
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            mask, next_position, tokens = mask[index], next_position[index], tokens[index]
            active = [active[j] for j in keep]
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        with torch.no_grad():
            logits = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=next_position,
                           past_key_values=cache, use_cache=True).logits[:, -1]
        next_position = next_position + 1
    return out


def stop_string_checker(tokenizer, stop: Sequence[str]) -> Callable[[list[int]], bool] | None:
    """``is_stopped(ids)``: whether the text of the last few tokens contains one of ``stop``.

    Only the tail is decoded (enough tokens for the longest stop string plus a margin for tokens
    that decode to less than one character), so the check costs the same at every length.
    """
    stop = tuple(s for s in stop if s)
    if not stop:
        return None
    window = max(len(s) for s in stop) + 8

    def is_stopped(ids: list[int]) -> bool:
        tail = tokenizer.decode(ids[-window:], skip_special_tokens=True)
        return any(s in tail for s in stop)

    return is_stopped
