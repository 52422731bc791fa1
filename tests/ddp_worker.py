"""One GRPO update on fixed completions; launched by tests/train/test_grpo_ddp.py.

    python tests/ddp_worker.py --model DIR --out OUT                        # 1 process, whole batch
    accelerate launch --multi_gpu --num_processes 2 tests/ddp_worker.py ... # 2 gloo processes, half each

The global batch (prompts_per_step x group_size completions with fixed token ids and rewards) is
the same in both launches; each process takes its contiguous share of whole groups, as the
trainer does. After one optimiser update the main process saves the LoRA parameters (one file per
loss type) so the test can compare the two launches. Generation is taken out: the completions are
fixed, so only the loss normalisation and the gradient all-reduce are under test.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

PROMPTS, GROUP = 4, 4


def fixed_rollouts(tokenizer):
    from reasonkit.grpo.rollout import Rollouts

    g = torch.Generator().manual_seed(1234)
    prompts, items, pids, cids, fins = [], [], [], [], []
    for p in range(PROMPTS):
        text = f"Prompt number {p}: " + "word " * (3 + 2 * p)
        pid = tokenizer(text, add_special_tokens=False)["input_ids"]
        for _ in range(GROUP):
            n = int(torch.randint(3, 12, (1,), generator=g))
            prompts.append(text)
            items.append({"id": str(p)})
            pids.append(pid)
            cids.append(torch.randint(0, len(tokenizer), (n,), generator=g).tolist())
            fins.append("stop")
    r = Rollouts(prompts, items, pids, cids, ["x"] * len(cids), fins, GROUP)
    r.rewards = torch.rand(len(cids), generator=g).round()  # 0/1 rewards
    r.rewards[:GROUP] = 1.0  # one zero-variance group
    return r


def select(r, rows):
    """This process's whole groups of a batch (rows, rewards and per-verifier scores)."""
    from reasonkit.grpo.rollout import Rollouts

    rows = list(rows)
    pick = lambda xs: [xs[i] for i in rows]  # noqa: E731
    out = Rollouts(pick(r.prompts), pick(r.items), pick(r.prompt_ids), pick(r.completion_ids), pick(r.texts),
                   pick(r.finish_reasons), r.group_size)
    out.rewards = r.rewards[rows]
    out.per_verifier = {k: v[rows] for k, v in r.per_verifier.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--loss-types", default="dapo,grpo,dr_grpo")
    args = ap.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasonkit.grpo.config import TrainConfig
    from reasonkit.grpo.build import make_accelerator
    from reasonkit.grpo.trainer import GRPOTrainer

    accelerator = make_accelerator()
    out = Path(args.out)
    for spec in args.loss_types.split(","):
        # "dapo:gc" = gradient checkpointing on: the plain forward through the DDP wrapper (DDP's own
        # all-reduce) instead of the shared-prefix forward with the trainer's manual all-reduce
        loss_type, _, variant = spec.partition(":")
        cfg = TrainConfig(model=args.model, dtype="fp32", group_size=GROUP, prompts_per_step=PROMPTS, max_tokens=12,
                          lora_dropout=0.0, learning_rate=1e-2, loss_type=loss_type, beta=0.04, max_steps=1,
                          output=str(out / f"run-{spec.replace(':', '-')}"), seed=0,
                          gradient_checkpointing=variant == "gc")
        tok = AutoTokenizer.from_pretrained(args.model)
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
        trainer = GRPOTrainer(cfg, model=model, tokenizer=tok, items=[{"id": "0"}] * PROMPTS,
                              prompts=["p"] * PROMPTS, verifier="format", accelerator=accelerator,
                              show_progress=False)
        batch = fixed_rollouts(tok)
        n = len(batch) // accelerator.num_processes
        mine = select(batch, range(accelerator.process_index * n, (accelerator.process_index + 1) * n))
        metrics = trainer.optimize(mine)
        trainer.step = 1
        trainer.save()  # every process writes its RNG state into the same checkpoint
        if accelerator.is_main_process:
            lora = {k: v.detach().cpu().clone() for k, v in accelerator.unwrap_model(trainer.model).state_dict().items()
                    if "lora_" in k}
            torch.save({"lora": lora, "metrics": metrics, "world": accelerator.num_processes},
                       out / f"{spec.replace(':', '-')}.pt")
        accelerator.wait_for_everyone()


if __name__ == "__main__":
    main()
