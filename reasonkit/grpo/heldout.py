"""The held-out signal beside the reward: which verifiers, ``heldout/<verifier>`` and the alarm's display.

**Which verifiers** (``TrainConfig.eval_verifiers``, :func:`heldout_verifiers`). Given, the names
listed (single registered verifiers, not weighted expressions). Left out, the task's headline
verifier, chosen from the data set alone and never from ``rewards``, so that what is watched is
not what is paid for: a benchmark's first verifier (``gsm8k`` -> ``gsm8k`` strict, ``math500`` ->
``math``, ``countdown`` -> ``countdown``), ``rg:TASK`` -> ``rg:TASK`` (reasoning-gym's own scorer).
``custom`` has no headline of its own: the first reward term that is not a format check is used,
which is then not independent of the reward (name one with ``--eval-verifiers``).

**The signal.** Every periodic eval (``eval_steps``) scores the held-out items with these verifiers
too (:mod:`reasonkit.grpo.evaluation`); :func:`heldout_items` reads each item's correctness from the
eval rows and :func:`heldout_metrics` gives ``heldout/<verifier>`` (share of scored items right),
which goes into ``metrics.jsonl``, the progress bar and the trackers next to ``reward``.

**The alarm** is decided in :mod:`reasonkit.grpo.divergence`; :func:`reward_examples` picks three
eval completions that earned reward (weighted sum of the reward's terms, as the eval scored them,
above 0; with ``score_truncated`` a truncated completion counts with the score training paid it) but
fail the held-out verifier, and :func:`warning_panel` renders the red warning.
Importing this module imports nothing heavy.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from .config_checks import ConfigError
from reasonkit.verifiers import VerifierLookupError, resolve
from reasonkit.tasks.registry import get_benchmark
from reasonkit.verifiers.compose import parse_expression
from .divergence import DivergenceMonitor

FORMAT_CHECKS = ("format", "format_soft", "stepwise")  # pay for the form of a completion, not its answer
EXAMPLES = 3


def check_eval_verifiers(value: Any) -> tuple[str, ...] | None:
    """The config value as a tuple of names (None stays None); a bad one raises ConfigError."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"eval_verifiers = {value!r}: give verifier names, e.g. gsm8k or [gsm8k, math]")
    names = tuple(value)
    if not names:
        raise ConfigError("eval_verifiers is empty: name at least one verifier, or leave it out for the task's own")

    for name in names:
        try:
            spec = resolve(name)
        except VerifierLookupError as exc:
            raise ConfigError(f"eval_verifiers {name!r}: {exc}") from None
        if hasattr(spec, "components"):
            raise ConfigError(f"eval_verifiers {name!r}: name single verifiers (comma-separated), not a weighted sum")
    if len(set(names)) != len(names):
        raise ConfigError(f"eval_verifiers {list(names)}: a verifier is listed twice")
    return names


def default_heldout_verifiers(dataset: str, reward_spec: str, seed: int = 0) -> tuple[str, ...]:
    """The task's headline verifier (see the module docstring for the rule)."""
    if dataset.startswith("rg:"):
        return (f"rg:{dataset[3:].partition(':')[0]}",)
    if dataset == "custom":
        terms = list(parse_expression(reward_spec))
        return (next((t for t in terms if t not in FORMAT_CHECKS), terms[0]),)

    return (get_benchmark(dataset, seed=seed).verifiers[0],)


def heldout_verifiers(cfg) -> tuple[str, ...]:
    """``cfg.eval_verifiers``, or the default rule."""
    given = getattr(cfg, "eval_verifiers", None)
    return tuple(given) if given else default_heldout_verifiers(cfg.dataset, cfg.reward_spec, cfg.seed)


def heldout_items(rows: Iterable[Mapping[str, Any]], verifiers: Iterable[str]) -> dict[str, dict[str, bool]]:
    """``{verifier: {item id: correct}}`` from eval rows (first sample of each item; unscored left out)."""
    out: dict[str, dict[str, bool]] = {v: {} for v in verifiers}
    for row in rows:
        if row.get("sample", 0) != 0:
            continue
        for v, items in out.items():
            correct = row.get(f"{v}.correct")
            if correct is not None:
                items[str(row["item_id"])] = bool(correct)
    return out


def heldout_metrics(items: Mapping[str, Mapping[str, bool]]) -> dict[str, float]:
    """``heldout/<verifier>``: the share of scored held-out items that are right."""
    return {f"heldout/{v}": (sum(c.values()) / len(c) if c else math.nan) for v, c in items.items()}


def paid_score(row: Mapping[str, Any], name: str, score_truncated: bool = False) -> Any:
    """The score the training reward term ``name`` pays for an eval row: the eval's score, except that
    with ``score_truncated`` a completion the eval marked ``truncated`` is paid what the verifier said
    of it (``details.untruncated``), as training pays it."""
    if score_truncated and row.get(f"{name}.reason") == "truncated":
        untruncated = (row.get(f"{name}.details") or {}).get("untruncated") or {}
        if "score" in untruncated:
            return untruncated["score"]
    return row.get(f"{name}.score")


def reward_examples(rows: Iterable[Mapping[str, Any]], weights: Mapping[str, float], verifier: str,
                    k: int = EXAMPLES, score_truncated: bool = False) -> list[dict[str, Any]]:
    """Up to ``k`` eval completions that earned reward (as training pays it: see :func:`paid_score`)
    but that ``verifier`` says are wrong."""
    out = []
    for row in rows:
        if row.get(f"{verifier}.correct") is not False:
            continue
        scores = [paid_score(row, name, score_truncated) for name in weights]
        if any(s is None for s in scores):
            continue
        reward = sum(w * s for w, s in zip(weights.values(), scores))
        if reward > 0:
            out.append({"item_id": row.get("item_id"), "completion": row.get("completion", ""), "reward": reward,
                        "reason": row.get(f"{verifier}.reason")})
        if len(out) == k:
            break
    return out


def warning_panel(divergence) -> Any:
    """The red ``REWARD HACKING SUSPECTED`` warning with its example completions (a rich renderable)."""
    from rich.console import Group
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    table = Table(show_lines=True, expand=True)
    for col in ("item", "reward", f"{divergence.verifier} says", "completion"):
        table.add_column(col, overflow="fold")
    for e in divergence.examples:
        table.add_row(escape(str(e["item_id"])), f"{e['reward']:.2f}", escape(str(e["reason"])),
                      escape(str(e["completion"])[:400]))
    parts = [f"[bold red]{escape(divergence.message())}"]
    if divergence.examples:
        parts += ["Completions of the last eval that earned reward but fail the held-out verifier:", table]
    return Panel(Group(*parts), title="[bold red]REWARD HACKING SUSPECTED", border_style="red")


def divergence_monitor(verifier):
    """A :class:`~reasonkit.grpo.divergence.DivergenceMonitor` for the training reward ``verifier``."""
    return DivergenceMonitor(getattr(verifier, "weights", None) or {getattr(verifier, "name", "reward"): 1.0})


def divergence_alarms(monitor, step: int, rows: list, cfg, logger) -> list[dict[str, Any]]:
    """Close the monitor's window at this eval; show each divergence (red, with examples) and return
    the records for ``alarms`` in ``metrics.jsonl`` (empty: silent)."""
    found = monitor.on_eval(step, heldout_items(rows, heldout_verifiers(cfg)))
    for d in found:
        d.examples = reward_examples(rows, monitor.weights, d.verifier,
                                     score_truncated=bool(getattr(cfg, "score_truncated", False)))
        logger.print(warning_panel(d))
    return [d.record() for d in found]
