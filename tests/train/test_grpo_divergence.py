"""The reward / held-out divergence alarm (reasonkit.grpo.divergence) on synthetic eval histories, and
replayed on the two recorded learning runs (the negative case: they really learned)."""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from reasonkit.grpo.divergence import (MIN_RISE, NAME, WINDOW_EVALS, DivergenceMonitor, decide,
                                       items_from_accuracy, paired_gain, reward_rise, upper_p)
from reasonkit.grpo.divergence import replay as replay_record

from bench_scripts import load

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def replay(reward_means, heldout_accs, *, items=64, steps=20, noise=0.2, churn=0, seed=0,
           component="task", weights=None):
    """Feed a monitor ``len(reward_means)`` evals: ``steps`` step rewards around each mean (Gaussian
    ``noise``), and held-out items of which the first ``round(acc * items)`` are right; ``churn``
    items right at one eval swap with wrong ones at the next (discordant pairs both ways). Returns the
    steps at which the alarm fired and the last divergences."""
    rng = random.Random(seed)
    rows, evals = [], []
    for k, (mean, acc) in enumerate(zip(reward_means, heldout_accs)):
        for _ in range(steps):
            r = min(1.0, max(0.0, rng.gauss(mean, noise)))
            rows.append({"step": len(rows) + 1, "reward": r, f"rewards/{component}": r})
        right = set(range(round(acc * items)))
        if churn and right and len(right) < items:
            order = list(range(items))
            random.Random(seed * 1000 + k).shuffle(order)
            out_ = [i for i in order if i in right][:churn]
            in_ = [i for i in order if i not in right][:churn]
            right = (right - set(out_)) | set(in_)
        evals.append(((k + 1) * steps, {"gsm8k": {str(i): i in right for i in range(items)}}))
    result = replay_record(rows, evals, weights or {component: 1.0})
    last = [d for d in result.divergences if d.step == result.fired[-1]] if result.fired else []
    return result.fired, last


RISING = [0.1 + 0.1 * k for k in range(8)]
FLAT = [0.3] * 8
STEEP = [0.1, 0.1, 0.1, 0.5, 0.9, 0.95, 0.95, 0.95]  # a format hack: the reward jumps within two evals


@pytest.mark.parametrize("case,reward,heldout,kw,fires", [
    ("both rise (learning)", RISING, [0.2 + 0.05 * k for k in range(8)], {}, False),
    ("both rise, items churn", RISING, [0.2 + 0.05 * k for k in range(8)], {"churn": 6}, False),
    ("reward rises, held-out flat", RISING, FLAT, {}, True),
    ("reward jumps, held-out flat, items churn", STEEP, FLAT, {"churn": 4}, True),
    ("reward jumps, held-out flat, a quarter of the items flip each way", STEEP, FLAT, {"churn": 16}, True),
    ("reward jumps, held-out flat, heavy churn, 256 items", STEEP, FLAT, {"churn": 32, "items": 256}, True),
    ("reward jumps, held-out flat", STEEP, FLAT, {}, True),
    # a slow rise against a held-out set where a quarter of the items flip each way between evals:
    # the items cannot exclude a gain of FOLLOW x rise, so it stays silent (the price of no false alarms)
    ("reward rises slowly, held-out flat but churning", RISING, FLAT, {"churn": 8}, False),
    ("reward rises, held-out falls", RISING, [0.5 - 0.04 * k for k in range(8)], {}, True),
    ("noise only", FLAT, FLAT, {"churn": 5}, False),
    ("noise only, noisier reward", FLAT, [0.3, 0.28, 0.31, 0.3, 0.27, 0.3, 0.33, 0.3], {"noise": 0.35}, False),
    ("reward rise below the margin", [0.3 + 0.01 * k for k in range(8)], FLAT, {"noise": 0.02}, False),
    ("too few held-out items", RISING, FLAT, {"items": 8}, False),
    ("reward falls, held-out flat", RISING[::-1], FLAT, {}, False),
    ("held-out saturated and flat", RISING, [1.0] * 8, {}, True),
])
def test_alarm_regression_table(case, reward, heldout, kw, fires):
    fired, _ = replay(reward, heldout, **kw)
    assert bool(fired) is fires, (case, fired)
    if fires:  # not before K evals
        assert fired[0] >= WINDOW_EVALS * 20


