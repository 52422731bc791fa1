"""The held-out signal (reasonkit.grpo.heldout): the eval_verifiers field and its default rule, the
``heldout/<verifier>`` metric, the alarm's examples, and both in a training loop on a tiny Llama built
from a config (rollouts faked, the periodic evals real)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

from reasonkit.grpo.config import ConfigError, TrainConfig
from reasonkit.grpo.heldout import (default_heldout_verifiers, heldout_items, heldout_metrics, heldout_verifiers,
                                    paid_score, reward_examples)


@pytest.mark.parametrize("dataset,rewards,expected", [
    ("gsm8k", None, ("gsm8k",)),
    ("gsm8k", "format_soft", ("gsm8k",)),                         # never from the reward expression
    ("math500", "math+0.5*format", ("math",)),
    ("countdown", "format", ("countdown",)),
    ("rg:chain_sum:min_terms=2,max_terms=2", "gsm8k", ("rg:chain_sum",)),
    ("custom", "0.5*format+gsm8k", ("gsm8k",)),                   # custom: the first non-format term
    ("custom", "format_soft", ("format_soft",)),
])
def test_default_heldout_verifier_is_the_tasks_headline(dataset, rewards, expected):
    cfg = SimpleNamespace(dataset=dataset, reward_spec=rewards or "gsm8k", seed=0, eval_verifiers=None)
    assert default_heldout_verifiers(dataset, cfg.reward_spec) == expected
    assert heldout_verifiers(cfg) == expected
    assert heldout_verifiers(SimpleNamespace(**{**vars(cfg), "eval_verifiers": ("math",)})) == ("math",)


@pytest.mark.parametrize("value,expected", [
    (None, None), ("gsm8k", ("gsm8k",)), ("gsm8k, math", ("gsm8k", "math")), (["rg:chain_sum"], ("rg:chain_sum",)),
])
def test_eval_verifiers_field_accepts_names_and_lists(value, expected):
    assert TrainConfig(eval_verifiers=value).eval_verifiers == expected


@pytest.mark.parametrize("value,needle", [
    ("gsm8", "did you mean"), ("gsm8k+format", "weighted sum"), ([], "empty"), ("gsm8k,gsm8k", "twice"),
    (3, "verifier names"),
])
def test_bad_eval_verifiers_is_one_config_error(value, needle):
    with pytest.raises(ConfigError, match=needle):
        TrainConfig(eval_verifiers=value)


def test_cli_flag_and_bad_value_exit_2(tmp_path):
    from reasonkit.cli import main

    res = CliRunner().invoke(main, ["train", "--eval-verifiers", "nope", "--output", str(tmp_path / "r")])
    assert res.exit_code == 2 and "eval_verifiers 'nope'" in res.output and "Traceback" not in res.output
    assert "--eval-verifiers" in CliRunner().invoke(main, ["train", "--help"]).output


ROWS = [  # eval rows as reasonkit.eval.runner writes them
    {"item_id": "1", "sample": 0, "completion": "<think>x</think><answer>5</answer>", "gsm8k.correct": False,
     "gsm8k.score": 0.0, "gsm8k.reason": "wrong_answer", "format_soft.score": 1.0},
    {"item_id": "2", "sample": 0, "completion": "7", "gsm8k.correct": True, "gsm8k.score": 1.0,
     "gsm8k.reason": "correct", "format_soft.score": 0.0},
    {"item_id": "3", "sample": 0, "completion": "", "gsm8k.correct": None, "gsm8k.score": None,
     "gsm8k.reason": "error", "format_soft.score": 0.0},
    {"item_id": "4", "sample": 0, "completion": "nope", "gsm8k.correct": False, "gsm8k.score": 0.0,
     "gsm8k.reason": "no_answer", "format_soft.score": 0.0},
    {"item_id": "4", "sample": 1, "completion": "late", "gsm8k.correct": True, "gsm8k.score": 1.0,
     "gsm8k.reason": "correct", "format_soft.score": 1.0},
]


def test_heldout_items_and_metric_from_eval_rows():
    items = heldout_items(ROWS, ["gsm8k"])
    assert items == {"gsm8k": {"1": False, "2": True, "4": False}}  # unscored item 3 and sample 1 left out
    assert heldout_metrics(items) == {"heldout/gsm8k": pytest.approx(1 / 3)}


def test_reward_examples_earned_reward_but_fail_the_heldout_verifier():
    ex = reward_examples(ROWS, {"gsm8k": 1.0, "format_soft": 0.5}, "gsm8k")
    assert [(e["item_id"], e["reward"], e["reason"]) for e in ex] == [("1", 0.5, "wrong_answer")]
    assert reward_examples(ROWS, {"format_soft": 1.0}, "gsm8k", k=1)[0]["item_id"] == "1"


TRUNCATED = {"item_id": "9", "sample": 0, "completion": "\n</answer>\n\nThe answer is 1.\n\nThe process of",
             "finish_reason": "length", "gsm8k.correct": False, "gsm8k.score": 0.0, "gsm8k.reason": "truncated",
             "verbosity.score": 0.0, "verbosity.reason": "truncated",
             "verbosity.details": {"untruncated": {"score": 1.0, "correct": True, "reason": "correct"}}}


@pytest.mark.parametrize("score_truncated,expected", [(False, []), (True, [("9", 1.0, "truncated")])])
def test_reward_examples_pay_truncated_completions_as_training_did(score_truncated, expected):
    """With --score-truncated, training paid a truncated completion what the verifier said of it; the
    eval scores it 0. The alarm's examples show what training paid (the truncation hack's completions)."""
    ex = reward_examples([TRUNCATED], {"verbosity": 1.0}, "gsm8k", score_truncated=score_truncated)
    assert [(e["item_id"], e["reward"], e["reason"]) for e in ex] == expected
    assert paid_score(TRUNCATED, "gsm8k", True) == 0.0  # no untruncated verdict kept: the eval's score


# ------------------------------------------------------------------------------------------ in the loop

def _trainer(tiny_model_dir, tmp_path, reward_at, **overrides):
    """A trainer on the tiny model whose rollouts are random tokens with reward ``reward_at(step)`` (+ a
    little spread); its periodic evals generate for real on countdown items."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasonkit.grpo.rollout import Rollouts
    from reasonkit.grpo.trainer import GRPOTrainer

    kw = dict(model=tiny_model_dir, dtype="fp32", max_steps=8, group_size=4, prompts_per_step=2, max_tokens=8,
              learning_rate=1e-3, output=str(tmp_path / "run"), log_completions_steps=0, lora_dropout=0.0,
              dataset="countdown", eval_steps=2, eval_limit=16)
    kw.update(overrides)
    items = [{"id": str(i), "question": f"q{i}"} for i in range(6)]
    trainer = GRPOTrainer(TrainConfig(**kw), model=AutoModelForCausalLM.from_pretrained(tiny_model_dir,
                                                                                        dtype=torch.float32),
                          tokenizer=AutoTokenizer.from_pretrained(tiny_model_dir), items=items,
                          prompts=[f"Question {i}: say something." for i in range(6)], verifier="format",
                          show_progress=False)

    def generate(step):
        prompts, its = trainer._next_batch()
        g = torch.Generator().manual_seed(step)
        n = len(prompts) * 4
        ids = [torch.randint(0, 1000, (6,), generator=g).tolist() for _ in range(n)]
        pid = [trainer.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts for _ in range(4)]
        r = Rollouts([p for p in prompts for _ in range(4)], [it for it in its for _ in range(4)], pid, ids,
                     ["x"] * n, ["stop"] * n, 4)
        r.rewards = (reward_at(step) + 0.05 * torch.rand(n, generator=g)).clamp(0, 1)
        r.per_verifier = {"format": r.rewards.clone()}
        return r

    trainer.generate = generate
    trainer.reward = lambda r: r  # the fake rollouts carry their rewards
    return trainer


