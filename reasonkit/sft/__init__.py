"""Rejection-sampling fine-tuning (RFT, expert iteration): ``reasonkit sft``.

A warm start for models too weak for GRPO to find a reward: sample k completions per training item,
keep those the task's verifier marks correct, fine-tune on them, and repeat. This is expert iteration
(Anthony et al. 2017) / STaR's rationale filtering (Zelikman et al. 2022) / RFT (Yuan et al. 2023),
with reasonkit's verifiers as the filter:

    for i in 1..iterations:
        samples_i = k samples per item from the current policy        (reasonkit.evaluate, any backend)
        kept_i    = correct ∧ not truncated, deduplicated, ≤ m per item (shortest first by default)
        policy    = fine-tune(base or init_adapter, kept_1 ∪ … ∪ kept_i)  (TRL's SFTTrainer, completion-only loss)

As in STaR, each iteration fine-tunes from the starting weights on the union of everything kept so
far, rather than continuing from the last iteration's weights (less drift on a few hundred examples).
The result is a peft LoRA adapter (or a full model with ``lora_r: 0``) with its tokenizer, the same
layout ``reasonkit eval --lora`` and ``reasonkit train --init-adapter`` load.

Modules: :mod:`.config` (``SFTConfig``), :mod:`.select` (the filter, pure), :mod:`.finetune` (the
supervised step), :mod:`.loop` (iterations and the run directory), :mod:`.cli`.
"""
