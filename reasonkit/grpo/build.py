"""Setting up a GRPO run: seeds, the accelerator, the policy model (LoRA, gradient checkpointing) and
the benchmark it trains on. Called by :class:`reasonkit.grpo.trainer.GRPOTrainer` before its loop.
"""
from __future__ import annotations

import random

import numpy as np
import torch

from .distributed import make_accelerator  # noqa: F401  (the accelerator: see reasonkit.grpo.distributed)
from reasonkit.engine.models import check_adapter
from reasonkit.engine.lora_dropout import use_word_dropout
from reasonkit.tasks.registry import configure_benchmark
from reasonkit.verifiers.compose import parse_expression


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """The sampling seed of one step on one process: a pure function of (seed, step, rank)."""
    return (seed * 1_000_003 + step * 10_007 + rank) % 2**31


# --------------------------------------------------------------------------------------------- model setup

def load_policy(cfg, model_path: str):
    """Tokenizer and policy model in the config's dtype (LoRA is applied by :func:`wrap_policy`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=cfg.resolved_dtype())
    return tokenizer, model


def wrap_policy(cfg, model):
    """Apply LoRA (or leave the model fully trainable) and gradient checkpointing."""
    if cfg.lora_r > 0 and cfg.init_adapter:
        from peft import PeftModel

        check_adapter(cfg.init_adapter, cfg.model)
        model = PeftModel.from_pretrained(model, cfg.init_adapter, is_trainable=True)

        use_word_dropout(model)
    elif cfg.lora_r > 0:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=(cfg.lora_target_modules if isinstance(cfg.lora_target_modules, str)
                                          else list(cfg.lora_target_modules)), task_type="CAUSAL_LM", bias="none")
        model = get_peft_model(model, lora)

        use_word_dropout(model)  # the same dropout with a cheaper CPU mask (reasonkit.engine.lora_dropout)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if cfg.lora_r > 0:
            model.enable_input_require_grads()
        model.config.use_cache = False
    return model


def build_benchmark(cfg):
    """The eval harness's benchmark with the config's template / system / pre-fill / columns applied
    (the same rules as ``reasonkit eval``'s flags)."""
    verifiers = list(parse_expression(cfg.reward_spec)) if cfg.dataset == "custom" else None
    return configure_benchmark(cfg.dataset, verifiers=verifiers, columns=cfg.columns or None, seed=cfg.seed,
                               template=cfg.template, system=cfg.system, prefill=cfg.prefill, raw=cfg.raw,
                               constant_prompt=cfg.constant_prompt)


# ------------------------------------------------------------------------------------------ lr schedule

def make_scheduler(cfg, optimizer):
    """The learning-rate schedule over ``max_steps * num_iterations`` optimiser updates.

    ``warmup`` applies under every schedule: linear warmup from 0 over ``warmup_steps * mu`` updates,
    then the named schedule. transformers' ``constant`` ignores ``num_warmup_steps``, so ``constant``
    with a warmup is run as ``constant_with_warmup`` (what TRL's ``lr_scheduler_type="constant"``
    plus ``warmup_steps`` gives through the HF Trainer, which does the same).
    """
    from transformers import get_scheduler

    warmup = cfg.warmup_steps * cfg.num_iterations
    name = "constant_with_warmup" if cfg.lr_scheduler == "constant" and warmup else cfg.lr_scheduler
    return get_scheduler(name, optimizer, num_warmup_steps=warmup,
                         num_training_steps=cfg.max_steps * cfg.num_iterations)


def advance_schedule(scheduler, updates: int) -> None:
    """Step the schedule as ``updates`` optimiser updates would, without one (a skipped step).

    Under DeepSpeed the prepared scheduler is accelerate's wrapper, whose ``step`` does nothing
    (the engine steps the schedule inside its own ``step``): the wrapped schedule is stepped.
    """
    import warnings

    with warnings.catch_warnings():  # torch warns of a scheduler step before any optimiser step
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(updates):
            getattr(scheduler, "scheduler", scheduler).step()
