"""Fast tests of the GRPO loop on a tiny Llama built from a config (no real generation).

Generation is replaced by a deterministic fake that still goes through the trainer's data order
(``_next_batch``) and is seeded like the real sampler (``step_seed``), so the loop, masks, updates,
checkpoints, resume and failure handling are exercised exactly as in a run, in well under a minute.
"""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from reasonkit.cli import main
from reasonkit.grpo.rollout import Rollouts
from reasonkit.engine.packing import pack as to_tensors
from reasonkit.grpo.trainer import TrainingDiverged

from train_fakes import fake_rollouts, make_trainer  # the fake-generation trainer (shared helper module)


def lora_state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k}


def base_state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" not in k}


# ------------------------------------------------------------------------------------------------ packing

def test_to_tensors_aligns_prompts_left_and_completions_right():
    ids, att, cm = to_tensors([[1, 2, 3], [4]], [[5], [6, 7, 8]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3, 5, 0, 0], [0, 0, 4, 6, 7, 8]]
    assert att.tolist() == [[1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1]]
    assert cm.tolist() == [[1, 0, 0], [1, 1, 1]]
    ids, att, cm = to_tensors([[1]], [[]], pad_id=9)  # empty completion: one masked column
    assert ids.tolist() == [[1, 9]] and cm.tolist() == [[0]]


def test_shared_prefix_logprobs_equal_plain_forward(tiny_model_dir, tmp_path):
    from reasonkit.grpo.prefix import shared_prefix_logprobs
    from reasonkit.engine.packing import completion_logprobs, pack_groups

    trainer = make_trainer(tiny_model_dir, tmp_path, lora_dropout=0.0)
    r = fake_rollouts(trainer, 0)
    model = trainer.accelerator.unwrap_model(trainer.model)
    with torch.no_grad():  # give the adapter non-zero B so the LoRA path matters
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    ids, att, cm = to_tensors(r.prompt_ids, r.completion_ids, 0)
    plain = completion_logprobs(model, ids, att, cm.size(1), temperature=0.7)
    pids, pmask, cids, cmask = pack_groups(r.prompt_ids, r.completion_ids, 4, 0)
    assert torch.equal(cids * cmask, (ids[:, -cm.size(1):] * cm)) and torch.equal(cmask, cm)
    shared = shared_prefix_logprobs(model, pids, pmask, cids, cmask, 4, temperature=0.7)
    m = cm.bool()
    torch.testing.assert_close(shared[m], plain[m], rtol=1e-4, atol=1e-4)
    # gradients agree too
    g1 = torch.autograd.grad((plain * cm).sum(), [p for p in model.parameters() if p.requires_grad])
    shared = shared_prefix_logprobs(model, pids, pmask, cids, cmask, 4, temperature=0.7)
    g2 = torch.autograd.grad((shared * cm).sum(), [p for p in model.parameters() if p.requires_grad])
    for a, b in zip(g1, g2):  # fp32 sums in another order: the error is relative to the tensor's scale,
        # not to each element (an AVX2 host missed atol=1e-5 on one near-zero element of 256 by 2e-5)
        assert a.abs().max() > 0
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4 * a.abs().max().item())


def test_score_fills_composite_and_component_rewards_and_marks_unscored():
    from reasonkit.grpo.reward import score
    from reasonkit.verifiers.compose import compose

    good = " 3 + 5 = 8\n</think>\n<answer>3 + 5</answer>"
    texts = [good, " no tags at all", good, good]
    items = [{"numbers": [3, 5], "target": 8}] * 3 + [{"numbers": [3, 5]}]  # last row lacks its target
    r = Rollouts(["p"] * 4, items, [[1]] * 4, [[2]] * 4, texts, ["stop"] * 4, 2)
    score(r, compose("countdown+0.5*format"), prefix="<think>")
    assert r.rewards[:3].tolist() == [1.5, 0.0, 1.5]
    assert torch.isnan(r.rewards[3]) and r.unscored == 1 and "target" in r.unscored_reasons[0]
    assert r.per_verifier["countdown"][:3].tolist() == [1.0, 0.0, 1.0]
    assert r.per_verifier["format"][:3].tolist() == [1.0, 0.0, 1.0]


