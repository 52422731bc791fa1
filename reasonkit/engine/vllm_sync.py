"""Putting the trainer's current policy into an in-process vLLM engine after every optimiser step.

Two ways (``TrainConfig.vllm_sync``):

* ``weights`` (``auto`` on ``--backend vllm``; what TRL does for its colocated engine): the LoRA
  adapter is merged in the trainer's process, ``W' = W + scale * B @ A`` for every adapted weight
  (peft's ``get_delta_weight``; with full fine-tuning every parameter is sent as it is). What is
  sent is always whole engine layers: vLLM fuses ``q/k/v_proj`` into ``qkv_proj`` and
  ``gate/up_proj`` into ``gate_up_proj`` (:data:`FUSED_GROUPS`, the ``packed_modules_mapping`` of
  vLLM's Llama / Qwen / Mistral classes), and its layer-wise reload rebuilds a layer that receives
  any tensor from empty storage, so a member or bias not sent is uninitialised memory. With LoRA on
  ``[q_proj, v_proj]`` the unadapted ``k_proj`` therefore goes too (its base weight), and every
  sent projection carries its bias if it has one (issue 23 item 2). The worker refuses, before
  loading, a file that would leave part of a fused layer empty (:func:`incomplete_layers`: an
  architecture whose fusion differs from :data:`FUSED_GROUPS`). The merged
  tensors are written to one safetensors file under the run's ``.sync`` directory and the engine's
  workers load them in place (:class:`WeightLoader`, through ``LLM.collective_rpc``) with vLLM's
  layer-wise ``reload_weights``: the layers that receive tensors are rebuilt and re-processed (on
  CPU that repacks the oneDNN weights), the others keep theirs. A tied output head receives no
  tensor of its own, so after a new embedding it is tied again and re-prepared by hand (without
  that, full fine-tuning served a stale head: tested). Then the engine's prefix cache is cleared,
  since its KV entries were computed with the old weights. The engine runs without LoRA,
  so its decode is the base model's: no LoRA kernels in every step.
* ``adapter``: the adapter is saved in peft layout and registered under a new LoRA id (vLLM's LoRA
  kernels apply it in every decode step). The only way for a vLLM *server*
  (:mod:`reasonkit.grpo.server_rollout`), whose workers this process cannot reach.

A file and not the tensors themselves travel to the worker because ``collective_rpc`` sends its
arguments with msgpack, which turns tensors into lists. What each way costs per rollout is measured
by ``benchmarks/bench_grpo.py`` (``--vllm-sync``).
"""
from __future__ import annotations

from pathlib import Path

from reasonkit.errors import ReasonkitError
from reasonkit.engine.hf_merge import lora_layers, plain_adapter

PEFT_PREFIX = "base_model.model."


FUSED_GROUPS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))
"""Projections the engine serves as one layer (vLLM's ``packed_modules_mapping``: qkv_proj, gate_up_proj)."""
_GROUP_OF = {leaf: group for group in FUSED_GROUPS for leaf in group}


def merged_weights(model) -> dict:
    """``{hf parameter name: tensor}`` of the policy as the engine should serve it.

    A peft model: every parameter (weight, bias) of each engine layer its (single, plain) LoRA
    adapter touches: the adapted projections merged, the other members of their fused group
    (:data:`FUSED_GROUPS`) as they are. A plain model (full fine-tuning): every parameter. Tensors
    are detached copies, contiguous.
    """
    import torch

    layers = lora_layers(model)
    with torch.no_grad():
        if not layers:
            return {_hf_name(n): p.detach().contiguous().clone() for n, p in model.named_parameters()}
        merged = {}
        for name, layer in layers:
            adapter = plain_adapter(layer)
            if adapter is None:
                raise ReasonkitError(f"vllm_sync weights: cannot merge the adapter of {name} (disabled, merged, "
                                     "several adapters or a LoRA variant such as DoRA); use --vllm-sync adapter")
            base = layer.get_base_layer()
            delta = layer.get_delta_weight(adapter).to(base.weight.dtype)
            merged[name] = (base.weight + delta).contiguous()
        modules = dict(model.named_modules())
        out = {}
        for name in merged:  # whole engine layers: every member of the fused group, with its bias
            parent, _, leaf = name.rpartition(".")
            for member in (f"{parent}.{m}" for m in _GROUP_OF.get(leaf, (leaf,))):
                module = modules.get(member)
                if module is None:  # an architecture without that member (e.g. no separate k_proj)
                    continue
                base = module.get_base_layer() if hasattr(module, "get_base_layer") else module
                for pname, p in base.named_parameters(recurse=False):
                    value = merged[member] if pname == "weight" and member in merged else p.detach()
                    out[f"{_hf_name(member)}.{pname}"] = value.contiguous().clone()
        return out


