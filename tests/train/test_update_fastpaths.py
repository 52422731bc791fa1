"""The GRPO update's CPU fast paths equal what they replace: LoRA dropout drawn from 16-bit words
(reasonkit.engine.lora_dropout), the selective log-softmax's hand-written backward (reasonkit.engine.packing)
and grouped-query attention without repeated key/value heads (reasonkit.engine.train_attention)."""
from __future__ import annotations

import pytest
import torch

from reasonkit.engine.lora_dropout import WordDropout, _drop_mask, use_word_dropout
from reasonkit.engine.packing import selective_log_softmax


# ------------------------------------------------------------------------------------------ dropout

@pytest.mark.parametrize("p", [0.05, 0.1, 0.5])
def test_word_dropout_drops_at_rate_p_and_keeps_the_expectation(p):
    torch.manual_seed(0)
    n = 1 << 21
    drop = _drop_mask(torch.Size([n]), round(p * 65536))
    rate = drop.float().mean().item()
    assert abs(rate - p) < 4 * (p * (1 - p) / n) ** 0.5  # within 4 standard errors
    # neighbouring elements come from the same 64-bit draw: they must still be independent
    pairs = drop.view(-1, 4)
    both = (pairs[:, 0] & pairs[:, 1]).float().mean().item()
    assert abs(both - rate * rate) < 4 * (p * p / (n / 4)) ** 0.5 + 1e-3

    layer = WordDropout(p).train()
    x = torch.full((512, 1024), 2.0, requires_grad=True)
    y = layer(x)
    kept = y != 0
    assert torch.allclose(y[kept], torch.full_like(y[kept], 2.0 * layer.scale))
    assert abs(y.mean().item() - 2.0) < 0.02  # unbiased: E[y] = x
    y.sum().backward()
    assert torch.equal(x.grad != 0, kept)  # the gradient passes where the value was kept, scaled alike
    assert torch.allclose(x.grad[kept], torch.full_like(x.grad[kept], layer.scale))


def test_word_dropout_is_identity_in_eval_and_reproducible_under_a_seed():
    layer = WordDropout(0.3)
    x = torch.randn(4, 7, 16)
    assert layer.eval()(x) is x
    layer.train()
    torch.manual_seed(3)
    a = layer(x)
    torch.manual_seed(3)
    b = layer(x)
    assert torch.equal(a, b) and not torch.equal(a, x)
    with pytest.raises(ValueError, match="in \\[0, 1\\)"):
        WordDropout(1.0)


def test_lora_branches_get_word_dropout(tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=["q_proj", "v_proj"]))
    n_lora = sum(1 for m in model.modules() if isinstance(getattr(m, "lora_dropout", None), torch.nn.ModuleDict))
    assert use_word_dropout(model) == n_lora > 0
    assert not any(type(m) is torch.nn.Dropout for m in model.modules())
    assert sum(isinstance(m, WordDropout) and m.p == 0.1 for m in model.modules()) == n_lora


# ------------------------------------------------------------------------------- log-softmax backward

@pytest.mark.parametrize("dtype,temperature,chunk_rows,tol", [
    (torch.float32, 1.0, 8, 1e-6), (torch.float32, 0.7, 2, 1e-6), (torch.bfloat16, 1.0, 3, 1e-2)])
def test_selective_log_softmax_values_and_gradients_equal_autograd(dtype, temperature, chunk_rows, tol):
    torch.manual_seed(0)
    logits = (3 * torch.randn(5, 6, 50)).to(dtype).requires_grad_()
    index = torch.randint(0, 50, (5, 6))
    weights = torch.randn(5, 6)
    got = selective_log_softmax(logits, index, chunk_rows=chunk_rows, temperature=temperature)
    (got * weights).sum().backward()
    grad, logits.grad = logits.grad.clone(), None
    want = torch.log_softmax(logits.float() / temperature, dim=-1).gather(-1, index.unsqueeze(-1)).squeeze(-1)
    (want * weights).sum().backward()
    assert got.dtype == torch.float32 and grad.dtype == dtype
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(grad.float(), logits.grad.float(), atol=tol)


def test_selective_log_softmax_refuses_a_zero_temperature():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        selective_log_softmax(torch.zeros(1, 2, 3), torch.zeros(1, 2, dtype=torch.long), temperature=0.0)


# ------------------------------------------------------------------------------------ GQA attention

def test_gqa_attention_gives_the_sdpa_logprobs_and_gradients(tiny_model_dir, monkeypatch):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from reasonkit.engine import train_attention as attention
    from reasonkit.grpo.prefix import shared_prefix_logprobs

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa"),
                           LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "k_proj",
                                                                                             "v_proj", "o_proj"],
                                      init_lora_weights=False))
    assert model.get_base_model().config.num_key_value_heads < model.get_base_model().config.num_attention_heads
    prompts = torch.randint(5, 100, (2, 7))
    pmask = torch.ones_like(prompts)
    pmask[1, :3] = 0  # left padding: the masked path transformers would run with repeated heads
    comps = torch.randint(5, 100, (4, 5))
    cmask = torch.ones_like(comps)
    cmask[3, 2:] = 0

    def run():
        model.zero_grad()
        logp = shared_prefix_logprobs(model, prompts, pmask, comps, cmask, 2)
        (logp * cmask).sum().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return logp.detach(), grads

    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(query, key, value, **kw):
        calls.append((bool(kw.get("enable_gqa")), key.shape[1]))
        return sdpa(query, key, value, **kw)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    want, want_grads = run()
    heads = model.get_base_model().config.num_attention_heads
    assert calls and set(calls) == {(False, heads)}  # transformers' sdpa: repeated key/value heads
    calls.clear()
    with attention.gqa_attention(model):
        got, got_grads = run()
    assert model.get_base_model().config._attn_implementation == "sdpa"  # switched back
    kv_heads = model.get_base_model().config.num_key_value_heads
    layers = model.get_base_model().config.num_hidden_layers
    assert calls == [(True, kv_heads)] * (2 * layers)  # prompt and completion forward of every layer, no copies
    assert torch.allclose(got, want, atol=1e-5)
    assert want_grads.keys() == got_grads.keys() and want_grads
    for name in want_grads:
        assert torch.allclose(got_grads[name], want_grads[name], atol=1e-5), name
