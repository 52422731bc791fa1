"""Silent-failure alarms: say so, while the run goes on, when a GRPO run has no learning signal.

GRPO learns only from groups whose rewards differ. Two cheap symptoms mean there is (almost) no
signal left, and a run in that state still finishes with exit code 0 (TRL issue #5697, and this
project's own first quick run: every completion truncated, every group zero-variance, loss 0):

- ``truncated`` >= ``THRESHOLD``: nearly every completion hit ``max_tokens``, so the answer (and any
  reward for it) never appears -> raise ``--max-tokens`` or shorten the prompt's reasoning;
- ``zero_variance`` >= ``THRESHOLD``: nearly every group got one reward for all its completions, so
  the advantages are 0 -> all wrong: an easier task (``--dataset``), partial credit
  (``--rewards``), more samples (``--group-size``); all right: a harder task.

"All right" is judged on the reward expression's own scale (issue 23 item 11: a fixed 0.5 told a
model that formats right and answers wrong under ``gsm8k+0.5*format``, reward 0.5 of 1.5, to pick a
harder data set). :func:`reward_range` gives ``(lo, hi)``: ``hi`` = the sum of the positive weights
(every component scoring 1.0, the most a completion can earn), ``lo`` = the sum of the negative
ones; a single verifier is ``(0, 1)``. "Solved" means the mean reward is at least ``THRESHOLD`` of
the way from ``lo`` to ``hi``, i.e. nearly every completion earns the full reward.

An alarm fires after ``STEPS`` consecutive steps in such a state, is repeated every ``STEPS``
steps while it lasts, and is cleared by one healthy step. Importing this module imports nothing
heavy.
"""
from __future__ import annotations

import math
from typing import Any

THRESHOLD = 0.9
STEPS = 3


def reward_range(verifier) -> tuple[float, float]:
    """``(lowest, highest)`` reward a composite can give (scores in [0, 1] per component)."""
    weights = [w for _, w in getattr(verifier, "components", ())] or [1.0]
    return sum(min(w, 0.0) for w in weights), sum(max(w, 0.0) for w in weights)


class SignalAlarms:
    """Feed every step's metrics to :meth:`update`; it returns the warnings to show now (maybe none).

    ``reward_range``: the reward's ``(lo, hi)`` (:func:`reward_range` of the trainer's verifier).
    """

    def __init__(self, *, threshold: float = THRESHOLD, steps: int = STEPS,
                 reward_range: tuple[float, float] = (0.0, 1.0)):
        self.threshold, self.steps = threshold, steps
        self.reward_range = reward_range
        self.streak = {"truncated": 0, "zero_variance": 0}

    def update(self, step: int, metrics: dict[str, Any]) -> list[str]:
        out = []
        for key in self.streak:
            value = metrics.get(key)
            if isinstance(value, (int, float)) and not math.isnan(value) and value >= self.threshold:
                self.streak[key] += 1
            else:
                self.streak[key] = 0
            n = self.streak[key]
            if n and n % self.steps == 0:
                out.append(self._message(key, n, step, metrics))
        return out

    def _message(self, key: str, n: int, step: int, metrics: dict[str, Any]) -> str:
        share = f"{metrics[key]:.0%}"
        if key == "truncated":
            return (f"NO LEARNING SIGNAL (step {step}): {share} of completions hit the token limit for {n} steps in "
                    f"a row; the answers are cut off before they can be rewarded. Raise --max-tokens "
                    f"(or shorten the prompt's reasoning).")
        reward = metrics.get("reward")
        lo, hi = self.reward_range
        if isinstance(reward, (int, float)) and not math.isnan(reward) and reward - lo >= self.threshold * (hi - lo):
            fix = "every group is already solved: use a harder --dataset (or a stricter --rewards)"
        else:
            fix = ("the task is too hard for the model: choose an easier --dataset, add partial credit to "
                   "--rewards, or raise --group-size / --temperature")
        return (f"NO LEARNING SIGNAL (step {step}): {share} of groups got the same reward for all completions "
                f"for {n} steps in a row, so their advantages are 0 ({fix}).")
