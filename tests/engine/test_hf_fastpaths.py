"""The hf backend's decode fast paths: preallocated KV cache, inverse-CDF sampling, merged LoRA,
few-row linear layout (reasonkit/engine/hf_decode.py, hf_merge.py, hf_linear.py)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers.cache_utils import DynamicLayer  # noqa: E402

from reasonkit.engine import hf_linear  # noqa: E402
from reasonkit.engine.types import SamplingConfig  # noqa: E402
from reasonkit.engine.hf import generate_with_model  # noqa: E402
from reasonkit.engine.hf_decode import PreallocatedLayer, preallocated_cache, sample_rows  # noqa: E402
from reasonkit.engine.hf_merge import merged_lora  # noqa: E402

PROMPTS = ["<|im_start|>user\nWhat is 12 * 7?<|im_end|>\n<|im_start|>assistant\n", "Hi", "The capital of France is"]


def _kv(batch, length, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 2, length, 4, generator=g), torch.randn(batch, 2, length, 4, generator=g)


@pytest.mark.parametrize("capacity", [3, 64])  # 3: every append past the prefill grows the buffer
def test_preallocated_layer_matches_dynamic_layer(capacity):
    ours, ref = PreallocatedLayer(capacity), DynamicLayer()
    steps = [("update", _kv(2, 5, 0)), ("repeat", 3), ("update", _kv(6, 1, 1)), ("select", [0, 2, 5]),
             ("update", _kv(3, 1, 2)), ("update", _kv(3, 2, 3)), ("crop", -1), ("update", _kv(3, 1, 4))]
    for op, arg in steps:
        for layer in (ours, ref):
            if op == "update":
                got = layer.update(*arg) if layer is ours else layer.update(*arg) and got
            elif op == "repeat":
                layer.batch_repeat_interleave(arg)
            elif op == "select":
                layer.batch_select_indices(torch.tensor(arg))
            else:
                layer.crop(arg)
        if op == "update":
            assert torch.equal(got[0], ref.keys) and torch.equal(got[1], ref.values)
        assert ours.get_seq_length() == ref.get_seq_length()
        assert torch.equal(ours.keys, ref.keys) and torch.equal(ours.values, ref.values)
    assert ours.get_seq_length() == 9


def test_preallocated_cache_replaces_only_plain_layers(tiny_model_dir):
    from transformers import AutoConfig
    from transformers.cache_utils import DynamicSlidingWindowLayer

    config = AutoConfig.from_pretrained(tiny_model_dir)
    model = type("M", (), {"config": config})()
    cache = preallocated_cache(model, 40)
    assert cache.layers and all(type(layer) is PreallocatedLayer for layer in cache.layers)
    config.layer_types = ["sliding_attention"] + ["full_attention"] * (len(cache.layers) - 1)
    config.sliding_window = 8
    mixed = preallocated_cache(model, 40)
    assert type(mixed.layers[0]) is DynamicSlidingWindowLayer  # sliding windows stay transformers' own
    assert all(type(layer) is PreallocatedLayer for layer in mixed.layers[1:])


def test_sample_rows_follows_the_distribution_and_never_draws_zero_mass():
    probs = torch.tensor([[0.5, 0.0, 0.3, 0.2, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]])
    torch.manual_seed(0)
    draws = torch.stack([sample_rows(probs.repeat(500, 1)) for _ in range(20)]).reshape(-1, 2)
    first, second = draws[:, 0], draws[:, 1]
    assert set(second.tolist()) == {4}
    assert not ((first == 1) | (first == 4)).any()  # tokens of probability 0
    freq = torch.bincount(first, minlength=5).float() / first.numel()
    assert torch.allclose(freq, probs[0], atol=0.01), freq  # 10,000 draws: sd of a frequency <= 0.005
    torch.manual_seed(1)
    a = sample_rows(probs)
    torch.manual_seed(1)
    assert torch.equal(a, sample_rows(probs))  # seeded like the rest of the loop


def test_sample_rows_rounding_past_the_last_sum_takes_the_likeliest(monkeypatch):
    probs = torch.tensor([[0.25, 0.75]])
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.full((1, 1), 1.5))  # a point past the total
    assert sample_rows(probs).tolist() == [1]


def _peft(tiny_model_dir, **lora):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    cfg = dict(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=["q_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(model, LoraConfig(**{**cfg, **lora}))
    for name, p in model.named_parameters():  # B is zero at init: make the adapter change the output
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.05)
    return model.eval()


def test_merged_lora_same_output_and_exact_restore(tiny_model_dir):
    from peft.tuners.lora import LoraLayer

    model = _peft(tiny_model_dir)
    ids = torch.tensor([[5, 9, 2, 7, 11, 3]])
    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    before = {id(m): (m.get_base_layer().weight.data, m.get_base_layer().weight.data.clone()) for m in layers}
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        with model.disable_adapter():
            base = model(input_ids=ids).logits
        with merged_lora(model):
            assert all(m.merged for m in layers)
            merged = model(input_ids=ids).logits
    assert not torch.allclose(plain, base, atol=1e-3)  # the adapter matters
    assert torch.allclose(merged, plain, atol=1e-5)
    for m in layers:  # the very tensor is back, bit for bit, and the layer is unmerged
        tensor, copy = before[id(m)]
        assert m.get_base_layer().weight.data_ptr() == tensor.data_ptr() and torch.equal(tensor, copy) and not m.merged


def test_merged_lora_restores_on_error_and_skips_what_it_cannot_merge(tiny_model_dir):
    from peft.tuners.lora import LoraLayer

    model = _peft(tiny_model_dir)
    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    with pytest.raises(RuntimeError):
        with merged_lora(model):
            raise RuntimeError("boom")
    assert not any(m.merged for m in layers)
    with model.disable_adapter(), merged_lora(model):
        assert not any(m.merged for m in layers)  # the base is being run: nothing to merge
    with merged_lora(model, enabled=False):
        assert not any(m.merged for m in layers)
    dora = _peft(tiny_model_dir, use_dora=True)
    with merged_lora(dora):
        assert not any(m.merged for m in dora.modules() if isinstance(m, LoraLayer))
    plain = torch.nn.Sequential(torch.nn.Linear(3, 3))
    with merged_lora(plain):  # no LoRA at all
        pass


def test_merged_lora_never_writes_the_kept_weight_and_merges_lora_bias():
    """The merge builds new tensors; the ones kept for the restore are never written. (peft 0.22's
    ``merge(safe_merge=True)`` copies into the old weight in place: with it, the "restored" weight was
    the merged one and the base decoded with the adapter after the block.) A ``lora_bias`` adapter is
    merged with its bias; one whose base layer has no bias is left unmerged."""
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora import LoraLayer

    torch.manual_seed(0)
    net = get_peft_model(torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8, bias=False)),
                         LoraConfig(r=2, lora_alpha=4, target_modules=["0"], lora_bias=True, init_lora_weights=False))
    layer = net.base_model.model[0]
    base = layer.get_base_layer()
    kept_w, kept_b = base.weight.data, base.bias.data
    copies = kept_w.clone(), kept_b.clone()
    x = torch.randn(3, 8)
    with torch.no_grad():
        want = net(x)
        with merged_lora(net):
            assert layer.merged and base.weight.data_ptr() != kept_w.data_ptr()
            assert base.bias.data_ptr() != kept_b.data_ptr()
            got = net(x)
    assert torch.allclose(got, want, atol=1e-6)
    assert torch.equal(kept_w, copies[0]) and torch.equal(kept_b, copies[1])  # never written
    assert base.weight.data_ptr() == kept_w.data_ptr() and base.bias.data_ptr() == kept_b.data_ptr()
    assert not layer.merged
    no_bias = get_peft_model(torch.nn.Sequential(torch.nn.Linear(8, 8, bias=False)),
                             LoraConfig(r=2, lora_alpha=4, target_modules=["0"], lora_bias=True, init_lora_weights=False))
    with merged_lora(no_bias):
        assert not any(m.merged for m in no_bias.modules() if isinstance(m, LoraLayer))


CAN_PACK = hf_linear.can_pack(torch.float32)
needs_packing = pytest.mark.skipif(not CAN_PACK, reason="this PyTorch build or CPU has no oneDNN packed fp32 matmul")
LAYOUTS = [pytest.param(layout, marks=needs_packing) if layout == "packed" else layout for layout in hf_linear.LAYOUTS]


def _counting(monkeypatch, layout):
    """Count the calls of ``layout``'s kernel (F.linear counts as no call: it is the fallback)."""
    calls = []
    name = {"transposed": "_transposed", "packed": "_packed"}.get(layout)
    if name:
        real = getattr(hf_linear, name)
        monkeypatch.setattr(hf_linear, name, lambda x, w, b: calls.append(tuple(w.shape)) or real(x, w, b))
    return calls


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("rows", [1, 5, 32, 33])
def test_streaming_linears_equal_f_linear(monkeypatch, layout, rows):
    monkeypatch.setattr(hf_linear, "_calibrate", lambda weights, dtype, bucket, pack: layout)
    monkeypatch.setattr(hf_linear, "_CHOICE", {})
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 40), torch.nn.Linear(40, 8, bias=False))
    x = torch.randn(rows, 1, 16)
    with torch.no_grad():
        ref = model(x)
        calls = _counting(monkeypatch, layout)
        with hf_linear.streaming_linears(model):
            got = model(x)
    assert got.shape == ref.shape and got.is_contiguous()
    assert torch.allclose(got, ref, atol=1e-5)
    assert len(calls) == (2 if layout != "linear" and rows <= hf_linear.MAX_ROWS else 0)
    assert all("forward" not in m.__dict__ for m in model)  # restored


