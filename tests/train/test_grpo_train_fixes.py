"""Regression tests for the training-side defects of issue 23 (each fails on 64eb0a7).

Tiny Llama from a config with a fake, seeded generation (``tests/train_fakes.py``); no real sampling
except the periodic-eval test, which generates greedily on two items.
"""
from __future__ import annotations

import json

import pytest
import torch

from train_fakes import fake_rollouts, make_trainer


def _randomise_lora_b(trainer, seed: int = 0) -> None:
    """Non-zero LoRA B: the policy differs from the reference (adapter off), so KL > 0 at once."""
    g = torch.Generator().manual_seed(seed)
    model = trainer.accelerator.unwrap_model(trainer.model)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data = torch.randn(p.shape, generator=g) * 0.2


# ------------------------------------------------------------------------------ item 10: loss metrics

@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo", "bnpo"])
def test_issue23_item10_logged_loss_is_the_step_loss_whatever_the_accumulation(tiny_model_dir, tmp_path, loss_type):
    """loss = policy_loss + kl_loss, and (for the normalisers that do not depend on the micro-batch
    split) the same with 4 accumulation micro-batches as with one: dapo's used to be divided by 4."""
    got = {}
    for ga in (1, 4):
        trainer = make_trainer(tiny_model_dir, tmp_path / f"ga{ga}", max_steps=1, beta=0.04, loss_type=loss_type,
                               gradient_accumulation_steps=ga)
        _randomise_lora_b(trainer)
        got[ga] = trainer.optimize(fake_rollouts(trainer, 0))
    for m in got.values():
        assert m["kl_loss"] > 0 and m["kl"] > 0
        assert m["loss"] == pytest.approx(m["policy_loss"] + m["kl_loss"], rel=1e-6)
    if loss_type != "bnpo":  # bnpo is a token mean per micro-batch (as in TRL): its split matters
        for key in ("loss", "policy_loss", "kl_loss"):
            assert got[4][key] == pytest.approx(got[1][key], rel=1e-4, abs=1e-7), key


# ------------------------------------------------------------------------------ item 6 and (a): schedule

@pytest.mark.filterwarnings("ignore:Detected call of:UserWarning")
@pytest.mark.parametrize("scheduler, warmup, factors", [
    ("constant", 2, [0.0, 0.5, 1.0, 1.0]),   # was [1, 1, 1, 1]: warmup ignored
    ("constant", 0, [1.0, 1.0, 1.0, 1.0]),
    ("constant", 0.5, [0.0, 0.5, 1.0, 1.0]),  # a fraction of max_steps
    ("linear", 2, [0.0, 0.5, 1.0, 0.5]),
    ("constant_with_warmup", 2, [0.0, 0.5, 1.0, 1.0]),
])
def test_issue23_item6_warmup_applies_with_every_schedule(tiny_model_dir, tmp_path, scheduler, warmup, factors):
    trainer = make_trainer(tiny_model_dir, tmp_path, max_steps=4, warmup=warmup, lr_scheduler=scheduler)
    lr = trainer.cfg.learning_rate
    seen = []
    for _ in range(4):
        seen.append(trainer.scheduler.get_last_lr()[0] / lr)
        trainer.scheduler.step()
    assert seen == pytest.approx(factors)


def test_issue23_a_skipped_steps_advance_the_schedule(tiny_model_dir, tmp_path):
    trainer = make_trainer(tiny_model_dir, tmp_path, zero_variance="skip", max_steps=4, num_iterations=2,
                           warmup=2, lr_scheduler="linear")
    r = fake_rollouts(trainer, 0)
    r.rewards = torch.ones(len(r))  # every group zero-variance: no update
    metrics = trainer.optimize(r)
    assert metrics["skipped_update"] == 1.0
    assert trainer.scheduler.last_epoch == 2  # mu scheduler steps, as for an update
    assert trainer.scheduler.get_last_lr()[0] == pytest.approx(0.5 * trainer.cfg.learning_rate)


