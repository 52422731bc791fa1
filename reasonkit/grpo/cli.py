"""``reasonkit train``: GRPO fine-tuning with verifier rewards.

Every field of :class:`reasonkit.grpo.config.TrainConfig` is a flag (``lora_r`` -> ``--lora-r``,
booleans as ``--x/--no-x``, lists comma-separated); flags given on the command line override the
values of ``--config FILE``, which override the dataclass defaults. The options are generated from
the dataclass so the command line can never drift from the config. The resolved config is written to
``OUTPUT/config.yaml`` before training starts. Bad input (unknown field, failed invariant, unreadable
file) is one line on stderr and exit code 2.

Multi-process: ``accelerate launch [--multi_gpu|--config_file train/accelerate/...] -m reasonkit train ...``
(or ``accelerate launch $(which reasonkit) train ...``).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from reasonkit.config_cli import field_options, overrides
from reasonkit.errors import ReasonkitError
from .checkpoint_check import check_checkpoint

try:
    from .config import ConfigError, TrainConfig
except ModuleNotFoundError as exc:  # config module not there yet: leave `train` out, keep the other commands
    if exc.name != "reasonkit.grpo.config":
        raise
    raise ModuleNotFoundError(str(exc), name=__name__) from exc

# Every TrainConfig field is a flag, its help and form (lists, pairs) from the field's metadata; resume
# (metadata cli: False) is the hand-written --resume [PATH] below.
_OPTIONS = field_options(TrainConfig)


def _run(config_file: str | None, resume: str | None, quiet: bool, overrides: dict[str, Any]) -> None:
    try:
        cfg = TrainConfig.from_yaml(config_file) if config_file else TrainConfig()
        cfg = cfg.with_overrides(**overrides, resume=resume)
    except ConfigError as exc:
        raise ReasonkitError(exc.message) from None
    out = cfg.run_dir()
    resume_path = _resume_path(cfg.resume, out)
    if resume_path is None and out.is_dir() and any(out.glob("checkpoint-*")):
        raise ReasonkitError(f"output directory {out} already holds checkpoints; pass --resume to continue "
                             "that run, or choose another --output")

    # lazy: reasonkit.grpo.trainer imports numpy, torch
    from .trainer import GRPOTrainer, TrainingDiverged

    try:
        trainer = GRPOTrainer(cfg, show_progress=not quiet)
    except ConfigError as exc:
        raise ReasonkitError(exc.message) from None
    if trainer.accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        cfg.to_yaml(out / "config.yaml")
    try:
        result = trainer.train(resume_from=resume_path)
    except TrainingDiverged as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(3)
    if trainer.accelerator.is_main_process:
        state = "interrupted" if result.interrupted else "done"
        steps = f"{result.steps_done} step{'' if result.steps_done == 1 else 's'}"
        click.echo(f"{state}: {steps}; last checkpoint {result.last_checkpoint}")
    if result.interrupted:
        sys.exit(130)


def _resume_path(resume: str | None, out: Path) -> Path | None:
    """The checkpoint to resume from, its files checked (one line naming a damaged file) before any model loads."""
    path = _find_checkpoint(resume, out)
    if path is not None:
        check_checkpoint(path)
    return path


def _find_checkpoint(resume: str | None, out: Path) -> Path | None:
    # lazy: reasonkit.grpo.checkpoint imports numpy, torch
    from .checkpoint import STATE_FILE, latest_checkpoint

    if resume is None:
        return None
    if resume == "latest":
        path = latest_checkpoint(out)
        if path is None:
            raise ReasonkitError(f"--resume: no checkpoint-N directory with {STATE_FILE} in {out}")
        return path
    path = Path(resume)
    if not (path / STATE_FILE).is_file():
        raise ReasonkitError(f"--resume {resume}: not a checkpoint directory (no {STATE_FILE})")
    return path


def _list_value(name: str, parts: tuple[str, ...]) -> Any:
    # one tracker, or peft's "all-linear", is a plain string in TrainConfig
    return parts[0] if len(parts) == 1 and name == "report_to" or parts == ("all-linear",) else parts


def _command(**kwargs: Any) -> None:
    """GRPO fine-tuning with verifier rewards (LoRA or full), on the embedded model by default."""
    config_file = kwargs.pop("config_file")
    resume = kwargs.pop("resume")
    quiet = kwargs.pop("quiet")
    flags = overrides(_OPTIONS, kwargs, list_value=_list_value)
    _run(config_file, resume, quiet, flags)


train_cmd = click.Command(
    "train",
    callback=_command,
    help=_command.__doc__ + "\n\nFlags override the values of --config FILE (YAML with the same field names).",
    params=[
        click.Option(["--config", "config_file"], type=click.Path(dir_okay=False), default=None,
                     help="YAML config file (field names as the flags, with underscores)."),
        click.Option(["--resume", "resume"], is_flag=False, flag_value="latest", default=None, metavar="[PATH]",
                     help="Continue from a checkpoint: PATH, or the latest one in --output when no PATH is given."),
        click.Option(["--quiet", "-q", "quiet"], is_flag=True, default=False, help="No progress bar."),
        *[opt for _, _, opt in _OPTIONS],
    ],
)