def test_truncated_completions_earn_nothing_unless_score_truncated():
    """The eval harness's truncation policy in training: an answer followed by text up to the token limit
    (what a run learned when it paid: ``24</answer><answer>24</answer>`` and on) is not credited."""
    from reasonkit.grpo.reward import score
    from reasonkit.verifiers.compose import compose

    good = " 3 + 5 = 8\n</think>\n<answer>3 + 5</answer>"
    items = [{"numbers": [3, 5], "target": 8}] * 3 + [{"numbers": [3, 5]}]
    r = Rollouts(["p"] * 4, items, [[1]] * 4, [[2]] * 4, [good] * 4,
                 ["stop", "length", "stop", "length"], 2)
    score(r, compose("countdown+0.5*format"), prefix="<think>")
    # the unscorable truncated row stays unscored, not wrong (reasonkit.verifiers.policy; as in eval)
    assert r.rewards[:3].tolist() == [1.5, 0.0, 1.5] and torch.isnan(r.rewards[3])
    assert r.per_verifier["countdown"][:3].tolist() == [1.0, 0.0, 1.0] and r.unscored == 1
    score(r, compose("countdown+0.5*format"), prefix="<think>", score_truncated=True)
    assert r.rewards[:3].tolist() == [1.5, 1.5, 1.5] and torch.isnan(r.rewards[3])


def test_rollout_stage_does_not_score_and_the_reward_stage_does(tiny_model_dir, tmp_path):
    """Issue 27 item 4: ``generate`` (the rollout stage, real decoding here) returns completions only;
    ``reward`` fills rewards and components in place with the config's truncation policy."""
    trainer = make_trainer(tiny_model_dir, tmp_path, fake=False)
    r = trainer.generate(0)
    assert len(r) == 8 and r.rewards is None and r.per_verifier == {} and r.unscored == 0
    assert trainer.reward(r) is r
    assert r.rewards.shape == (8,) and torch.isfinite(r.rewards).all() and set(r.per_verifier) == {"format"}
    assert all(r.rewards[i] == 0 for i, f in enumerate(r.finish_reasons) if f == "length")


# ------------------------------------------------------------------------------------------- gradients

def test_lora_gradients_reach_only_adapter_and_base_is_unchanged(tiny_model_dir, tmp_path):
    trainer = make_trainer(tiny_model_dir, tmp_path, max_steps=2)
    model = trainer.accelerator.unwrap_model(trainer.model)
    before_base, before_lora = base_state(model), lora_state(model)
    seen: list[set[str]] = []
    step = trainer.optimizer.step

    def spy(*a, **k):
        seen.append({n for n, p in model.named_parameters() if p.grad is not None})
        return step(*a, **k)

    trainer.optimizer.step = spy
    result = trainer.train()
    assert result.steps_done == 2 and len(seen) == 2
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    for names in seen:
        assert names and names <= trainable  # no frozen parameter ever got a gradient
        assert any("lora_B" in n for n in names)
    after_base, after_lora = base_state(model), lora_state(model)
    assert after_base.keys() == before_base.keys()
    for k in before_base:
        assert torch.equal(before_base[k], after_base[k]), k
    assert any(not torch.equal(before_lora[k], after_lora[k]) for k in before_lora)