# ------------------------------------------------------------------------------ item 9: periodic eval

def test_issue23_item9_periodic_eval_runs_the_policy_even_if_the_directory_exists(tiny_model_dir, tmp_path):
    from reasonkit.grpo.evaluation import evaluate_policy

    trainer = make_trainer(tiny_model_dir, tmp_path, max_steps=1, eval_limit=2, dataset="countdown")
    model = trainer.accelerator.unwrap_model(trainer.model)
    evaluate_policy(trainer.cfg, model, trainer.tokenizer, 2, trainer.out)
    samples = trainer.out / "eval" / "step-2" / "samples.jsonl"
    fresh = samples.read_text().splitlines()
    # what an earlier run (another policy) left at the same step: its rows must not be reused
    stale = [json.dumps({**json.loads(line), "completion": "STALE"}) for line in fresh]
    samples.write_text("\n".join(stale) + "\n")
    evaluate_policy(trainer.cfg, model, trainer.tokenizer, 2, trainer.out)
    again = samples.read_text()
    assert "STALE" not in again
    assert again.splitlines() == fresh


# ------------------------------------------------------------------------------ (b), (e), (f): resume checks

@pytest.fixture(scope="module")
def one_step_checkpoint(tiny_model_dir, tmp_path_factory):
    """A LoRA run of one step (seed 0, lr 1e-2) and its checkpoint-1."""
    tmp = tmp_path_factory.mktemp("resume")
    make_trainer(tiny_model_dir, tmp, max_steps=1).train()
    return tmp, tmp / "run" / "checkpoint-1"


@pytest.mark.parametrize("change, refused", [
    ({"seed": 1}, "seed"),
    ({"learning_rate": 5e-3}, "learning_rate"),
    ({"loss_type": "grpo"}, "loss_type"),
    ({"beta": 0.04}, "beta"),
    ({"group_size": 2}, "group_size"),
    ({"max_steps": 3}, None),  # extending a run is allowed
    ({"save_steps": 1, "logging_steps": 2, "eval_limit": 4, "report_to": "none"}, None),
    ({"gradient_checkpointing": True}, None),
    ({"batch_size": 8, "prompts_per_step": None}, None),  # 2 prompts x 4, given the other way
    ({"prompts_per_step": 3}, "prompts_per_step"),
], ids=["seed", "lr", "loss_type", "beta", "group_size", "max_steps", "logging", "checkpointing", "batch_size",
        "prompts"])
def test_issue23_b_resume_refuses_a_config_that_changes_training(tiny_model_dir, one_step_checkpoint, change,
                                                                  refused):
    from reasonkit.errors import ReasonkitError

    tmp, ckpt = one_step_checkpoint
    kw = {"max_steps": 2, **change}
    trainer = make_trainer(tiny_model_dir, tmp, **kw)
    if refused is None:
        trainer.resume(ckpt)
        assert trainer.step == 1
        return
    with pytest.raises(ReasonkitError) as err:
        trainer.resume(ckpt)
    msg = err.value.message
    assert err.value.exit_code == 2 and len(msg.splitlines()) == 1
    assert f"{refused} was" in msg and str(ckpt) in msg


def test_issue23_f_resume_refuses_data_edited_in_place(tiny_model_dir, one_step_checkpoint):
    from reasonkit.errors import ReasonkitError

    from train_fakes import ITEMS

    tmp, ckpt = one_step_checkpoint
    edited = [dict(it, question=it["question"] + "?") if it["id"] == "3" else it for it in ITEMS]  # same count
    with pytest.raises(ReasonkitError, match="training data differ") as err:
        make_trainer(tiny_model_dir, tmp, max_steps=2, items=edited).resume(ckpt)
    assert err.value.exit_code == 2
    make_trainer(tiny_model_dir, tmp, max_steps=2, items=ITEMS).resume(ckpt)  # the same data: fine


