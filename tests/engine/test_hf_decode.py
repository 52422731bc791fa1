"""The hf backend's decode loop (reasonkit/engine/hf_decode.py) against transformers' generate."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from reasonkit.engine.types import SamplingConfig  # noqa: E402
from reasonkit.engine.hf import generate_with_model  # noqa: E402
from reasonkit.engine.packing import left_pad as _left_pad  # noqa: E402
from reasonkit.engine.hf_decode import decode_batch, stop_string_checker  # noqa: E402

PROMPTS = ["<|im_start|>user\nWhat is 12 * 7?<|im_end|>\n<|im_start|>assistant\n", "Hi",
           "The capital of France is", "1, 2, 3, 4, 5, 6, 7, 8,", "<|im_start|>user\nName a colour.<|im_end|>\n"]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = [tok(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
    return model, tok, rows


def reference(model, tok, rows, max_new_tokens, eos_ids, **kwargs):
    """transformers' generate on the same left-padded batch; rows trimmed after their first EOS."""
    ids, mask = _left_pad(rows, tok.pad_token_id, "cpu")
    with torch.no_grad():
        seq = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                             eos_token_id=list(eos_ids), pad_token_id=tok.pad_token_id, **kwargs)
    out = []
    for row in seq[:, ids.shape[1]:].tolist():
        cut = next((i for i, t in enumerate(row) if t in eos_ids), None)
        out.append(row if cut is None else row[:cut + 1])
    return out


def test_greedy_equals_generate(tiny):
    model, tok, rows = tiny
    ours = decode_batch(model, rows, max_new_tokens=20, eos_ids=[tok.eos_token_id], pad_id=tok.pad_token_id)
    ref = reference(model, tok, rows, 20, [tok.eos_token_id], do_sample=False)
    assert ours == ref
    assert all(len(r) == 20 for r in ours)  # the random model never says EOS: all run to the limit


def test_rows_stopping_early_leave_the_batch_and_others_are_unchanged(tiny):
    model, tok, rows = tiny
    free = decode_batch(model, rows, max_new_tokens=16, eos_ids=[tok.eos_token_id], pad_id=tok.pad_token_id)
    # Make a token that some rows produce early (and others do not produce at all) an EOS token.
    counts = {}
    for r in free:
        for t in set(r[:6]):
            counts[t] = counts.get(t, 0) + 1
    eos = next(t for t, c in sorted(counts.items(), key=lambda kv: -kv[1]) if c < len(rows))
    batch_sizes = []
    hook = model.register_forward_pre_hook(lambda mod, args, kw: batch_sizes.append(kw["input_ids"].shape[0]),
                                           with_kwargs=True)
    try:
        ours = decode_batch(model, rows, max_new_tokens=16, eos_ids=[eos], pad_id=tok.pad_token_id)
    finally:
        hook.remove()
    ref = reference(model, tok, rows, 16, [eos], do_sample=False)
    assert ours == ref
    stopped = [r for r in ours if r[-1] == eos]
    assert 0 < len(stopped) < len(rows)
    assert batch_sizes[0] == len(rows)
    assert batch_sizes[-1] == len(rows) - len(stopped)  # finished rows were dropped from the batch
    assert sorted(batch_sizes, reverse=True) == batch_sizes


