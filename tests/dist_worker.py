"""Two GRPO optimiser steps on fixed completions under any engine; launched by tests/test_grpo_distributed.py.

    python tests/dist_worker.py --model DIR --out OUT                                   # 1 process
    accelerate launch --config_file train/accelerate/deepspeed-zero3.yaml --num_processes 2 \\
        tests/dist_worker.py --model DIR --out OUT                                      # ZeRO-3, 2 processes

Like tests/ddp_worker.py (whose fixed batch it reuses), but with gradient accumulation
(``--accumulation`` micro-batches per process and update), two optimiser steps and the weights read
back from the checkpoint the trainer writes (so a sharded engine must gather them). Per loss type
it writes ``<loss>.json`` on the main process: the engine, world size, the metrics of both steps.
The adapter is in ``run-<loss>/checkpoint-2``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from ddp_worker import GROUP, PROMPTS, fixed_rollouts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--loss-types", default="dapo,grpo")
    ap.add_argument("--accumulation", type=int, default=2)
    ap.add_argument("--lora-r", type=int, default=8)
    args = ap.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasonkit.grpo.config import TrainConfig
    from reasonkit.grpo.trainer import GRPOTrainer, make_accelerator

    accelerator = make_accelerator()
    out = Path(args.out)
    for loss_type in args.loss_types.split(","):
        cfg = TrainConfig(model=args.model, dtype="fp32", group_size=GROUP, prompts_per_step=PROMPTS, max_tokens=12,
                          lora_r=args.lora_r, lora_dropout=0.0, learning_rate=1e-2, loss_type=loss_type,
                          beta=0.04 if args.lora_r else 0.0, max_steps=2, seed=0, output=str(out / f"run-{loss_type}"),
                          gradient_accumulation_steps=args.accumulation)
        tok = AutoTokenizer.from_pretrained(args.model)
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
        trainer = GRPOTrainer(cfg, model=model, tokenizer=tok, items=[{"id": "0"}] * PROMPTS,
                              prompts=["p"] * PROMPTS, verifier="format", accelerator=accelerator,
                              show_progress=False)
        batch = fixed_rollouts(tok)
        n = len(batch) // accelerator.num_processes
        mine = batch.select(range(accelerator.process_index * n, (accelerator.process_index + 1) * n))
        steps = []
        for step in range(2):
            steps.append(trainer.optimize(mine))
            trainer.step = step + 1
        trainer.save()
        if accelerator.is_main_process:
            (out / f"{loss_type}.json").write_text(json.dumps(
                {"engine": trainer.engine, "world": accelerator.num_processes, "metrics": steps}))
        accelerator.wait_for_everyone()


if __name__ == "__main__":
    main()