def incomplete_layers(names, packed_modules_mapping: dict, has_bias=lambda layer: False) -> list[str]:
    """Tensors a file of ``names`` (hf parameter names) lacks for the engine layers it touches.

    ``packed_modules_mapping`` is the served model's (``{"qkv_proj": ["q_proj", "k_proj",
    "v_proj"], ...}``); ``has_bias(engine layer name)`` says whether that layer has a bias. A layer
    that receives any tensor must receive all of them: vLLM rebuilds it from empty storage.
    """
    fused_of = {m: (fused, tuple(members)) for fused, members in packed_modules_mapping.items() for m in members}
    names = set(names)
    missing = []
    for name in sorted(names):
        module, _, pname = name.rpartition(".")
        if pname not in ("weight", "bias"):
            continue
        parent, _, leaf = module.rpartition(".")
        fused, members = fused_of.get(leaf, (leaf, (leaf,)))
        layer = f"{parent}.{fused}" if parent else fused
        wanted = ("weight", "bias") if has_bias(layer) else ("weight",)
        missing += [f"{parent}.{m}.{w}" if parent else f"{m}.{w}" for m in members for w in wanted]
    return sorted(set(missing) - names)


def _hf_name(name: str) -> str:
    """peft's ``base_model.model.model.layers.0.self_attn.q_proj[.base_layer]`` -> ``model.layers.0...``."""
    name = name[len(PEFT_PREFIX):] if name.startswith(PEFT_PREFIX) else name
    return name.replace(".base_layer", "")


def write_weights(model, path: str | Path) -> int:
    """Write :func:`merged_weights` to ``path`` (safetensors); returns the number of tensors."""
    from safetensors.torch import save_file

    weights = merged_weights(model)
    save_file(weights, str(path))
    return len(weights)


class WeightLoader:
    """vLLM worker extension (``worker_extension_cls``): its methods run in the engine's workers."""

    def reasonkit_load_weights(self, path: str) -> int:
        """Load the tensors of a safetensors file into the served model in place; returns their number."""
        import torch
        from safetensors.torch import load_file

        weights = load_file(path)
        model = self.model_runner.get_model()
        modules = dict(model.named_modules())
        missing = incomplete_layers(weights, getattr(model, "packed_modules_mapping", {}) or {},
                                    lambda layer: isinstance(getattr(modules.get(layer), "bias", None), torch.Tensor))
        if missing:  # loading would leave the rest of those layers uninitialised: refuse
            raise RuntimeError(f"vllm_sync weights: {path} lacks {len(missing)} tensors of the layers it "
                               f"updates (first: {missing[0]}); use --vllm-sync adapter for this model")
        self.reload_weights(weights_iterator=list(weights.items()), is_checkpoint_format=True)
        head, embed = getattr(model, "lm_head", None), getattr(getattr(model, "model", None), "embed_tokens", None)
        if (getattr(getattr(model, "config", None), "tie_word_embeddings", False) and head is not None
                and embed is not None and any(k.endswith("embed_tokens.weight") for k in weights)):
            # A tied output head shares the embedding's parameter but receives no tensor of its own, so
            # the reload leaves it as it was: tie it to the new embedding again and redo its kernel
            # preparation (on CPU a oneDNN handle made from the weight at load time).
            head.weight = embed.weight
            method = getattr(head, "quant_method", None)
            if method is not None:
                method.process_weights_after_loading(head)
        return len(weights)


WORKER_EXTENSION = f"{__name__}.{WeightLoader.__name__}"