def test_gradient_checkpointing_and_plain_forward_give_the_same_update(tiny_model_dir, tmp_path):
    # gradient checkpointing uses the plain [prompt | completion] forward; without it the trainer encodes
    # each prompt once per group (shared prefix). Both must produce the same optimiser update.
    results = []
    for gc in (False, True):
        trainer = make_trainer(tiny_model_dir, tmp_path / str(gc), gradient_checkpointing=gc, max_steps=1)
        assert trainer.shared_prefix is (not gc)
        metrics = trainer.optimize(fake_rollouts(trainer, 0))
        results.append((metrics, lora_state(trainer.accelerator.unwrap_model(trainer.model))))
    (m0, w0), (m1, w1) = results
    assert m0["loss"] == pytest.approx(m1["loss"], rel=1e-4, abs=1e-6)
    assert m0["grad_norm"] == pytest.approx(m1["grad_norm"], rel=1e-3)
    for k in w0:
        torch.testing.assert_close(w1[k], w0[k], rtol=1e-4, atol=1e-6)


def test_full_finetuning_updates_base_weights(tiny_model_dir, tmp_path):
    trainer = make_trainer(tiny_model_dir, tmp_path, lora_r=0, max_steps=1, learning_rate=1e-3)
    model = trainer.accelerator.unwrap_model(trainer.model)
    before = base_state(model)
    trainer.train()
    after = base_state(model)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any("q_proj" in k for k in changed)
    # full fine-tuning checkpoints are a transformers model directory
    ckpt = tmp_path / "run" / "checkpoint-1"
    assert (ckpt / "config.json").is_file() and (ckpt / "model.safetensors").is_file()


def test_zero_variance_groups_are_skipped(tiny_model_dir, tmp_path):
    trainer = make_trainer(tiny_model_dir, tmp_path, zero_variance="skip", max_steps=1)
    r = fake_rollouts(trainer, 0)
    r.rewards = torch.ones(len(r))  # every group has equal rewards: no signal anywhere
    model = trainer.accelerator.unwrap_model(trainer.model)
    before = lora_state(model)
    metrics = trainer.optimize(r)
    assert metrics["skipped_update"] == 1.0 and metrics["zero_variance"] == 1.0
    assert metrics["effective_batch"] == 0
    assert all(torch.equal(before[k], v) for k, v in lora_state(model).items())
    # one group with signal: only that group counts in the effective batch
    r.rewards[:4] = torch.tensor([0.0, 1.0, 0.0, 1.0])
    metrics = trainer.optimize(r)
    assert metrics["zero_variance"] == 0.5 and metrics["effective_batch"] == 4
    assert "skipped_update" not in metrics


def test_mu_iterations_and_kl_use_stored_old_and_reference_logprobs(tiny_model_dir, tmp_path):
    trainer = make_trainer(tiny_model_dir, tmp_path, num_iterations=2, beta=0.1, max_steps=1)
    r = fake_rollouts(trainer, 0)
    m = trainer.optimize(r)
    # the first of the two updates starts at the reference (LoRA B = 0): KL 0; the second has moved
    assert m["kl"] > 0 and m["ratio"] != 1.0
    assert trainer.scheduler.last_epoch == 2  # one scheduler step per optimiser update


# ------------------------------------------------------------------------------- checkpoints and resume

