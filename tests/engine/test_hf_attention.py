"""reasonkit's decode-step attention (reasonkit/engine/hf_attention.py) against transformers' sdpa."""
from __future__ import annotations

import types

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers.integrations.sdpa_attention import sdpa_attention_forward  # noqa: E402

from reasonkit.engine import hf_attention  # noqa: E402
from reasonkit.engine.types import SamplingConfig  # noqa: E402
from reasonkit.engine.hf import generate_with_model  # noqa: E402
from reasonkit.engine.packing import left_pad as _left_pad  # noqa: E402


def _module(heads: int, kv_heads: int, training: bool = False):
    return types.SimpleNamespace(num_key_value_groups=heads // kv_heads, is_causal=True, training=training,
                                 layer_idx=0)


def _inputs(batch=5, heads=6, kv_heads=2, length=17, dim=16, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, heads, 1, dim, generator=g).to(dtype) * 2
    k = torch.randn(batch, kv_heads, length, dim, generator=g).to(dtype) * 2
    v = torch.randn(batch, kv_heads, length, dim, generator=g).to(dtype)
    mask = torch.ones(batch, 1, 1, length, dtype=torch.bool)
    for row in range(batch):  # left padding of a different width per row
        mask[row, ..., :row * 2] = False
    return q, k, v, mask


@pytest.mark.parametrize("heads,kv_heads", [(6, 2), (4, 4), (8, 1)])
def test_matches_sdpa_with_bool_mask(heads, kv_heads):
    q, k, v, mask = _inputs(heads=heads, kv_heads=kv_heads)
    module = _module(heads, kv_heads)
    ours, _ = hf_attention._attention(module, q, k, v, mask, scaling=0.25)
    ref, _ = sdpa_attention_forward(module, q, k, v, mask, scaling=0.25)
    assert ours.shape == ref.shape == (q.shape[0], 1, heads, q.shape[-1])
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_matches_sdpa_with_additive_float_mask_and_no_mask():
    q, k, v, mask = _inputs()
    module = _module(6, 2)
    additive = torch.zeros(mask.shape).masked_fill(~mask, torch.finfo(torch.float32).min)
    ours, _ = hf_attention._attention(module, q, k, v, additive)
    ref, _ = sdpa_attention_forward(module, q, k, v, additive)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    ours, _ = hf_attention._attention(module, q, k, v, None)
    ref, _ = sdpa_attention_forward(module, q, k, v, None)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_bf16_error_no_worse_than_sdpa():
    """In bf16 both are compared with an fp32 reference: ours must not be less accurate."""
    q, k, v, mask = _inputs(batch=8, heads=9, kv_heads=3, length=150, dim=64, dtype=torch.bfloat16, seed=1)
    module = _module(9, 3)
    exact, _ = sdpa_attention_forward(module, q.float(), k.float(), v.float(), mask)
    ours, _ = hf_attention._attention(module, q, k, v, mask)
    ref, _ = sdpa_attention_forward(module, q, k, v, mask)
    assert ours.dtype == torch.bfloat16
    err_ours = (ours.float() - exact).abs().mean().item()
    err_sdpa = (ref.float() - exact).abs().mean().item()
    assert err_ours <= err_sdpa * 1.25, (err_ours, err_sdpa)


def test_prefill_and_training_go_to_sdpa(monkeypatch):
    calls = []

    def fake_sdpa(module, query, *args, **kwargs):
        calls.append(query.shape[2])
        return "sdpa", None

    import transformers.integrations.sdpa_attention as sdpa_mod
    monkeypatch.setattr(sdpa_mod, "sdpa_attention_forward", fake_sdpa)
    q, k, v, mask = _inputs()
    prefill_q = torch.randn(q.shape[0], q.shape[1], 3, q.shape[-1])
    assert hf_attention._attention(_module(6, 2), prefill_q, k, v, None)[0] == "sdpa"
    assert hf_attention._attention(_module(6, 2, training=True), q, k, v, mask)[0] == "sdpa"
    assert hf_attention._attention(_module(6, 2), q, k, v, mask, softcap=30.0)[0] == "sdpa"
    assert calls == [3, 1, 1]


def _tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(tiny_model_dir)


PROMPTS = ["<|im_start|>user\nWhat is 12 * 7?<|im_end|>\n<|im_start|>assistant\n", "Hi",
           "The capital of France is", "1, 2, 3, 4, 5, 6, 7, 8,"]