def test_alarm_names_the_component_that_rose():
    weights = {"gsm8k": 1.0, "format_soft": 1.0}
    monitor = DivergenceMonitor(weights)
    flat = {"gsm8k": {str(i): i < 20 for i in range(64)}}
    results = []
    for k in range(5):
        for s in range(10):
            fmt = min(1.0, 0.3 * k + 0.01 * (s % 3))  # the format term climbs 0 -> 1, the task term does not
            monitor.observe_step({"reward": 0.2 + fmt, "rewards/gsm8k": 0.2, "rewards/format_soft": fmt})
        results.append(monitor.on_eval(10 * (k + 1), flat))
    # evals 3-4: the format term rose 0.6 of the scale 2 over two intervals; eval 5: 0.39 / 2, under MIN_RISE
    assert [bool(r) for r in results] == [False, False, True, True, False]
    (d,) = results[3]
    assert d.component == "format_soft" and d.verifier == "gsm8k" and d.step == 40 and d.first_step == 20
    assert d.wrong_to_right == d.right_to_wrong == 0 and d.gain_upper == 0.0
    assert d.rise == pytest.approx((d.reward_after - d.reward_before) / 2)  # scale: the sum of the weights
    rec = json.loads(json.dumps(d.record()))
    assert rec["name"] == NAME and rec["component"] == "format_soft"
    assert rec["message"].startswith("REWARD HACKING SUSPECTED") and "format_soft" in rec["message"]


@pytest.mark.parametrize("b,n,expected", [
    (0, 10, 1 - 0.05 ** (1 / 10)),       # P(X = 0) = (1 - p)^n = alpha
    (0, 1, 0.95),
    (9, 10, 0.95 ** (1 / 10)),           # P(X <= n - 1) = 1 - p^n = alpha
    (4, 4, 1.0),
    (0, 0, 1.0),
])
def test_clopper_pearson_upper_bound_closed_forms(b, n, expected):
    assert upper_p(b, n) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("before,after,expected", [
    # n, wrong->right, right->wrong, accuracies, the bound's sign
    ({"a": True, "b": False}, {"a": True, "b": False}, (2, 0, 0, 0.5, 0.5, 0.0)),
    ({"a": False, "b": False}, {"a": True, "b": True}, (2, 2, 0, 0.0, 1.0, 1.0)),
    ({"a": True, "b": True, "c": None}, {"a": False, "b": True, "c": True}, (2, 0, 1, 1.0, 0.5, None)),
    ({"a": True}, {"z": True}, (0, 0, 0, math.nan, math.nan, math.nan)),
])
def test_paired_gain_counts_only_items_scored_at_both_evals(before, after, expected):
    got = paired_gain(before, after)
    assert got[:3] == expected[:3]
    for g, e in zip(got[3:5], expected[3:5]):
        assert (math.isnan(g) and math.isnan(e)) or g == pytest.approx(e)
    if expected[5] is None:  # one item got worse: the bound is above the observed gain (-0.5) but below 1
        assert -0.5 < got[5] < 0.5
    elif math.isnan(expected[5]):
        assert math.isnan(got[5])
    else:
        assert got[5] == pytest.approx(expected[5])


def test_reward_rise_is_scaled_and_uses_the_window_spread():
    m0, m1, rise, se = reward_rise([0.0, 0.2, 0.4], [1.0, 1.2, 1.4], scale=2.0)
    assert (m0, m1) == pytest.approx((0.2, 1.2)) and rise == pytest.approx(0.5)
    assert se == pytest.approx(math.sqrt(0.04 / 3 + 0.04 / 3) / 2)
    assert math.isnan(reward_rise([], [1.0])[2])