def test_stop_strings_through_generate_with_model_match_generate(tiny):
    model, tok, _ = tiny
    plain = generate_with_model(model, tok, PROMPTS, SamplingConfig(max_tokens=16), fast_decode=False)
    # A stop string taken from the middle of one completion's text.
    text = plain[2].completions[0].text
    stop = text[len(text) // 3: len(text) // 3 + 3]
    assert stop.strip()
    sampling = SamplingConfig(max_tokens=16, stop=(stop,))
    fast = generate_with_model(model, tok, PROMPTS, sampling, fast_decode=True)
    slow = generate_with_model(model, tok, PROMPTS, sampling, fast_decode=False)
    assert [(c.text, c.token_ids, c.finish_reason) for o in fast for c in o.completions] == \
        [(c.text, c.token_ids, c.finish_reason) for o in slow for c in o.completions]
    assert fast[2].completions[0].finish_reason == "stop"
    assert stop not in fast[2].completions[0].text


def test_stop_string_checker_sees_only_the_tail(tiny):
    _, tok, _ = tiny
    assert stop_string_checker(tok, ()) is None
    assert stop_string_checker(tok, ("",)) is None
    check = stop_string_checker(tok, ("</answer>",))
    ids = tok("<answer>42</answer>", add_special_tokens=False)["input_ids"]
    assert check(ids)
    assert not check(ids[:-1])
    long_prefix = tok(" word" * 200, add_special_tokens=False)["input_ids"]
    assert check(long_prefix + ids) and not check(long_prefix)


def test_sampling_seeded_and_n_copies_share_one_prefill(tiny):
    model, tok, rows = tiny
    prefill_rows = []
    hook = model.register_forward_pre_hook(
        lambda mod, args, kw: prefill_rows.append(kw["input_ids"].shape) if kw["input_ids"].shape[1] > 1 else None,
        with_kwargs=True)
    try:
        torch.manual_seed(3)
        a = decode_batch(model, rows[:2], max_new_tokens=10, eos_ids=[tok.eos_token_id], pad_id=tok.pad_token_id,
                         temperature=1.0, n=4)
    finally:
        hook.remove()
    torch.manual_seed(3)
    b = decode_batch(model, rows[:2], max_new_tokens=10, eos_ids=[tok.eos_token_id], pad_id=tok.pad_token_id,
                     temperature=1.0, n=4)
    assert a == b and len(a) == 8
    assert len({tuple(r) for r in a[:4]}) > 1  # the 4 samples of a prompt differ
    assert [s[0] for s in prefill_rows] == [2]  # one prefill of the 2 distinct prompts, not 8 rows


def test_near_zero_temperature_and_top_p_reduce_to_greedy(tiny):
    model, tok, rows = tiny
    kw = dict(max_new_tokens=12, eos_ids=[tok.eos_token_id], pad_id=tok.pad_token_id)
    greedy = decode_batch(model, rows, **kw)
    torch.manual_seed(0)
    assert decode_batch(model, rows, temperature=1.0, top_p=1e-9, **kw) == greedy
    torch.manual_seed(0)
    assert decode_batch(model, rows, temperature=1e-4, **kw) == greedy


def test_sampled_distribution_matches_generate(tiny):
    """Same sampler as generate: first-token frequencies over many seeded draws agree closely."""
    model, tok, rows = tiny
    row = rows[2]
    draws = 400
    torch.manual_seed(0)
    ours = decode_batch(model, [row], max_new_tokens=1, eos_ids=[tok.eos_token_id], pad_id=tok.pad_token_id,
                        temperature=0.7, top_p=0.9, n=draws)
    torch.manual_seed(1)
    ids = torch.tensor([row])
    with torch.no_grad():
        ref = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=1, do_sample=True,
                             temperature=0.7, top_p=0.9, top_k=0, num_return_sequences=draws,
                             pad_token_id=tok.pad_token_id)[:, -1].tolist()
        probs = torch.softmax(model(input_ids=ids).logits[0, -1].float() / 0.7, dim=-1)
    top = probs.argsort(descending=True)[:3].tolist()
    for token in top:
        f_ours = sum(r[0] == token for r in ours) / draws
        f_ref = sum(t == token for t in ref) / draws
        assert abs(f_ours - f_ref) < 0.1, (token, f_ours, f_ref)
    allowed = set(probs.argsort(descending=True)[: int((probs.sort(descending=True).values.cumsum(0) < 0.9).sum()) + 1]
                  .tolist())
    assert {r[0] for r in ours} <= allowed  # top-p never samples outside the nucleus
