"""Putting the trainer's current policy into an in-process vLLM engine after every optimiser step.

Two ways (``TrainConfig.vllm_sync``):

* ``weights`` (``auto`` on ``--backend vllm``; what TRL does for its colocated engine): the LoRA
  adapter is merged in the trainer's process, ``W' = W + scale * B @ A`` for every adapted weight
  (peft's ``get_delta_weight``; with full fine-tuning every parameter is sent as it is). The merged
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

PEFT_PREFIX = "base_model.model."


def merged_weights(model) -> dict:
    """``{hf parameter name: tensor}`` of the policy as the engine should serve it.

    A peft model: only the weights its (single, plain) LoRA adapter changes, merged. A plain
    model (full fine-tuning): every parameter. Tensors are detached copies, contiguous.
    """
    import torch

    from reasonkit.errors import ReasonkitError
    from reasonkit.eval.backends.hf_merge import lora_layers, plain_adapter

    layers = lora_layers(model)
    with torch.no_grad():
        if not layers:
            return {_hf_name(n): p.detach().contiguous().clone() for n, p in model.named_parameters()}
        out = {}
        for name, layer in layers:
            adapter = plain_adapter(layer)
            if adapter is None:
                raise ReasonkitError(f"vllm_sync weights: cannot merge the adapter of {name} (disabled, merged, "
                                     "several adapters or a LoRA variant such as DoRA); use --vllm-sync adapter")
            base = layer.get_base_layer()
            delta = layer.get_delta_weight(adapter).to(base.weight.dtype)
            out[_hf_name(name) + ".weight"] = (base.weight + delta).contiguous()
        return out


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
        from safetensors.torch import load_file

        weights = load_file(path)
        self.reload_weights(weights_iterator=list(weights.items()), is_checkpoint_format=True)
        model = self.model_runner.get_model()
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