def test_issue23_e_full_fine_tuning_resume_checks_missing_weights(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    from reasonkit.errors import ReasonkitError

    make_trainer(tiny_model_dir, tmp_path, max_steps=1, lora_r=0).train()
    ckpt = tmp_path / "run" / "checkpoint-1"
    resumed = make_trainer(tiny_model_dir, tmp_path, max_steps=2, lora_r=0)
    resumed.resume(ckpt)  # the tied output head is not in the file and is not missing
    assert resumed.step == 1
    weights = load_file(str(ckpt / "model.safetensors"))
    dropped = sorted(k for k in weights if k.endswith("self_attn.k_proj.weight"))[0]
    del weights[dropped]
    save_file(weights, str(ckpt / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ReasonkitError, match="lacks 1 weights") as err:
        make_trainer(tiny_model_dir, tmp_path, max_steps=2, lora_r=0).resume(ckpt)
    assert err.value.exit_code == 2 and dropped in err.value.message


# ------------------------------------------------------------------------------ (c): sampler log-probs per completion

@pytest.mark.parametrize("logprobs, backend, rows_with_values", [
    ([[-1.0, -2.0], None, [-0.5], [-0.1, -0.2]], "vllm", [True, False, True, True]),  # was: no correction at all
    ([None, None, None, None], "vllm", [False] * 4),      # a process with none still holds a tensor
    ([[-1.0, -2.0], [-3.0], [-0.5], [-0.1, -0.2]], "vllm", [True] * 4),
    ([None, None, None, None], "hf", None),               # no sampler: no tensor
], ids=["one_missing", "all_missing_on_this_process", "all_present", "hf_backend"])
def test_issue23_c_a_completion_without_logprobs_keeps_the_correction_for_the_others(logprobs, backend,
                                                                                     rows_with_values):
    from reasonkit.engine.types import Completion, GenerationOutput
    from reasonkit.grpo.batch import prepare_batch
    from reasonkit.grpo.config import TrainConfig
    from reasonkit.grpo.rollout import flatten_outputs

    ids = [[5, 6], [7], [8], [2, 3]]
    outputs = [GenerationOutput("p", [1, 2], [Completion("x", ids[i + j], "stop", logprobs[i + j]) for j in (0, 1)])
               for i in (0, 2)]
    r = flatten_outputs(outputs, ["p", "q"], [{}, {}], 2)
    r.rewards = torch.tensor([1.0, 0.0, 0.0, 1.0])
    cfg = TrainConfig(group_size=2, prompts_per_step=2, backend=backend, lora_r=8)
    b = prepare_batch(cfg, r, r.rewards, rank=0, pad_id=0, micro_batch=2)
    if rows_with_values is None:
        assert b.sampler_logprobs is None
        return
    assert b.sampler_logprobs is not None and b.sampler_logprobs.shape == (4, 2)
    assert [bool(torch.isfinite(row).any()) for row in b.sampler_logprobs] == rows_with_values
    if rows_with_values[0]:
        assert b.sampler_logprobs[0].tolist() == [-1.0, -2.0]


# ------------------------------------------------------------------------------ (d): top_p < 1 is said once

@pytest.mark.parametrize("top_p, backend, needles", [
    (1.0, "hf", None),
    (0.9, "hf", ["top_p = 0.9 < 1", "off-policy"]),
    (0.9, "vllm", ["top_p = 0.9 < 1", "sampler/logprob_gap", "importance weights"]),
])
def test_issue23_d_top_p_below_one_is_warned_once(tiny_model_dir, tmp_path, capsys, top_p, backend, needles):
    from types import SimpleNamespace

    from reasonkit.grpo.config_checks import top_p_warning

    msg = top_p_warning(SimpleNamespace(top_p=top_p, backend=backend))
    if needles is None:
        assert msg is None
    else:
        assert all(n in msg for n in needles) and len(msg.splitlines()) == 1
    if backend == "hf":  # through the trainer: printed once, at start
        make_trainer(tiny_model_dir, tmp_path, max_steps=2, top_p=top_p).train()
        err = capsys.readouterr().err
        assert err.count("top_p =") == (0 if needles is None else 1)
