"""What a GRPO run shows and records: a rich progress bar, ``metrics.jsonl``, ``completions.jsonl``.

Every step the main process appends one JSON object to ``OUTPUT/metrics.jsonl`` (the same numbers the
progress bar shows: reward, each verifier's reward, KL, loss, clip ratio, completion length,
truncation share, zero-variance share, effective batch size, seconds per step). Every
``log_completions_steps`` steps a few sampled completions with their rewards go to
``OUTPUT/completions.jsonl``. Every step also gets the hack audit's ``audit/<class>`` shares
(:mod:`reasonkit.audit`, over the main process's completions). Optional accelerate trackers (tensorboard,
wandb) receive the same metrics through ``Accelerator.log``; they are off unless the config names them.
The held-out signal ``heldout/<verifier>`` (:mod:`reasonkit.grpo.heldout`) is one of those metrics at
every eval step, and stays on the progress bar until the next eval. TensorBoard event
files go to ``OUTPUT/<run name>/`` (``tensorboard --logdir OUTPUT``); wandb writes under ``OUTPUT/wandb``
and runs offline (``wandb sync`` uploads later) unless ``WANDB_MODE`` says otherwise or
``WANDB_API_KEY`` is set; the key itself is only ever read by wandb from the environment.
A resumed run appends to the same files; rows carry their ``step`` so a reader can de-duplicate.
Alarms (:mod:`reasonkit.grpo.alarms`) are printed in red, stay on the progress bar until a healthy
step, and are recorded in the step's ``metrics.jsonl`` row under ``alarms``.

``rollout_metrics`` computes a step's rollout numbers over all processes; ``completion_rows`` picks
the sample completions.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from reasonkit.audit import rollout_records

# Short labels for the progress bar (the full keys go to metrics.jsonl).
_BAR_KEYS = [("reward", "reward"), ("kl", "kl"), ("loss", "loss"), ("clip_ratio", "clip"),
             ("completion_length", "len"), ("truncated", "trunc"), ("zero_variance", "zv")]


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"
    return str(x)


def tracker_init_kwargs(output_dir: str | Path, trackers: list[str]) -> dict[str, dict]:
    """``init_kwargs`` for ``Accelerator.init_trackers``: wandb keeps its files in the run directory."""
    if "wandb" not in trackers:
        return {}
    mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    return {"wandb": {"dir": str(output_dir), "mode": mode, "name": Path(output_dir).name}}


class RunLogger:
    """Progress bar + JSONL files. Only the main process writes; others get a silent instance."""

    def __init__(self, output_dir: str | Path, *, total_steps: int, start_step: int = 0, enabled: bool = True,
                 show_progress: bool = True, accelerator=None, use_trackers: bool = False):
        self.enabled = enabled
        self.dir = Path(output_dir)
        self.accelerator = accelerator
        self.use_trackers = use_trackers
        self._progress = None
        self._alarm = ""
        self._heldout: dict[str, Any] = {}  # the last eval's heldout/<verifier>, kept on the bar until the next
        if enabled and show_progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                      TimeRemainingColumn(), TextColumn("{task.fields[stats]}"),
                                      transient=False)
            self._task = self._progress.add_task("train", total=total_steps, completed=start_step, stats="")
            self._progress.start()

    def log_step(self, step: int, metrics: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.dir / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps({"step": step, **metrics}) + "\n")
            if self._progress is not None:
                parts = [f"{label} {_fmt(metrics[key])}" for key, label in _BAR_KEYS if key in metrics]
                parts += [f"{k.split('/', 1)[1]} {_fmt(v)}" for k, v in metrics.items() if k.startswith("rewards/")]
                self._heldout.update({k: v for k, v in metrics.items() if k.startswith("heldout/")})
                parts += [f"{k} {_fmt(v)}" for k, v in self._heldout.items()]
                stats = " · ".join(parts) + (f" [bold red]{self._alarm}" if self._alarm else "")
                self._progress.update(self._task, completed=step, stats=stats)
        if self.use_trackers and self.accelerator is not None:
            self.accelerator.log({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, step=step)

    def alarm(self, messages: list[str]) -> None:
        """Show ``messages`` loudly (red, on the log and the bar); an empty list clears the bar's flag."""
        if not messages:
            self._alarm = ""
            return
        self._alarm = "NO LEARNING SIGNAL: see warning"
        for message in messages:
            self.print(f"[bold red]WARNING: {message}")

    def log_completions(self, step: int, rows: list[dict[str, Any]]) -> None:
        if not self.enabled:
            return
        with open(self.dir / "completions.jsonl", "a") as fh:
            for row in rows:
                fh.write(json.dumps({"step": step, **row}, default=str) + "\n")

    def print(self, message: str) -> None:
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.console.print(message)
        else:
            from rich.console import Console

            Console(stderr=True).print(message)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def rollout_metrics(acc, cfg, rollouts, all_rewards, zv_all, cmask) -> dict[str, float]:
    """Reward (mean, std, per verifier), length, truncation, zero-variance and unscored counts of one
    step over every process (``acc`` gathers; ``all_rewards`` / ``zv_all`` are already global)."""
    import torch

    lengths = acc.gather(cmask.sum(1).float().to(acc.device)).cpu()
    trunc = acc.gather(rollouts.truncated.float().to(acc.device)).cpu()
    unscored = float(acc.reduce(torch.tensor([float(rollouts.unscored)], device=acc.device), "sum"))
    m: dict[str, float] = {
        "reward": float(torch.nanmean(all_rewards)) if (~torch.isnan(all_rewards)).any() else float("nan"),
        "reward_std": float(all_rewards[~torch.isnan(all_rewards)].std()) if all_rewards.numel() > 1 else 0.0,
    }
    for name in sorted(rollouts.per_verifier):
        vals = acc.gather(rollouts.per_verifier[name].to(acc.device)).cpu()
        m[f"rewards/{name}"] = float(torch.nanmean(vals)) if (~torch.isnan(vals)).any() else float("nan")
    groups = zv_all.numel()
    m.update({
        "completion_length": float(lengths.mean()),
        "truncated": float(trunc.mean()),
        "zero_variance": float(zv_all.float().mean()),
        "effective_batch": float((groups - int(zv_all.sum())) * cfg.group_size
                                 if cfg.zero_variance == "skip" else groups * cfg.group_size),
        "unscored": unscored,
    })
    return m