def spy_on_decode_attention(monkeypatch) -> dict[str, int]:
    """Count the attention calls that take reasonkit's one-token path and those that fall back to sdpa."""
    from transformers import AttentionInterface

    import transformers.integrations.sdpa_attention as sdpa_mod

    hf_attention.register()
    counts = {"fast": 0, "fallback": 0, "sdpa": 0}
    real_fallback, real_sdpa = sdpa_mod.sdpa_attention_forward, AttentionInterface._global_mapping["sdpa"]

    def fallback(*args, **kwargs):
        counts["fallback"] += 1
        return real_fallback(*args, **kwargs)

    def registered(module, query, *args, **kwargs):
        before = counts["fallback"]
        out = hf_attention._attention(module, query, *args, **kwargs)
        counts["fast"] += counts["fallback"] == before
        return out

    def plain_sdpa(*args, **kwargs):
        counts["sdpa"] += 1
        return real_sdpa(*args, **kwargs)

    monkeypatch.setattr(sdpa_mod, "sdpa_attention_forward", fallback)
    monkeypatch.setitem(AttentionInterface._global_mapping, hf_attention.NAME, registered)
    monkeypatch.setitem(AttentionInterface._global_mapping, "sdpa", plain_sdpa)
    return counts


def test_greedy_generation_identical_to_sdpa_in_fp32(tiny_model_dir, monkeypatch):
    model, tok = _tiny(tiny_model_dir)
    assert model.config._attn_implementation == "sdpa"
    greedy = SamplingConfig(max_tokens=24)
    counts = spy_on_decode_attention(monkeypatch)
    fast = generate_with_model(model, tok, PROMPTS, greedy, batch_size=4, fast_decode=True)
    layers = model.config.num_hidden_layers
    steps = max(len(o.completions[0].token_ids) for o in fast) - 1  # decode steps after the prefill
    # the fast path ran for every layer of every decode step; only the prefill fell back to sdpa
    assert counts["fast"] == layers * steps and counts["fallback"] == layers and counts["sdpa"] == 0, counts
    counts.update(fast=0, fallback=0)
    plain = generate_with_model(model, tok, PROMPTS, greedy, batch_size=4, fast_decode=False)
    assert counts["fast"] == 0 and counts["sdpa"] > 0, counts  # fast_decode=False: plain sdpa only
    assert [c.token_ids for o in fast for c in o.completions] == [c.token_ids for o in plain for c in o.completions]
    assert all(len(o.completions[0].token_ids) > 1 for o in fast)
    assert model.config._attn_implementation == "sdpa"  # switched back after generation


def test_decode_step_logits_match_sdpa(tiny_model_dir):
    model, tok = _tiny(tiny_model_dir)
    rows = [tok(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
    ids, mask = _left_pad(rows, tok.pad_token_id, "cpu")
    logits = {}
    for fast in (True, False):
        with torch.no_grad(), hf_attention.decode_attention(model, enabled=fast):
            out = model(input_ids=ids, attention_mask=mask, use_cache=True)
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            step_mask = torch.cat([mask, torch.ones_like(nxt)], dim=1)
            step = model(input_ids=nxt, attention_mask=step_mask, past_key_values=out.past_key_values,
                         position_ids=mask.sum(1, keepdim=True), use_cache=True)
        logits[fast] = step.logits[:, -1]
    torch.testing.assert_close(logits[True], logits[False], rtol=1e-4, atol=1e-4)


def test_context_restores_config_on_error_and_skips_other_implementations(tiny_model_dir):
    model, _ = _tiny(tiny_model_dir)
    with pytest.raises(RuntimeError):
        with hf_attention.decode_attention(model):
            assert model.config._attn_implementation == hf_attention.NAME
            raise RuntimeError("boom")
    assert model.config._attn_implementation == "sdpa"
    with hf_attention.decode_attention(model, enabled=False):
        assert model.config._attn_implementation == "sdpa"
    model.config._attn_implementation = "eager"
    with hf_attention.decode_attention(model):
        assert model.config._attn_implementation == "eager"  # only sdpa models are switched


def test_peft_model_is_switched_on_its_base(tiny_model_dir, tiny_lora_dirs):
    from peft import PeftModel

    model, tok = _tiny(tiny_model_dir)
    peft_model = PeftModel.from_pretrained(model, tiny_lora_dirs["a"], adapter_name="a")
    with hf_attention.decode_attention(peft_model):
        assert peft_model.get_base_model().config._attn_implementation == hf_attention.NAME
    assert peft_model.get_base_model().config._attn_implementation == "sdpa"
    greedy = SamplingConfig(max_tokens=16)
    fast = generate_with_model(peft_model, tok, PROMPTS, greedy, fast_decode=True)
    plain = generate_with_model(peft_model, tok, PROMPTS, greedy, fast_decode=False)
    assert [c.token_ids for o in fast for c in o.completions] == [c.token_ids for o in plain for c in o.completions]
