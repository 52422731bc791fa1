"""Which vLLM rollout engine a run uses: a separate server (``--backend vllm-server``,
:class:`~reasonkit.grpo.server_rollout.ServerRollouts`) or an engine in this process
(:class:`~reasonkit.grpo.rollout.VLLMRollouts`). Its own module so that the two engines' modules
do not import each other (the server one reuses :func:`~reasonkit.grpo.rollout.flatten_outputs`).
"""
from __future__ import annotations

from pathlib import Path

from reasonkit.grpo.rollout import VLLMRollouts
from reasonkit.grpo.server_rollout import ServerRollouts


def open_sampler(cfg, model_path: str, out: Path, tokenizer, accelerator, rank: int):
    """The rollout engine of ``cfg.backend``: a vLLM server (``vllm-server``) or an in-process engine."""
    if cfg.backend == "vllm-server":
        return ServerRollouts(cfg.base_url, out / ".sync" / "server", out, tokenizer,
                              is_main=accelerator.is_main_process, barrier=accelerator.wait_for_everyone,
                              options=dict(cfg.backend_options))
    dtype = str(cfg.resolved_dtype()).replace("torch.", "")
    return VLLMRollouts(model_path, out / ".sync" / f"rank{rank}", lora_r=cfg.lora_r, dtype=dtype, seed=cfg.seed,
                        engine_kwargs=dict(cfg.backend_options), sync=cfg.resolved_vllm_sync())