def completion_rows(rollouts, k: int) -> list[dict[str, Any]]:
    """The first ``k`` completions of a step with their rewards, for ``completions.jsonl``."""
    return [{"prompt": rollouts.prompts[i], "completion": rollouts.texts[i], "reward": float(rollouts.rewards[i]),
             **{f"rewards/{n}": float(v[i]) for n, v in rollouts.per_verifier.items()},
             "finish_reason": rollouts.finish_reasons[i], "num_tokens": len(rollouts.completion_ids[i]),
             "group": i // rollouts.group_size}
            for i in range(min(k, len(rollouts)))]


def audit_records(rollouts, task: tuple[str, list[dict]] | None = None) -> list:
    """This process's completions of a step as :class:`reasonkit.audit.Record` (for ``audit/<class>``).

    ``task``: (name, one verdict per completion) of a task verifier the reward lacks (a format-only
    reward), added to each record as its primary verifier (``format_paid_task_failed``)."""
    records = rollout_records(rollouts.prompts, rollouts.texts, rollouts.finish_reasons,
                              [len(c) for c in rollouts.completion_ids], rollouts.group_size,
                              {n: v.tolist() for n, v in rollouts.per_verifier.items()})
    if task is not None and task[0] not in rollouts.per_verifier:
        name, verdicts = task
        for rec, verdict in zip(records, verdicts, strict=True):
            rec.verdicts[name] = verdict
            rec.primary = name
    return records
