"""The merged weights that ``vllm_sync weights`` sends to the engine (no engine needed here).

``merged_weights`` must give, under the base model's own parameter names, exactly the tensors a
merged model has (peft's ``merge_and_unload`` on a copy), only for the adapted projections, and every
parameter for full fine-tuning. The engine side (loading them in place) is the slow test
``tests/test_grpo_vllm_sync.py``.
"""
from __future__ import annotations

import copy

import pytest
import torch

from reasonkit.errors import ReasonkitError
from reasonkit.grpo.vllm_sync import merged_weights, write_weights


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
    assert got and all(".q_proj." in k or ".v_proj." in k for k in got)
    assert set(got) <= set(expected)  # the base model's names: model.layers.N.self_attn.q_proj.weight
    assert len(got) == 2 * sum(1 for k in expected if k.endswith("q_proj.weight"))
    unmerged = model.get_base_model().state_dict()  # peft names: ...q_proj.base_layer.weight
    for k, v in got.items():
        torch.testing.assert_close(v, expected[k], rtol=0, atol=1e-6)
        assert not torch.equal(v, unmerged[k.replace(".weight", ".base_layer.weight")])  # the adapter moved it
    # the trainer's model is untouched: still unmerged, base weights unchanged
    assert all(not m.merged for m in model.modules() if hasattr(m, "merged"))


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