def test_checkpoint_layout_and_logs(tiny_model_dir, tmp_path):
    trainer = make_trainer(tiny_model_dir, tmp_path, max_steps=3, save_steps=2, save_total_limit=0)
    trainer.train()
    run = tmp_path / "run"
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    ck = run / "checkpoint-3"
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "optimizer.pt",
                 "scheduler.pt", "rng_state_0.pth", "trainer_state.json"):
        assert (ck / name).is_file(), name
    state = json.loads((ck / "trainer_state.json").read_text())
    assert (state["step"], state["epoch"], state["position"]) == (3, 0, 6)  # 3 steps x 2 of 6 prompts
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    for key in ("reward", "rewards/even", "loss", "clip_ratio", "completion_length", "truncated",
                "zero_variance", "effective_batch", "grad_norm", "step_seconds"):
        assert key in rows[0], key
    assert "kl" not in rows[0]  # beta = 0 runs no reference model
    comps = [json.loads(line) for line in (run / "completions.jsonl").read_text().splitlines()]
    assert {c["step"] for c in comps} == {1, 2, 3} and "reward" in comps[0]
    # the hack audit (reasonkit.audit) every logged step; completions carry what it needs
    from reasonkit.audit import CLASSES

    assert all(0.0 <= r[f"audit/{c}"] <= 1.0 for r in rows for c in CLASSES)
    assert comps[0]["group"] == 0 and comps[0]["num_tokens"] > 0
    from click.testing import CliRunner

    from reasonkit.cli import main

    audited = CliRunner().invoke(main, ["audit", str(run)])
    assert audited.exit_code == 0 and "steps 1-3" in audited.output, audited.output
    viewed = CliRunner().invoke(main, ["view", str(run), "-o", str(tmp_path / "report.html")])
    assert viewed.exit_code == 0 and '"audit/truncated"' in (tmp_path / "report.html").read_text(), viewed.output
    # the adapter loads with plain peft on the base model
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(ck))
    mine = lora_state(trainer.accelerator.unwrap_model(trainer.model))
    theirs = lora_state(loaded)
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_ctrl_c_saves_and_resume_matches_uninterrupted_run(tiny_model_dir, tmp_path):
    full = make_trainer(tiny_model_dir, tmp_path / "a", max_steps=4)
    seen_full = {}
    full.on_step_end = lambda step, m: seen_full.setdefault(step, m)
    full.train()

    def interrupt(step, m):
        if step == 2:
            raise KeyboardInterrupt

    first = make_trainer(tiny_model_dir, tmp_path / "b", max_steps=4, learning_rate=1e-2)
    first.on_step_end = interrupt
    result = first.train()
    assert result.interrupted and result.steps_done == 2
    ckpt = tmp_path / "b" / "run" / "checkpoint-2"
    assert ckpt.is_dir() and not (tmp_path / "b" / "run" / "checkpoint-3").exists()

    second = make_trainer(tiny_model_dir, tmp_path / "b", max_steps=4)
    seen = {}
    second.on_step_end = lambda step, m: seen.setdefault(step, m)
    second.train(resume_from=ckpt)
    assert sorted(seen) == [3, 4]
    for step in (3, 4):
        for key in ("loss", "reward", "completion_length", "grad_norm"):
            assert seen[step][key] == pytest.approx(seen_full[step][key], rel=1e-5, abs=1e-7), (step, key)
    a = lora_state(full.accelerator.unwrap_model(full.model))
    b = lora_state(second.accelerator.unwrap_model(second.model))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-7)


def test_periodic_evaluation_writes_eval_runs(tiny_model_dir, tmp_path):
    trainer = make_trainer(tiny_model_dir, tmp_path, max_steps=2, eval_steps=2, eval_limit=2, dataset="countdown")
    seen = {}
    trainer.on_step_end = lambda step, m: seen.setdefault(step, m)
    trainer.train()
    run = tmp_path / "run" / "eval" / "step-2"
    summary = json.loads((run / "summary.json").read_text())
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 2 and "base" in summary["adapters"]
    assert {"eval/countdown", "eval/format"} <= set(seen[2]) and "eval/countdown" not in seen[1]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert "eval/format" in rows[-1]


def test_periodic_evaluation_scores_the_training_reward_too():
    from types import SimpleNamespace

    from reasonkit.grpo.evaluation import eval_verifiers

    rg = "rg:chain_sum:min_terms=2,max_terms=2"
    # the benchmark's own verifiers first (what it calls accuracy), then the reward's others, once each
    assert eval_verifiers(SimpleNamespace(dataset=rg, reward_spec="gsm8k+0.2*format", seed=0)) == \
        ("rg:chain_sum", "format", "gsm8k")
    assert eval_verifiers(SimpleNamespace(dataset="countdown", reward_spec="countdown", seed=0)) == \
        ("countdown", "format")
    assert eval_verifiers(SimpleNamespace(dataset="custom", reward_spec="gsm8k+format", seed=0)) == \
        ("gsm8k", "format")


