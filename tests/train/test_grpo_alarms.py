"""Silent-failure alarms (reasonkit.grpo.alarms): the rule on its own, then in a real training loop."""
from __future__ import annotations

import json

import pytest

from reasonkit.grpo.alarms import STEPS, SignalAlarms


def test_alarm_needs_consecutive_steps_and_names_the_flag():
    a = SignalAlarms()
    bad = {"truncated": 1.0, "zero_variance": 0.5, "reward": 0.0}
    assert a.update(1, bad) == [] and a.update(2, bad) == []
    assert a.update(3, {"truncated": 0.2, "zero_variance": 0.0}) == []  # a healthy step resets the streak
    out = [a.update(s, bad) for s in range(4, 4 + STEPS)]
    assert out[:-1] == [[]] * (STEPS - 1)
    assert len(out[-1]) == 1 and "--max-tokens" in out[-1][0] and "100%" in out[-1][0]


@pytest.mark.parametrize("reward,flag", [(0.0, "--dataset"), (1.0, "harder --dataset")])
def test_zero_variance_alarm_says_whether_the_task_is_too_hard_or_too_easy(reward, flag):
    a = SignalAlarms(steps=2)
    m = {"truncated": 0.0, "zero_variance": 0.95, "reward": reward}
    assert a.update(1, m) == []
    (msg,) = a.update(2, m)
    assert flag in msg and "advantages are 0" in msg
    assert a.update(3, m) == [] and len(a.update(4, m)) == 1  # repeated while it lasts


@pytest.mark.parametrize("rewards, reward, flag", [
    ("gsm8k+0.5*format", 0.5, "too hard"),          # formats right, answers wrong: 0.5 of 1.5
    ("gsm8k+0.5*format", 1.5, "harder --dataset"),  # everything right
    ("gsm8k+0.5*format", 1.4, "harder --dataset"),
    ("2*gsm8k+0.5*format", 1.0, "too hard"),
    ("gsm8k", 0.6, "too hard"),
    ("gsm8k", 1.0, "harder --dataset"),
    ("gsm8k+-0.1*format", 0.95, "harder --dataset"),  # right answer, penalised format: near the top
    ("gsm8k+-0.1*format", -0.1, "too hard"),
], ids=["format_only", "all_right", "nearly_all_right", "weighted_half", "single_0.6", "single_all",
        "negative_weight_top", "negative_weight_bottom"])
def test_issue23_item11_solved_is_judged_on_the_reward_scale(rewards, reward, flag):
    from reasonkit.grpo.alarms import reward_range
    from reasonkit.verifiers import resolve

    a = SignalAlarms(steps=1, reward_range=reward_range(resolve(rewards)))
    (msg,) = a.update(1, {"truncated": 0.0, "zero_variance": 1.0, "reward": reward})
    assert flag in msg


def test_training_loop_warns_and_records_alarms(tiny_model_dir, tmp_path, capsys):
    from train_fakes import fake_rollouts, make_trainer

    trainer = make_trainer(tiny_model_dir, tmp_path, max_steps=STEPS + 1)

    def truncated_and_flat(step):
        r = fake_rollouts(trainer, step)
        r.finish_reasons = ["length"] * len(r)  # every completion hit the limit ...
        r.rewards = r.rewards * 0  # ... and no group has reward variance
        return r

    trainer.generate = truncated_and_flat
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [("alarms" in r) for r in rows] == [False] * (STEPS - 1) + [True, False]
    assert len(rows[STEPS - 1]["alarms"]) == 2
    err = capsys.readouterr().err
    assert "NO LEARNING SIGNAL" in err and "--max-tokens" in err and "--group-size" in err