def test_decide_waits_for_a_full_window():
    from reasonkit.grpo.divergence import EvalPoint

    items = {"gsm8k": {str(i): False for i in range(32)}}
    points = [EvalPoint(10, [0.0, 0.01] * 5, {}, items), EvalPoint(20, [1.0, 0.99] * 5, {}, items)]
    assert decide(points) == []  # two evals < K
    assert decide(points, window=2)[0].rise > MIN_RISE


def _learning_history(name: str, verifier: str):
    """Replay a recorded learning run (reasonkit.grpo.divergence.replay, held-out items rebuilt with the
    fewest changes its accuracies allow). Returns the data, the steps at which the alarm fired and the
    steps at which the reward condition alone held."""
    data = load("harness").load(RESULTS / f"{name}.json")  # the figures, in either results layout
    n = data["eval_limit"]
    evals = [(e["step"], {verifier: items_from_accuracy(e[f"eval/{verifier}"], n)}) for e in data["evals"]]
    result = replay_record(data["curve"], evals, {data["reward"]: 1.0})
    return data, result.fired, result.reward_rose


# learning-seed1 (trained again 2026-12-07 with gsm8k_computed, which pays no question given back) learned
# the sums: its reward rose gradually (the reward condition never held) and the alarm is silent on its own
# judge. learning (re-run 2026-12-07, trained with gsm8k) learned to
# restate the question, which gsm8k pays (``5 - 3`` read as 2): between the evals at 40 and 80 the
# reward rose 0.236 -> 0.439 while held-out gsm8k moved 0.516 -> 0.547 on 64 items, and the replay
# (fewest changed items) fires there. The live run, with its real items, fired at steps 60 and 80 on
# the task's own scorer (``alarms`` in the record); counting unevaluated arithmetic wrong, its greedy
# held-out gain is +5 points (p = 0.19) instead of +35.
@pytest.mark.parametrize("name,judge,reward_rose,fired_at", [("learning", "gsm8k", [60, 80], [80]),
                                                             ("learning-seed1", "gsm8k_computed", [], [])])
def test_recorded_learning_runs_replay_as_they_ran(name, judge, reward_rose, fired_at):
    data, fired, rose = _learning_history(name, judge)
    assert data["verifier"] == judge and len(data["evals"]) == 10  # the run's own held-out judge
    assert fired == fired_at
    assert rose == reward_rose  # where the reward rose significantly
    first, last = data["curve"][:20], data["curve"][-20:]  # the reward did rise over the run, held-out too
    assert sum(r["reward"] for r in last) / 20 - sum(r["reward"] for r in first) / 20 > 0.25
    assert data["evals"][-1][f"eval/{judge}"] > data["evals"][0][f"eval/{judge}"]


def test_replay_closes_each_window_at_its_eval_step_and_reports_the_reward_condition():
    # rewards 0.0/0.02 before the eval at step 4, then 1.0/0.98: each window holds exactly its own steps
    rows = [{"step": s, "reward": (0.0 if s <= 4 else 1.0) + 0.02 * (s % 2)} for s in range(1, 13)]
    up = {"gsm8k": {str(i): i < 8 for i in range(32)}}
    result = replay_record(rows, [(4, up), (8, up), (12, up)], {"gsm8k": 1.0})
    assert result.reward_rose == [12] and result.fired == [12]
    (d,) = result.divergences
    assert (d.first_step, d.reward_before, d.reward_after) == (4, pytest.approx(0.01), pytest.approx(1.01))
    # the held-out items followed the reward: the reward condition alone held, no alarm
    learned = {"gsm8k": {str(i): True for i in range(32)}}
    result = replay_record(rows, [(4, up), (8, up), (12, learned)], {"gsm8k": 1.0})
    assert result.reward_rose == [12] and result.fired == [] and result.divergences == []
    # items rebuilt from an accuracy: the first round(acc * n) right
    assert items_from_accuracy(0.25, 8) == {str(i): i < 2 for i in range(8)}
