"""The reward stage of GRPO: verifiers -> one reward per completion, and each component's score.

:func:`score` fills the reward fields of a :class:`reasonkit.grpo.rollout.Rollouts` in place:

* ``rewards`` — the composite verifier's score (``reasonkit.verifiers.compose``: the weighted sum of
  its components), NaN where the completion could not be scored;
* ``per_verifier`` — every component's score (a single verifier: its own score), for logging;
* ``unscored`` / ``unscored_reasons`` — how many could not be scored, and the first three reasons.

Policy (one call, :func:`_policy`, per completion):

* **Verifier crash.** Scoring goes through ``score_batch``, so a verifier that raises, a missing
  reference field or a bad gold answer becomes an ``error`` verdict with ``correct = None``. Such a
  completion gets reward NaN: its advantage is 0, it leaves the loss mask
  (:mod:`reasonkit.grpo.advantages`, :mod:`reasonkit.grpo.batch`) and it is counted in ``unscored``
  — never silently folded into reward 0.
* **Truncation.** A completion that hit ``max_tokens`` (finish reason ``length``) gets reward 0 in
  every component unless ``score_truncated``. Without it the policy learns what a recorded run did:
  answer, then ramble to the token limit (``24</answer>`` followed by more text), which earns the
  full reward in training and is scored wrong by ``reasonkit eval`` (:mod:`reasonkit.eval.scoring`).
"""
from __future__ import annotations

import torch

from .rollout import Rollouts


def _policy(verdict, finish_reason: str, score_truncated: bool):
    """The training reward's verdict for one completion (module docstring): unfinished = wrong, 0 in
    every component, never "could not score"; a crash stays an unscored ``error`` verdict."""
    from reasonkit.verifiers.base import Verdict

    if finish_reason == "length" and not score_truncated:
        return Verdict(0.0, False, verdict.extracted, "truncated")
    return verdict


def score(rollouts: Rollouts, verifier, prefix: str = "", score_truncated: bool = False) -> Rollouts:
    """Fill ``rewards``, ``per_verifier``, ``unscored`` and ``unscored_reasons`` in place; returns ``rollouts``.

    ``verifier`` is a composite from ``reasonkit.verifiers.compose.compose``; each data row supplies
    the reference fields. ``prefix`` is put before every completion (the benchmark's ``score_prefix``:
    a prompt that pre-fills ``<think>`` is scored as if the completion began with it).
    """
    from reasonkit.verifiers.batch import score_batch

    rows = [{**item, "completion": prefix + text} for item, text in zip(rollouts.items, rollouts.texts)]
    raw = list(score_batch(verifier, rows))
    nan = float("nan")
    verdicts = [_policy(v, r, score_truncated) for v, r in zip(raw, rollouts.finish_reasons)]
    # the components follow the composite's truncation policy: 0 in each of them
    cut = set() if score_truncated else {i for i, r in enumerate(rollouts.finish_reasons) if r == "length"}
    rewards, comps, unscored = [], {}, 0
    for i, (v, r) in enumerate(zip(verdicts, raw)):
        # NaN = "could not score": group_advantages gives it advantage 0 and the trainer drops it
        # from the loss mask (see reasonkit.grpo.advantages).
        rewards.append(float(v.score) if v.correct is not None else nan)
        unscored += int(v.correct is None)
        for name, cv in (r.details or {}).get("components", {}).items():
            s = 0.0 if i in cut else cv["score"] if cv.get("correct") is not None else nan
            comps.setdefault(name, [nan] * len(verdicts))[i] = float(s)
    for values in comps.values():  # a truncated row whose verdict had no components (an error)
        for i in cut:
            values[i] = 0.0
    rollouts.rewards = torch.tensor(rewards, dtype=torch.float32)
    if not comps:  # a single verifier: its reward is the only component
        comps = {getattr(verifier, "name", "reward"): rewards}
    rollouts.per_verifier = {k: torch.tensor(v, dtype=torch.float32) for k, v in comps.items()}
    rollouts.unscored = unscored
    rollouts.unscored_reasons = [v.details.get("error", v.reason) for v in verdicts if v.correct is None][:3]
    return rollouts