def test_calibration_is_measured_once_per_bucket(monkeypatch):
    seen = []
    monkeypatch.setattr(hf_linear, "_calibrate", lambda weights, dtype, bucket, pack: seen.append(bucket) or "transposed")
    monkeypatch.setattr(hf_linear, "_CHOICE", {})
    model = torch.nn.Linear(8, 8)
    with torch.no_grad(), hf_linear.streaming_linears(model):
        for rows in (8, 7, 5, 3, 8, 1):
            model(torch.randn(rows, 8))
    assert seen == [8, 4, 1]  # one weight shape: one calibration per row bucket
    assert hf_linear._bucket(5) == 8 and hf_linear._bucket(1) == 1 and hf_linear._bucket(32) == 32


@pytest.mark.parametrize("layout", LAYOUTS)
def test_fast_decode_of_a_peft_model_equals_generate(tiny_model_dir, monkeypatch, layout):
    """All fast paths on (merged LoRA, few-row layout, preallocated cache): greedy tokens equal generate's."""
    from transformers import AutoTokenizer

    monkeypatch.setattr(hf_linear, "_calibrate", lambda weights, dtype, bucket, pack: layout)
    monkeypatch.setattr(hf_linear, "_CHOICE", {})
    model = _peft(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    greedy = SamplingConfig(max_tokens=16)
    fast = generate_with_model(model, tok, PROMPTS, greedy, fast_decode=True)
    plain = generate_with_model(model, tok, PROMPTS, greedy, fast_decode=False)
    assert [c.token_ids for o in fast for c in o.completions] == [c.token_ids for o in plain for c in o.completions]
    sampled = generate_with_model(model, tok, PROMPTS, SamplingConfig(max_tokens=8, temperature=1.0, n=3, seed=4))
    assert all(len(o.completions) == 3 for o in sampled)


def test_calibration_leaves_the_global_rng_alone(monkeypatch):
    monkeypatch.setattr(hf_linear, "_CHOICE", {})
    model = torch.nn.Linear(8, 8)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    with torch.no_grad(), hf_linear.streaming_linears(model):
        model(torch.ones(2, 8))  # first use at 2 rows: calibrates
    assert len(hf_linear._CHOICE) == 1
    assert torch.equal(torch.rand(3), expected)


def test_each_weight_shape_gets_its_own_choice(monkeypatch):
    monkeypatch.setattr(hf_linear, "_calibrate",
                        lambda weights, dtype, bucket, pack: "transposed" if weights[0].shape[0] == 40 else "linear")
    monkeypatch.setattr(hf_linear, "_CHOICE", {})
    calls = _counting(monkeypatch, "transposed")
    model = torch.nn.Sequential(torch.nn.Linear(16, 40), torch.nn.Linear(40, 8), torch.nn.Linear(8, 40))
    with torch.no_grad(), hf_linear.streaming_linears(model):
        model(torch.randn(4, 16))
    assert calls == [(40, 16), (40, 8)]  # the 8x40 layer kept F.linear
    assert {k[2] for k in hf_linear._CHOICE} == {(40, 16), (8, 40), (40, 8)}


@pytest.mark.parametrize("fast", LAYOUTS)
def test_calibration_picks_the_faster_layout(monkeypatch, fast):
    """The layouts other than ``fast`` are slowed down; the calibration must pick ``fast``."""
    import time as _time

    import torch.nn.functional as F

    weights = [torch.randn(64, 32) for _ in range(2)]  # topped up with copies to stream from memory

    def slowed(fn):
        def run(*a, **k):
            _time.sleep(2e-5)
            return fn(*a, **k)
        return run

    for layout, (owner, name) in {"linear": (F, "linear"), "transposed": (hf_linear, "_transposed"),
                                  "packed": (hf_linear, "matmul_packed")}.items():
        if layout != fast:
            monkeypatch.setattr(owner, name, slowed(getattr(owner, name)))
    monkeypatch.setattr(hf_linear, "MIN_STREAM_ELEMENTS", 64 * 32 * 20)  # 20 matrices per pass
    assert hf_linear._calibrate(weights, torch.float32, 4, pack=CAN_PACK) == fast


@needs_packing
def test_packed_weights_are_reordered_once_per_weight_and_again_after_a_change(monkeypatch):
    reorders = []
    real = hf_linear.reorder
    monkeypatch.setattr(hf_linear, "reorder", lambda w: reorders.append(tuple(w.shape)) or real(w))
    monkeypatch.setattr(hf_linear, "_calibrate", lambda weights, dtype, bucket, pack: "packed")
    monkeypatch.setattr(hf_linear, "_CHOICE", {})
    model = torch.nn.Linear(16, 40)
    x = torch.randn(3, 16)
    with torch.no_grad():
        with hf_linear.streaming_linears(model):
            first = model(x)
            model(x)
        with hf_linear.streaming_linears(model):  # a later generation: the copy is still there
            model(x)
        assert len(reorders) == 1
        model.weight.add_(1.0)  # an optimiser step in place: the copy is stale
        with hf_linear.streaming_linears(model):
            changed = model(x)
        assert len(reorders) == 2 and torch.allclose(changed, torch.nn.functional.linear(x, model.weight, model.bias),
                                                     atol=1e-5)
        assert not torch.allclose(changed, first)
        model.weight = torch.nn.Parameter(torch.zeros(40, 16))  # a new tensor, as hf_merge's merged weights
        with hf_linear.streaming_linears(model):
            assert torch.allclose(model(x), model.bias.expand(3, 40))
    assert len(reorders) == 3
    import gc

    gc.collect()
    assert len(hf_linear._PACKED) <= 1  # the replaced weight's copy went with it


@needs_packing
def test_packed_layout_is_not_used_where_a_gradient_is_needed(monkeypatch):
    monkeypatch.setattr(hf_linear, "_calibrate", lambda weights, dtype, bucket, pack: "packed")
    monkeypatch.setattr(hf_linear, "_CHOICE", {})
    calls = _counting(monkeypatch, "packed")
    model = torch.nn.Linear(16, 4)
    with hf_linear.streaming_linears(model):
        model(torch.randn(2, 16)).sum().backward()  # the weight needs a gradient
    assert calls == [] and model.weight.grad is not None
    with torch.no_grad(), hf_linear.streaming_linears(model):
        model(torch.randn(2, 16))
    assert calls == [(4, 16)]


def test_packing_is_offered_only_while_the_copies_fit_in_memory(monkeypatch):
    offered = []
    monkeypatch.setattr(hf_linear, "_calibrate", lambda weights, dtype, bucket, pack: offered.append(pack) or "linear")
    monkeypatch.setattr(hf_linear, "_CHOICE", {})
    model = torch.nn.Linear(16, 4)  # 256 bytes of weights
    for memory in (8 * 256, 8 * 256 - 1):  # the copies may take an eighth of the memory
        monkeypatch.setattr(hf_linear, "memory_bytes", lambda: memory)
        with torch.no_grad(), hf_linear.streaming_linears(model):
            model(torch.randn(2, 16))
    assert offered == [CAN_PACK, False]


# --- issue 23, item 1: a packed copy must never stand for other weights than the module's own -------

def _force_packed(monkeypatch):
    monkeypatch.setattr(hf_linear, "_calibrate", lambda weights, dtype, bucket, pack: "packed")
    monkeypatch.setattr(hf_linear, "_CHOICE", {})


@needs_packing
def test_issue23_item1_packed_copy_follows_values_written_without_a_version_bump(monkeypatch):
    """``weight.data.copy_(new)`` keeps the address and the version counter: the old stamp matched."""
    _force_packed(monkeypatch)
    torch.manual_seed(0)
    model = torch.nn.Linear(16, 40)
    x = torch.randn(3, 16)
    with torch.no_grad():
        with hf_linear.streaming_linears(model):
            model(x)  # the packed copy of the first values is made here
        ptr, version = model.weight.data_ptr(), model.weight._version
        model.weight.data.copy_(torch.randn(40, 16))
        assert (model.weight.data_ptr(), model.weight._version) == (ptr, version)  # the stamp cannot tell
        with hf_linear.streaming_linears(model):
            got = model(x)
    assert torch.allclose(got, torch.nn.functional.linear(x, model.weight, model.bias), atol=1e-5)


@needs_packing
def test_issue23_item1_swapped_data_at_a_reused_address_is_packed_again(monkeypatch):
    """hf_merge's pattern without hf_merge: ``weight.data = merged`` per generation, the base put back and
    the merged tensor freed, so the allocator may hand the next merge the same address."""
    _force_packed(monkeypatch)
    torch.manual_seed(0)
    layer = torch.nn.Linear(48, 48)
    base = layer.weight.data
    x = torch.randn(2, 48)
    with torch.no_grad():
        for step in range(8):
            merged = base + 0.5 * torch.randn(48, 48)
            layer.weight.data = merged
            with hf_linear.streaming_linears(layer):
                got = layer(x)
            assert torch.allclose(got, torch.nn.functional.linear(x, merged, layer.bias), atol=1e-5), step
            layer.weight.data = base
            del merged


@needs_packing
def test_issue23_item1_merged_lora_of_two_adapters_decodes_with_the_active_one(tiny_model_dir, monkeypatch):
    """Two adapters merged in turn (peft's merge): each packed decode step equals the unmerged peft layer."""
    from peft import LoraConfig

    _force_packed(monkeypatch)
    model = _peft(tiny_model_dir)
    model.add_adapter("second", LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj"],
                                           init_lora_weights=False))
    ids = torch.tensor([[5, 9, 2, 7, 11, 3]])
    with torch.no_grad():
        for name in ["default", "second", "default", "second", "default"]:
            model.set_adapter(name)
            want = model(input_ids=ids[:, -1:]).logits  # one row: the decode-step size that gets packed
            with merged_lora(model), hf_linear.streaming_linears(model):
                got = model(input_ids=ids[:, -1:]).logits
            assert torch.allclose(got, want, atol=1e-4), name


