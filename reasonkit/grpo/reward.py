"""The reward stage of GRPO: verifiers -> one reward per completion, and each component's score.

:func:`score` fills the reward fields of a :class:`reasonkit.grpo.rollout.Rollouts` in place:

* ``rewards`` — the composite verifier's score (``reasonkit.verifiers.compose``: the weighted sum of
  its components), NaN where the completion could not be scored;
* ``per_verifier`` — every component's score (a single verifier: its own score), for logging;
* ``unscored`` / ``unscored_reasons`` — how many could not be scored, and the first three reasons.

Policy: :mod:`reasonkit.verifiers.policy`, the one ``reasonkit eval`` applies.

* **Verifier crash.** Scoring goes through ``score_batch``, so a verifier that raises is a verdict
  (reason ``verifier_error:<Type>``, ``correct = None``), as are a missing reference field or a bad
  gold answer. Such a completion gets reward NaN: its advantage is 0, it leaves the loss mask
  (:mod:`reasonkit.grpo.advantages`, :mod:`reasonkit.grpo.batch`) and it is counted in ``unscored``
  — never silently folded into reward 0.
* **Truncation.** A completion that hit ``max_tokens`` (finish reason ``length``) gets reward 0 in
  every component unless ``score_truncated``. Without it the policy learns what a recorded run did:
  answer, then ramble to the token limit (``24</answer>`` followed by more text), which earns the
  full reward in training and is scored wrong by ``reasonkit eval``. A truncated completion (or
  component) the verifier could not score stays unscored (NaN), not 0.
"""
from __future__ import annotations

import torch

from reasonkit.verifiers.batch import score_batch
from reasonkit.verifiers.policy import apply_truncation, truncate_components

from .rollout import Rollouts


def _rows(rollouts: Rollouts, prefix: str) -> list[dict]:
    """The verifier's input rows: each data row's reference fields and its completion (``prefix`` first)."""
    return [{**item, "completion": prefix + text} for item, text in zip(rollouts.items, rollouts.texts)]


def score(rollouts: Rollouts, verifier, prefix: str = "", score_truncated: bool = False) -> Rollouts:
    """Fill ``rewards``, ``per_verifier``, ``unscored`` and ``unscored_reasons`` in place; returns ``rollouts``.

    ``verifier`` is a composite from ``reasonkit.verifiers.compose.compose``; each data row supplies
    the reference fields. ``prefix`` is put before every completion (the benchmark's ``score_prefix``:
    a prompt that pre-fills ``<think>`` is scored as if the completion began with it).
    """
    raw = list(score_batch(verifier, _rows(rollouts, prefix)))
    nan = float("nan")
    finish = rollouts.finish_reasons
    verdicts = [apply_truncation(v, f, score_truncated) for v, f in zip(raw, finish)]
    rewards, comps, unscored = [], {}, 0
    for i, (v, r) in enumerate(zip(verdicts, raw)):
        # NaN = "could not score": group_advantages gives it advantage 0 and the trainer drops it
        # from the loss mask (see reasonkit.grpo.advantages).
        rewards.append(float(v.score) if v.correct is not None else nan)
        unscored += int(v.correct is None)
        parts = truncate_components((r.details or {}).get("components", {}), finish[i], score_truncated)
        for name, cv in parts.items():
            s = cv["score"] if cv.get("correct") is not None else nan
            comps.setdefault(name, [nan] * len(verdicts))[i] = float(s)
    rollouts.rewards = torch.tensor(rewards, dtype=torch.float32)
    if not comps:  # a single verifier: its reward is the only component
        comps = {getattr(verifier, "name", "reward"): rewards}
    rollouts.per_verifier = {k: torch.tensor(v, dtype=torch.float32) for k, v in comps.items()}
    rollouts.unscored = unscored
    rollouts.unscored_reasons = [v.details.get("error", v.reason) for v in verdicts if v.correct is None][:3]
    return rollouts


def eval_verdicts(rollouts: Rollouts, verifier, prefix: str = "") -> list[dict]:
    """One verifier's verdict on every completion, as ``reasonkit eval`` gives it (a truncated completion
    is wrong, one it could not score is ``correct = None``): ``{"score", "correct"}`` each. The hack
    audit's task verifier when the reward has none (:func:`reasonkit.grpo.tracking.audit_records`)."""
    raw = score_batch(verifier, _rows(rollouts, prefix))
    verdicts = (apply_truncation(v, f) for v, f in zip(raw, rollouts.finish_reasons))
    return [{"score": float(v.score), "correct": v.correct} for v in verdicts]

