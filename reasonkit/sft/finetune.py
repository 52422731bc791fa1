"""The supervised step of a warm start: fine-tune on (prompt, completion) pairs with TRL's SFTTrainer.

The prompt is the exact text the completion was sampled from (chat template and pre-fill applied by
the eval harness), so the model is trained on what it will be asked; the loss covers the completion
tokens only (TRL's ``completion_only_loss`` for prompt-completion data) and TRL appends the end-of-
sequence token, so the model also learns to stop. LoRA via peft (``lora_r > 0``), starting from
``init_adapter`` when one is given; ``lora_r = 0`` fine-tunes every weight. The learning rate is
constant (a few hundred examples, a few epochs: no schedule to tune).

Written into ``out_dir``: the adapter (peft layout) or the full model, and the tokenizer — what
``reasonkit eval --lora`` (or ``--model`` for a full model) and ``reasonkit train --init-adapter`` load.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any


def _dtype(name: str):
    import torch

    if name == "bf16" or (name == "auto" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float32


def finetune(cfg, records: list[dict[str, Any]], model_path: str, out_dir: Path, show: bool = True) -> dict[str, Any]:
    """Train on ``records`` and save into ``out_dir``; returns ``{"train_loss", "steps", "examples"}``."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer

    dtype = _dtype(cfg.dtype)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    peft_config = None
    if cfg.lora_r > 0 and cfg.init_adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, cfg.init_adapter, is_trainable=True)
    elif cfg.lora_r > 0:
        from peft import LoraConfig

        targets = cfg.lora_target_modules if isinstance(cfg.lora_target_modules, str) else list(cfg.lora_target_modules)
        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                 target_modules=targets, task_type="CAUSAL_LM", bias="none")
    data = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in records])
    with tempfile.TemporaryDirectory(prefix="reasonkit-sft-") as scratch:
        args = TRLSFTConfig(
            output_dir=scratch, num_train_epochs=cfg.epochs, per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate, lr_scheduler_type="constant", logging_steps=1, save_strategy="no",
            report_to=[], seed=cfg.seed, data_seed=cfg.seed, max_length=cfg.max_length,
            completion_only_loss=True, bf16=dtype == torch.bfloat16, use_cpu=not torch.cuda.is_available(),
            disable_tqdm=not show, dataloader_num_workers=0)
        trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                             peft_config=peft_config)
        result = trainer.train()
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    trainer.model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out_dir)  # complete or absent: a rerun never finds half an adapter
    return {"train_loss": float(result.training_loss), "steps": int(result.global_step), "examples": len(records)}
