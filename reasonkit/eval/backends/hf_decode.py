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
* each step picks the next token from fp32 logits, exactly as ``generate`` does: ``argmax`` when
  greedy, else logits / temperature, top-p with transformers' ``TopPLogitsWarper`` (top-k off, as
  in vLLM), ``softmax`` and ``torch.multinomial`` on the global RNG;
* a row finishes at an EOS token, when its text contains a stop string, or at ``max_new_tokens``;
  finished rows are dropped from the cache, the mask and the positions before the next step.

Position ids follow ``generate`` (cumulative sum of the mask minus one), so greedy output equals
``generate``'s up to floating-point differences from the changing batch shape (identical in the
fp32 tests). The model's own ``generation_config`` (repetition penalty and the like) is not
applied: the caller's sampling settings are all there is, as with vLLM given ``SamplingParams``.
"""
from __future__ import annotations

from typing import Callable, Sequence


def decode_batch(model, rows: Sequence[Sequence[int]], *, max_new_tokens: int, eos_ids: Sequence[int], pad_id: int,
                 temperature: float = 0.0, top_p: float = 1.0, n: int = 1,
                 is_stopped: Callable[[list[int]], bool] | None = None) -> list[list[int]]:
    """Generate for ``rows`` (prompt token ids, none empty); ``n`` completions per row when sampling.

    Returns ``len(rows) * n`` lists of new token ids, row-major (row ``i``'s completions at
    ``i * n .. i * n + n - 1``), each ending with its EOS token when it stopped on one.
    ``is_stopped(ids)`` is asked after each new token of a row (stop strings).
    """
    import torch
    from transformers import DynamicCache
    from transformers.generation.logits_process import TopPLogitsWarper

    from reasonkit.packing import left_pad

    greedy = temperature <= 0
    copies = 1 if greedy else n
    device = next(model.parameters()).device
    ids, mask = left_pad(rows, pad_id, device)
    positions = mask.cumsum(-1) - 1
    positions.masked_fill_(mask == 0, 1)
    cache = DynamicCache(config=getattr(model, "config", None))
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
    for step in range(max_new_tokens):
        scores = logits.float()
        if greedy:
            tokens = scores.argmax(dim=-1)
        else:
            scores = scores / temperature
            if top_p_warper is not None:
                scores = top_p_warper(None, scores)
            tokens = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
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