def _rows(tmp_path):
    return [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]


def test_heldout_metric_logged_at_every_eval_and_silent_when_reward_is_flat(tiny_model_dir, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = _trainer(tiny_model_dir, tmp_path, lambda step: 0.3, max_steps=4, report_to="tensorboard")
    trainer.train()
    rows = _rows(tmp_path)
    assert [("heldout/countdown" in r) for r in rows] == [False, True, False, True]
    assert all(0.0 <= r["heldout/countdown"] <= 1.0 for r in rows[1::2])
    assert "eval/countdown" in rows[1] and "reward" in rows[1]  # next to the training reward
    assert not any("alarms" in r for r in rows)
    acc = EventAccumulator(str(tmp_path / "run" / "run"))
    acc.Reload()
    assert [s.step for s in acc.Scalars("heldout/countdown")] == [2, 4]


def test_divergence_alarm_fires_in_the_loop_when_reward_jumps_and_heldout_stays(tiny_model_dir, tmp_path, capsys):
    # reward ~0 for four steps, then ~0.9; the tiny model's held-out countdown accuracy stays where it is
    trainer = _trainer(tiny_model_dir, tmp_path, lambda step: 0.0 if step < 4 else 0.9)
    trainer.train()
    rows = _rows(tmp_path)
    alarms = {r["step"]: r["alarms"] for r in rows if "alarms" in r}
    assert list(alarms) == [6, 8]  # the first full window of K = 3 evals (steps 2-6) on
    (record,) = alarms[6]
    assert record["name"] == "reward_heldout_divergence" and record["verifier"] == "countdown"
    assert record["component"] == "format" and record["first_step"] == 2 and record["items"] == 16
    assert record["rise"] > 0.8 and record["gain_upper"] < 0.25 * record["rise"]
    err = capsys.readouterr()
    assert "REWARD HACKING SUSPECTED" in err.out + err.err


def test_format_only_reward_audit_uses_the_heldout_verifier_in_the_loop(tiny_model_dir, tmp_path):
    """The format-only hack's completions (a bare guess in closed tags, paid by the format reward) are
    counted as ``format_paid_task_failed`` in metrics.jsonl: the trainer judges them with the run's
    held-out verifier (countdown here) because the reward has no task term."""
    from reasonkit.grpo.rollout import Rollouts

    trainer = _trainer(tiny_model_dir, tmp_path, lambda step: 0.0, max_steps=2, eval_steps=0)
    item = {"numbers": [2, 5, 3], "target": 7}
    texts = ["<think>I add them.</think>\n<answer>-3</answer>", "<answer>7</answer>",
             "<think>2*5=10, 10-3=7</think>\n<answer>2*5-3</answer>", "I am not sure"]

    def generate(step):
        n = 8
        r = Rollouts(["p"] * n, [dict(item) for _ in range(n)], [[1, 2]] * n, [[3, 4, 5]] * n, texts * 2,
                     ["stop"] * n, 4)
        r.rewards = torch.tensor([1.0, 1.0, 1.0, 0.0] * 2)
        r.per_verifier = {"format": r.rewards.clone()}
        return r

    trainer.generate = generate
    trainer.train()
    rows = _rows(tmp_path)
    assert [r["audit/format_paid_task_failed"] for r in rows] == [0.5, 0.5]  # 2 of each 4: paid, wrong
