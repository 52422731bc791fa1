"""Group-relative advantages against a loop reference from the formulas and against TRL 1.16's
normalisation (its ``nanstd`` / ``nanmean`` code path), including NaN ("could not score") rewards."""
from __future__ import annotations

import math
import statistics
import warnings

import pytest

torch = pytest.importorskip("torch")

from reasonkit.grpo.advantages import group_advantages, scored_mask, zero_variance_groups  # noqa: E402

EPS = 1e-4
NAN = float("nan")


def reference(rewards: list[float], g: int, scale: str) -> list[float]:
    """From the formulas: sample std over the scored members; unscored or baseline-less -> 0."""
    scored_all = [r for r in rewards if not math.isnan(r)]
    batch_std = statistics.stdev(scored_all) if len(scored_all) > 1 else 0.0
    out = []
    for start in range(0, len(rewards), g):
        group = rewards[start:start + g]
        scored = [r for r in group if not math.isnan(r)]
        for r in group:
            if math.isnan(r) or len(scored) < 2:
                out.append(0.0)
                continue
            mean = sum(scored) / len(scored)
            std = statistics.stdev(scored)  # n - 1
            if scale == "group":
                out.append((r - mean) / (std + EPS))
            elif scale == "batch":
                out.append((r - mean) / (batch_std + EPS))
            else:
                out.append(r - mean)
    return out


REWARDS = {
    "binary": [1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1, 0],
    "graded": [2.0, 1.5, 0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 0.25, 2.0, 0.0, 1.75],
    "nan": [1, NAN, 0, 1, NAN, NAN, NAN, 1, 2, NAN, 0, 0],
    "one_scored": [NAN, 3.0, NAN, NAN, 0, 1, 0.5, 0.5, 1, 0, 0, 2],
}


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@pytest.mark.parametrize("case", sorted(REWARDS))
def test_matches_loop_reference(case, scale):
    r = REWARDS[case]
    got = group_advantages(torch.tensor(r, dtype=torch.float64), 4, scale=scale)
    assert got.tolist() == pytest.approx(reference(r, 4, scale), rel=1e-12, abs=1e-12)
    assert torch.isfinite(got).all()


def test_known_values():
    # one group [1, 0, 0, 1]: mean 0.5, sample std sqrt(1/3)
    adv = group_advantages(torch.tensor([1.0, 0, 0, 1]), 4)
    s = math.sqrt(1 / 3)
    assert adv.tolist() == pytest.approx([0.5 / (s + EPS), -0.5 / (s + EPS), -0.5 / (s + EPS), 0.5 / (s + EPS)])
    assert group_advantages(torch.tensor([1.0, 0, 0, 1]), 4, scale="none").tolist() == [0.5, -0.5, -0.5, 0.5]
    # integer rewards are accepted and give float advantages
    assert group_advantages(torch.tensor([1, 0]), 2).dtype == torch.float32


def _trl_advantages(rewards: torch.Tensor, g: int, scale: str) -> torch.Tensor:
    """TRL 1.16 GRPOTrainer._generate_and_score_completions, sum_then_normalize branch, on given rewards
    (NaN rows = every reward function returned None), using TRL's own nanstd."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nanstd = pytest.importorskip("trl.trainer.utils").nanstd
    mean = torch.nanmean(rewards.view(-1, g), dim=1).repeat_interleave(g)
    if scale in ("group", "none"):
        std = nanstd(rewards.view(-1, g), dim=1).repeat_interleave(g)
    else:
        std = nanstd(rewards).expand_as(rewards)
    adv = rewards - mean
    if scale != "none":
        adv = adv / (std + 1e-4)
    return torch.nan_to_num(adv, nan=0.0)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@pytest.mark.parametrize("case", sorted(REWARDS))
def test_matches_trl(case, scale):
    r = torch.tensor(REWARDS[case], dtype=torch.float64)
    # TRL's nanstd computes its n / (n - 1) correction in float32 (integer counts divided), hence 1e-7
    assert torch.allclose(group_advantages(r, 4, scale=scale), _trl_advantages(r, 4, scale), rtol=1e-7, atol=1e-7)


def test_sample_std_like_torch_std():
    r = torch.tensor([0.3, 1.7, 0.2, 0.9], dtype=torch.float64)
    adv = group_advantages(r, 4)
    assert adv.tolist() == pytest.approx(((r - r.mean()) / (r.std(unbiased=True) + EPS)).tolist())


def test_nan_rows_get_zero_and_are_reported_unscored():
    r = torch.tensor([1.0, NAN, 0.0, 1.0])
    adv = group_advantages(r, 4)
    assert adv[1] == 0
    assert scored_mask(r).tolist() == [True, False, True, True]
    # the baseline ignores the unscored member: mean of (1, 0, 1) = 2/3
    s = math.sqrt(1 / 3)  # sample std of (1, 0, 1)
    assert adv.tolist() == pytest.approx([(1 / 3) / (s + EPS), 0, (-2 / 3) / (s + EPS), (1 / 3) / (s + EPS)])
    assert group_advantages(r, 4, scale="none").tolist() == pytest.approx([1 / 3, 0, -2 / 3, 1 / 3])


def test_zero_variance_groups():
    r = torch.tensor([1.0, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, NAN, 2, 2, NAN, NAN, NAN, NAN, 5, 0.5, 0.5, 0.5, 0.5001])
    assert zero_variance_groups(r, 4).tolist() == [True, True, False, True, True, False]
    adv = group_advantages(r, 4)
    zv = zero_variance_groups(r, 4).repeat_interleave(4)
    assert torch.all(adv[zv] == 0)
    assert torch.all(adv[8:12] != 0)


def test_errors():
    with pytest.raises(ValueError, match="whole number of groups"):
        group_advantages(torch.zeros(6), 4)
    with pytest.raises(ValueError, match="scale"):
        group_advantages(torch.zeros(4), 4, scale="global")
    with pytest.raises(ValueError, match="1-D"):
        zero_variance_groups(torch.zeros(2, 4), 4)
