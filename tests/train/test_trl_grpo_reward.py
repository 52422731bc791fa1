"""TRL proof: GRPOTrainer runs a training step with a reasonkit reward on a tiny model built here.

The model is a 2-layer LlamaForCausalLM with the tiny byte-level tokenizer of the fast tests
(tests/tiny_tokenizer.py: SmolLM2's special tokens and chat template, no GGUF file), saved to
tmp_path; the data set has prompt + numbers + target columns. The test checks that TRL called our
reward with the dataset columns as keyword lists, that the step ran (a loss was logged) and that
TRL logged the reward under our function's name, including the per-component metrics of the
composite.
"""
from __future__ import annotations

import pytest

pytest.importorskip("trl")
torch = pytest.importorskip("torch")

from reasonkit.verifiers import trl_reward  # noqa: E402
from tiny_tokenizer import build_tiny_tokenizer  # noqa: E402


def test_grpo_trainer_runs_a_step_with_reasonkit_reward(tmp_path):
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    torch.manual_seed(0)
    model_dir = tmp_path / "tiny-llama"
    tokenizer = build_tiny_tokenizer(model_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(model_dir)

    dataset = Dataset.from_list([
        {"prompt": "Using 6, 4 make 24. Answer in <answer></answer>.", "numbers": [6, 4], "target": 24},
        {"prompt": "Using 3, 5, 2 make 13. Answer in <answer></answer>.", "numbers": [3, 5, 2], "target": 13},
    ])

    reward = trl_reward("countdown+format")
    calls: list[dict] = []

    class Spy:  # records what TRL passes, then delegates to the reasonkit reward
        __name__ = reward.__name__

        def __call__(self, completions, **kwargs):
            calls.append({"completions": list(completions), **{k: kwargs[k] for k in ("numbers", "target")},
                          "kwargs": sorted(kwargs)})
            return reward(completions, **kwargs)

    args = GRPOConfig(output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=2,
                      num_generations=2, max_completion_length=8, use_cpu=True, report_to="none",
                      logging_steps=1, save_strategy="no", bf16=False, seed=0)
    trainer = GRPOTrainer(model=str(model_dir), reward_funcs=[Spy()], args=args, train_dataset=dataset,
                          processing_class=tokenizer)
    trainer.train()

    assert calls, "TRL never called the reasonkit reward"
    first = calls[0]
    assert len(first["completions"]) == 2 and all(isinstance(c, str) for c in first["completions"])
    assert len(first["numbers"]) == len(first["target"]) == 2  # columns arrive as keyword lists
    assert first["target"][0] in (24, 13) and isinstance(first["numbers"][0], list)
    assert {"trainer_state", "log_metric", "log_extra"} <= set(first["kwargs"])
    # random tiny model: no right answers, but every sample was scored (no None)
    assert reward.last_verdicts and all(v is not None and v.scored for v in reward.last_verdicts)

    logs = trainer.state.log_history
    assert trainer.state.global_step == 1
    assert any("loss" in entry for entry in logs)
    name = "countdown_format_reward"
    assert reward.__name__ == name
    entry = next(e for e in logs if f"rewards/{name}/mean" in e)
    assert entry[f"rewards/{name}/mean"] == pytest.approx(0.0)
    # per-component means logged through TRL's log_metric hook
    assert any(f"{name}/countdown" in e for e in logs) and any(f"{name}/format" in e for e in logs)


def test_trl_sees_our_name_and_a_sync_callable():
    from trl.trainer.utils import get_callable_name, is_async_callable

    reward = trl_reward("countdown+format")
    assert get_callable_name(reward) == "countdown_format_reward"
    assert get_callable_name(trl_reward("countdown")) == "countdown_reward"
    assert not is_async_callable(reward)