def test_sigint_finishes_the_step_then_saves(tiny_model_dir, tmp_path):
    import os
    import signal

    trainer = make_trainer(tiny_model_dir, tmp_path, max_steps=4)
    trainer.on_step_end = lambda step, m: os.kill(os.getpid(), signal.SIGINT) if step == 1 else None
    result = trainer.train()
    assert result.interrupted and result.steps_done == 1
    assert [p.name for p in (tmp_path / "run").glob("checkpoint-*")] == ["checkpoint-1"]
    assert signal.getsignal(signal.SIGINT) != trainer._on_sigint  # the previous handler is back


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_model_dir, tmp_path, monkeypatch):
    trainer = make_trainer(tiny_model_dir, tmp_path, max_steps=4, save_steps=1)
    import reasonkit.grpo.step as mod

    real = mod.grpo_loss

    def poisoned(*a, **k):
        loss, metrics = real(*a, **k)
        return (loss * float("nan") if trainer.step == 2 else loss), metrics

    monkeypatch.setattr(mod, "grpo_loss", poisoned)
    good = None
    with pytest.raises(TrainingDiverged, match=r"non-finite loss at step 3.*checkpoint-2"):
        trainer.on_step_end = lambda step, m: None
        trainer.train()
    run = tmp_path / "run"
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    good = lora_state(trainer.accelerator.unwrap_model(trainer.model))
    from safetensors.torch import load_file

    saved = load_file(str(run / "checkpoint-2" / "adapter_model.safetensors"))
    assert saved and all(torch.isfinite(v).all() for v in saved.values())
    assert all(torch.isfinite(v).all() for v in good.values())  # the bad update was never applied


# ------------------------------------------------------------------------------------------------- CLI

@pytest.mark.parametrize("args, needle", [
    (["--group-size", "1"], "group_size"),
    (["--loss-type", "grp"], "did you mean"),
    (["--batch-size", "6", "--group-size", "4"], "divisible"),
    (["--rewards", "countdwn+format"], "countdown"),
    (["--config", "/nonexistent/x.yaml"], "cannot read"),
    (["--backend", "vllm", "--lora-r", "0", "--vllm-sync", "adapter", "--max-steps", "1"], "lora_r > 0"),
    (["--backend", "vllm-server", "--base-url", "http://127.0.0.1:1/v1", "--vllm-sync", "weights"], "vllm-sync"),
    (["--vllm-sync", "weight"], "did you mean"),
    (["--columns", "oops"], "KEY=VALUE"),
])
def test_cli_bad_input_is_one_line_exit_2(args, needle, tmp_path):
    res = CliRunner().invoke(main, ["train", "--output", str(tmp_path / "o"), *args])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), res.output
    if needle:
        assert needle in lines[0]
    assert "Traceback" not in res.output


def test_cli_refuses_to_overwrite_a_run_without_resume(tmp_path):
    (tmp_path / "o" / "checkpoint-1").mkdir(parents=True)
    (tmp_path / "o" / "checkpoint-1" / "trainer_state.json").write_text("{}")
    res = CliRunner().invoke(main, ["train", "--output", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--resume" in res.output


def test_few_distinct_prompts_are_warned_about(tiny_model_dir, tmp_path, capsys):
    from reasonkit.grpo.data_order import few_prompts_warning

    assert few_prompts_warning(["a"] * 95, steps=150, per_step=4).startswith("the training data have only 1 distinct")
    assert few_prompts_warning([str(i) for i in range(60)], steps=150, per_step=4) is None  # enough distinct
    assert few_prompts_warning(["a", "b"], steps=1, per_step=1) is None  # each seen at most once
    r = CliRunner().invoke(main, ["train", "--model", tiny_model_dir, "--dataset", "rg:products:difficulty=0",
                                  "--max-steps", "2", "--group-size", "2", "--prompts-per-step", "1",
                                  "--max-tokens", "2", "--output", str(tmp_path / "o"), "-q"])
    assert r.exit_code == 0, r.output
    assert "only 1 distinct prompt" in r.output + capsys.readouterr().err
