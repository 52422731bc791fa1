"""The merged weights that ``vllm_sync weights`` sends to the engine (no engine needed here).

``merged_weights`` must give, under the base model's own parameter names, exactly the tensors a
merged model has (peft's ``merge_and_unload`` on a copy), for every engine layer the adapter touches
(whole fused groups: q/k/v and gate/up, with biases; issue 23 item 2), and every parameter for full
fine-tuning. The engine side (loading them in place) is the slow test
``tests/train/test_grpo_vllm_sync.py``.
"""
from __future__ import annotations

import copy

import pytest
import torch

from reasonkit.errors import ReasonkitError
from reasonkit.engine.vllm_sync import incomplete_layers, merged_weights, write_weights


def _peft(tiny_model_dir, **kw):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], **kw))
    g = torch.Generator().manual_seed(0)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data = torch.randn(p.shape, generator=g) * 0.1
    return model


def test_merged_weights_equal_peft_merge_under_base_names(tiny_model_dir):
    model = _peft(tiny_model_dir)
    got = merged_weights(model)
    expected = copy.deepcopy(model).merge_and_unload().state_dict()
    assert got and all(any(f".{p}_proj." in k for p in "qkv") for k in got)
    assert set(got) <= set(expected)  # the base model's names: model.layers.N.self_attn.q_proj.weight
    assert len(got) == 3 * sum(1 for k in expected if k.endswith("q_proj.weight"))  # q, k (unadapted), v
    unmerged = model.get_base_model().state_dict()  # peft names: ...q_proj.base_layer.weight
    for k, v in got.items():
        torch.testing.assert_close(v, expected[k], rtol=0, atol=1e-6)
        if ".k_proj." in k:  # not adapted: sent as it is, so that the fused qkv_proj is whole
            assert torch.equal(v, unmerged[k])
        else:
            assert not torch.equal(v, unmerged[k.replace(".weight", ".base_layer.weight")])  # the adapter moved it
    # the trainer's model is untouched: still unmerged, base weights unchanged
    assert all(not m.merged for m in model.modules() if hasattr(m, "merged"))


def _tiny_peft(targets, bias: bool):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, attention_bias=bias, mlp_bias=bias)
    base = LlamaForCausalLM(config)
    return get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=list(targets), init_lora_weights=False))


# Issue 23 item 2: LoRA on part of a fused group used to send only the adapted projections, and
# vLLM's layer-wise reload rebuilt qkv_proj / gate_up_proj with the rest uninitialised.
@pytest.mark.parametrize("targets, bias, sent", [
    (["q_proj", "v_proj"], False, {"q_proj.weight", "k_proj.weight", "v_proj.weight"}),
    (["q_proj", "v_proj"], True, {"q_proj.weight", "k_proj.weight", "v_proj.weight",
                                  "q_proj.bias", "k_proj.bias", "v_proj.bias"}),
    (["k_proj"], False, {"q_proj.weight", "k_proj.weight", "v_proj.weight"}),
    (["gate_proj"], False, {"gate_proj.weight", "up_proj.weight"}),
    (["up_proj", "down_proj"], True, {"gate_proj.weight", "up_proj.weight", "gate_proj.bias", "up_proj.bias",
                                      "down_proj.weight", "down_proj.bias"}),
    (["o_proj"], False, {"o_proj.weight"}),
], ids=["qv", "qv_bias", "k_only", "gate_only", "up_down_bias", "o_only"])
def test_issue23_item2_whole_fused_groups_are_sent(targets, bias, sent):
    model = _tiny_peft(targets, bias)
    got = merged_weights(model)
    expected = copy.deepcopy(model).merge_and_unload().state_dict()
    for layer in range(2):
        mine = {k.split(".", 4)[4] for k in got if k.startswith(f"model.layers.{layer}.")}
        assert mine == sent
    assert len(got) == 2 * len(sent)
    for k, v in got.items():
        torch.testing.assert_close(v, expected[k], rtol=0, atol=1e-6)
    mapping = {"qkv_proj": ["q_proj", "k_proj", "v_proj"], "gate_up_proj": ["gate_proj", "up_proj"]}
    assert incomplete_layers(got, mapping, lambda layer: bias) == []


@pytest.mark.parametrize("names, bias, missing", [
    (["m.l.q_proj.weight", "m.l.v_proj.weight"], False, ["m.l.k_proj.weight"]),
    (["m.l.q_proj.weight", "m.l.k_proj.weight", "m.l.v_proj.weight"], True,
     ["m.l.k_proj.bias", "m.l.q_proj.bias", "m.l.v_proj.bias"]),
    (["m.l.gate_proj.weight"], False, ["m.l.up_proj.weight"]),
    (["m.l.o_proj.weight"], False, []),
    (["m.l.o_proj.weight"], True, ["m.l.o_proj.bias"]),
    (["m.norm.weight", "m.l.gate_proj.weight", "m.l.up_proj.weight"], False, []),
], ids=["qv_lacks_k", "qkv_lacks_bias", "gate_lacks_up", "o_whole", "o_lacks_bias", "whole"])
def test_issue23_item2_worker_check_names_what_a_file_lacks(names, bias, missing):
    mapping = {"qkv_proj": ["q_proj", "k_proj", "v_proj"], "gate_up_proj": ["gate_proj", "up_proj"]}
    assert incomplete_layers(names, mapping, lambda layer: bias and not layer.endswith("norm")) == missing


def test_full_fine_tuning_sends_every_parameter(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    n = write_weights(model, tmp_path / "w.safetensors")
    back = load_file(str(tmp_path / "w.safetensors"))
    assert n == len(back) == len(dict(model.named_parameters()))
    for k, p in model.named_parameters():
        assert torch.equal(back[k], p.detach())


def test_an_adapter_that_cannot_be_merged_names_the_other_mode(tiny_model_dir):
    model = _peft(tiny_model_dir)
    with model.disable_adapter(), pytest.raises(ReasonkitError, match="--vllm-sync adapter"):
        merged_weights(model)
