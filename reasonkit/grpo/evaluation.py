"""Periodic evaluation during training, written like a ``reasonkit eval`` run.

Every ``eval_steps`` steps the main process evaluates the current policy on ``eval_limit`` items of
the held-out split (``eval_split``, greedy, ``max_tokens`` as in training) with the eval harness
(:func:`reasonkit.api.evaluate_rows`, the public API: training's one way into the evaluation layer), into ``OUTPUT/eval/step-N`` (``samples.jsonl`` +
``summary.json``, readable by ``reasonkit report``); a ``step-N`` directory already there is
replaced, never resumed, since it holds another policy's completions. Generation uses the live policy through a
thin :class:`~reasonkit.engine.types.Backend` over
:func:`~reasonkit.engine.hf.generate_with_model`, so no second model is loaded. The
verifiers are the benchmark's own (e.g. gsm8k strict + flexible, stepwise, format), then each
verifier of the training reward that is not among them (``--rewards gsm8k`` on an ``rg:`` task is
scored on held-out items too): what is trained is watched on unseen items, next to what the
benchmark calls accuracy.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

from reasonkit.api import evaluate_rows
from reasonkit.engine.types import Backend
from .heldout import heldout_items, heldout_metrics, heldout_verifiers
from reasonkit.tasks.registry import get_benchmark
from reasonkit.verifiers.compose import parse_expression
from reasonkit.engine.hf import generate_with_model


class LivePolicyBackend(Backend):
    """The trainer's model as an eval backend (base = the current policy; no adapter switching)."""

    name = "hf-live"

    def __init__(self, model, tokenizer):
        self.model, self._tokenizer = model, tokenizer

    def generate(self, prompts: Sequence[str], sampling, adapter: str | None = None, progress=None):
        if adapter is not None:
            raise ValueError("the live policy serves no named adapters")
        return generate_with_model(self.model, self._tokenizer, prompts, sampling, progress=progress)

    def add_adapter(self, adapter) -> None:
        raise NotImplementedError("the live policy serves no named adapters")

    @property
    def tokenizer(self):
        return self._tokenizer


def evaluate_policy(cfg, model, tokenizer, step: int, output_dir: str | Path,
                    rows_out: list | None = None) -> dict[str, Any]:
    """Evaluate the live policy; returns the headline metrics (``eval/<verifier>`` accuracies) and
    ``heldout/<verifier>`` (:mod:`reasonkit.grpo.heldout`); the eval rows are appended to ``rows_out``."""
    out = Path(output_dir) / "eval" / f"step-{step}"
    # A directory already there holds another policy's completions (a re-run into the same output, a
    # resume from an older checkpoint); the eval harness would resume from it without generating.
    # This policy is evaluated afresh (issue 23 item 9).
    if out.exists():
        shutil.rmtree(out)
    rows, summary = evaluate_rows(model=cfg.model, benchmark=cfg.dataset, backend="hf", split=cfg.eval_split,
                                  limit=cfg.eval_limit, n=1, temperature=0.0, max_tokens=cfg.max_tokens, seed=cfg.seed,
                                  data=cfg.data, output=str(out),
                                  template=cfg.template, system=cfg.system, prefill=cfg.prefill, raw=cfg.raw,
                                  constant_prompt=cfg.constant_prompt, columns=dict(cfg.columns), verifiers=eval_verifiers(cfg),
                                  engine=LivePolicyBackend(model, tokenizer), show=False)

    if rows_out is not None:
        rows_out.extend(rows)
    return {**{f"eval/{k}": v for k, v in _headline(summary).items()},
            **heldout_metrics(heldout_items(rows, heldout_verifiers(cfg)))}


def eval_verifiers(cfg) -> tuple[str, ...]:
    """The benchmark's own verifiers (none for ``custom``), then the reward's verifiers not among them,
    then the held-out verifiers (``eval_verifiers``) not among those."""
    reward = tuple(parse_expression(cfg.reward_spec))
    own = () if cfg.dataset == "custom" else tuple(get_benchmark(cfg.dataset, seed=cfg.seed).verifiers)
    out = own + tuple(v for v in reward if v not in own)
    if getattr(cfg, "eval_verifiers", None):
        out += tuple(v for v in cfg.eval_verifiers if v not in out)
    return out


def _headline(summary: dict[str, Any]) -> dict[str, float]:
    """Accuracy per verifier of the (only) adapter, whatever the summary nesting looks like."""
    out: dict[str, float] = {}
    per_adapter = summary.get("adapters") or summary.get("metrics") or {}
    base = per_adapter.get("base", per_adapter) if isinstance(per_adapter, dict) else {}
    verifiers = base.get("verifiers", base) if isinstance(base, dict) else {}
    for name, metrics in (verifiers.items() if isinstance(verifiers, dict) else []):
        if isinstance(metrics, dict) and isinstance(metrics.get("accuracy"), (int, float)):
            out[name] = float(metrics["accuracy"])
    return out
