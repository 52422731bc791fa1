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

# One-line help per flag (the semantics are documented on TrainConfig and in docs/train.md).
_HELP = {
    "model": "Hub id or local directory. Default: the embedded SmolLM2-135M-Instruct.",
    "dtype": "auto | bf16 | fp32.",
    "lora_r": "LoRA rank; 0 = full fine-tuning.",
    "lora_target_modules": "Modules that get LoRA (or all-linear).",
    "dataset": "countdown | gsm8k | math500 | custom (with --data) | rg:TASK[:difficulty=0,size=N,KEY=V] "
               "(reasoning-gym).",
    "data": "Data file or hub:org/name (custom, or to replace a built-in's data).",
    "rewards": "Weighted verifiers, e.g. countdown+0.5*format. Default: the data set's.",
    "prefill": "Assistant pre-fill of every prompt ('' removes the benchmark's).",
    "group_size": "Completions per prompt (G).",
    "prompts_per_step": "Prompts per optimiser step over all processes (default 2).",
    "batch_size": "Completions per step (= prompts_per_step x group_size); give one of the two.",
    "max_steps": "Generation batches to train on.",
    "max_tokens": "Max new tokens per completion.",
    "num_iterations": "mu: optimiser updates per generation batch.",
    "loss_type": "grpo | bnpo | dapo | dr_grpo.",
    "scale_rewards": "group | batch | none (Dr. GRPO).",
    "zero_variance": "keep | skip groups whose rewards are all equal.",
    "beta": "KL weight; 0 runs no reference model.",
    "kl_estimator": "weighted_k3 (k3 x ratio: reverse-KL gradient, TRL's default) | k3 (DeepSeekMath's).",
    "importance_sampling_level": "token (GRPO) | sequence (GSPO; use with --loss-type grpo, small --epsilon).",
    "backend": "Rollouts on hf (the live policy), vllm (engine in this process) or vllm-server (--base-url; "
               "needs LoRA).",
    "vllm_sync": "auto | weights (merged, loaded into the engine in place; vllm) | adapter (a new LoRA id).",
    "base_url": "vllm-server: the base URL of the server (or of each replica) ending in /v1",
    "importance_sampling": "auto (token_truncate on vllm-server, else none) | none | token_truncate | "
                           "token_mask | sequence_truncate | sequence_mask.",
    "backend_options": "Engine options, e.g. gpu_memory_utilization=0.3,max_model_len=2048.",
    "output": "Run directory (default runs/train/<dataset>-<model>).",
    "save_steps": "Checkpoint every N steps (0 = only at the end).",
    "eval_steps": "Evaluate on eval_split every N steps (0 = never).",
    "report_to": "none | tensorboard | wandb.",
}
_SKIP = {"resume"}  # handled by hand: --resume alone means "latest"
_LISTS = {"lora_target_modules", "report_to", "base_url"}  # comma-separated on the command line
_DICTS = {"columns", "backend_options"}  # KEY=VALUE,KEY=VALUE (values read as YAML scalars)


_OPTIONS = field_options(TrainConfig, help=_HELP, skip=_SKIP, lists=_LISTS, dicts=_DICTS)


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
