"""Two GRPO optimiser steps on fixed completions under any engine; launched by tests/train/test_grpo_distributed.py.

    python tests/dist_worker.py --model DIR --out OUT                                   # 1 process
    accelerate launch --config_file train/accelerate/deepspeed-zero3.yaml --num_processes 2 \\
        tests/dist_worker.py --model DIR --out OUT                                      # ZeRO-3, 2 processes

Like tests/ddp_worker.py (whose fixed batch it reuses), but with gradient accumulation
(``--accumulation`` micro-batches per process and update), two optimiser steps and the weights read
back from the checkpoint the trainer writes (so a sharded engine must gather them). Per loss type
it writes ``<loss>.json`` on the main process: the engine, world size, the metrics of both steps.
The adapter is in ``run-<loss>/checkpoint-2``.

``--train`` runs the whole loop instead (generation from the live policy, a reward that depends on
the completion's length so groups have variance, a checkpoint per step) into ``--out``, resuming
from ``--resume CKPT`` when given.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from ddp_worker import GROUP, PROMPTS, fixed_rollouts, select


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--loss-types", default="dapo,grpo")
    ap.add_argument("--accumulation", type=int, default=2)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--resume")
    args = ap.parse_args()
    if args.train:
        return train(args)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasonkit.grpo.config import TrainConfig
    from reasonkit.grpo.trainer import GRPOTrainer, make_accelerator

    accelerator = make_accelerator()
    out = Path(args.out)
    for loss_type in args.loss_types.split(","):
        cfg = TrainConfig(model=args.model, dtype="fp32", group_size=GROUP, prompts_per_step=PROMPTS, max_tokens=12,
                          score_truncated=True,  # mechanics under test, not the truncation policy
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
        mine = select(batch, range(accelerator.process_index * n, (accelerator.process_index + 1) * n))
        steps = []
        for step in range(2):
            steps.append(trainer.optimize(mine))
            trainer.step = step + 1
        trainer.save()
        if accelerator.is_main_process:
            (out / f"{loss_type}.json").write_text(json.dumps(
                {"engine": trainer.engine, "world": accelerator.num_processes, "metrics": steps}))
        accelerator.wait_for_everyone()


def odd_length(completion: str, **_):
    """Reward 1 for a completion of odd length in characters, else 0 (varies for a random model)."""
    from reasonkit.verifiers.base import Verdict

    ok = len(completion) % 2 == 1
    return Verdict(score=float(ok), correct=ok, extracted=None, reason="correct" if ok else "not_equal")


def train(args) -> None:
    from reasonkit.grpo.config import TrainConfig
    from reasonkit.grpo.trainer import GRPOTrainer
    from reasonkit.verifiers.base import VerifierSpec

    cfg = TrainConfig(model=args.model, dtype="fp32", group_size=GROUP, prompts_per_step=PROMPTS, max_tokens=8,
                      score_truncated=True,  # short completions: mechanics under test, not the truncation policy
                      lora_r=args.lora_r, lora_dropout=0.0, learning_rate=1e-2, beta=0.04 if args.lora_r else 0.0,
                      max_steps=2, save_steps=1, seed=0, output=args.out,
                      gradient_accumulation_steps=args.accumulation)
    prompts = [f"Question {i}: say something" for i in range(8)]
    trainer = GRPOTrainer(cfg, items=[{"id": str(i)} for i in range(8)], prompts=prompts,
                          verifier=VerifierSpec("odd_length", odd_length, (), "odd length"), show_progress=False)
    trainer.train(resume_from=args.resume)
    # the trainer made the accelerator, so it destroyed the process group (not left to interpreter teardown)
    Path(args.out, f"group-after-train-{trainer.rank}.json").write_text(
        json.dumps({"initialized": torch.distributed.is_initialized()}))


if __name__ == "__main__":
    main()