@needs_packing
def test_issue23_item1_hf_backend_two_adapters_packed_equal_plain_generate(tiny_model_dir, tiny_lora_dirs,
                                                                        monkeypatch):
    """End to end: ``--lora a --lora b`` on the hf backend with the packed layout forced, every switch
    (a, b, a, b) decodes like plain ``model.generate`` with that adapter."""
    from reasonkit.engine.types import Adapter
    from reasonkit.engine.hf import HFBackend

    _force_packed(monkeypatch)
    adapters = [Adapter("a", tiny_lora_dirs["a"]), Adapter("b", tiny_lora_dirs["b"])]
    greedy = SamplingConfig(max_tokens=12)
    fast = HFBackend(tiny_model_dir, adapters, dtype="float32", batch_size=8)
    plain = HFBackend(tiny_model_dir, adapters, dtype="float32", batch_size=8, fast_decode=False)
    want = {name: [c.token_ids for o in plain.generate(PROMPTS, greedy, adapter=name) for c in o.completions]
            for name in ("a", "b")}
    assert want["a"] != want["b"]  # the adapters differ, so a stale copy shows
    for name in ("a", "b", "a", "b"):
        got = [c.token_ids for o in fast.generate(PROMPTS, greedy, adapter=name) for c in o.completions]
        assert got == want[name], name


@pytest.mark.parametrize("fast_decode", [True, False])
def test_issue23_itemb_per_prompt_seeds_do_not_depend_on_the_batch(tiny_model_dir, fast_decode):
    """With ``sampling.seeds`` a prompt's samples are the same alone, first or last in a batch."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)

    def tokens(prompts, seeds):
        sampling = SamplingConfig(max_tokens=8, temperature=1.0, n=2, seeds=tuple(seeds))
        outs = generate_with_model(model, tok, prompts, sampling, fast_decode=fast_decode)
        return {p: [c.token_ids for c in o.completions] for p, o in zip(prompts, outs)}

    together = tokens(PROMPTS, [11, 22, 33])
    alone = tokens([PROMPTS[2]], [33])
    reordered = tokens(PROMPTS[::-1], [33, 22, 11])
    assert together[PROMPTS[2]] == alone[PROMPTS[2]] == reordered[PROMPTS[2]]
    assert together == reordered
    assert together[PROMPTS[2]][0] != together[PROMPTS[2]][1]  # the two samples differ (seed + j)
    assert tokens([PROMPTS[2]], [34])[PROMPTS[2]] != alone[PROMPTS[2]]  # the seed matters
