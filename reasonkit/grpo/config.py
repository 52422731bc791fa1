"""``TrainConfig``: everything one ``reasonkit train`` run depends on, checked up front, saved with the run.

Sources, later ones win: the defaults below (a quick LoRA run on the embedded SmolLM2), a YAML
file (``TrainConfig.from_yaml``; its keys are exactly the field names), then command-line flags
(``.with_overrides(**flags)``, where a flag left at None was not given). Every invariant is
checked in ``__post_init__`` and a violation raises :class:`ConfigError` — a ``ValueError`` that
is also a :class:`reasonkit.errors.ReasonkitError`, so the CLI prints one line and exits 2 — with a
message that says the fix. The resolved config is written to the run directory (``to_yaml``).

Batch vocabulary (all counts are completions unless the name says prompts):

- ``group_size`` G completions are sampled per prompt;
- ``prompts_per_step`` prompts per optimiser step, over all processes; the step's batch is
  ``batch_size = prompts_per_step * G`` completions (give either field; both must agree);
- each process trains on ``batch_size / num_processes`` completions per step, split into
  ``gradient_accumulation_steps`` micro-batches of ``per_device_batch_size`` completions
  (derived when left out); :meth:`TrainConfig.check_world` checks this once the number of
  processes is known.

Importing this module imports neither torch nor transformers.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from ..config_cli import check_fields, read_yaml, run_dir
from ..errors import ReasonkitError, check_keys
from .config_checks import (ConfigError, _did_you_mean, check_batch, check_choices, check_data, check_numbers,
                            check_server)
from reasonkit.engine import check_option_values
from reasonkit.engine.models import adapter_shape
from reasonkit.verifiers import VerifierLookupError, resolve
from .heldout import check_eval_verifiers  # held-out signal
from .choices import IMPORTANCE_SAMPLING_LEVELS, KL_ESTIMATORS, LOSS_TYPES, SCALE_REWARDS, ZERO_VARIANCE
from .config_checks import BACKENDS, DTYPES, LR_SCHEDULERS, VLLM_SYNC
from .is_correction import IS_MODES

IS_CHOICES = ("auto", *IS_MODES)
SPLITS = ("train", "test")

# The reward each built-in data set trains on when ``rewards`` is not given.
DEFAULT_REWARDS = {"countdown": "countdown+format", "gsm8k": "gsm8k+0.5*format", "math500": "math+0.5*format"}


@dataclass
class TrainConfig:
    # --- model -------------------------------------------------------------------------------------
    model: str | None = field(
        default=None, metadata={"help": "hub id or local directory; None = the embedded SmolLM2-135M-Instruct"})
    dtype: Literal[DTYPES] = field(
        default="auto", metadata={"help": "auto (bf16 on a GPU that supports it, else fp32) | bf16 | fp32"})
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "recompute activations in the backward pass (less memory, slower)"})
    init_adapter: str | None = field(
        default=None, metadata={"help": "start from this LoRA adapter (e.g. a `reasonkit sft` warm start); its rank, "
                                       "alpha and target modules replace lora_r / lora_alpha / lora_target_modules"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank; 0 = full fine-tuning"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (scale = alpha / r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA branch"})
    lora_target_modules: Any = field(
        default=("q_proj", "k_proj", "v_proj", "o_proj"),
        metadata={"help": "modules that get LoRA: a list, or peft's 'all-linear'", "list": True})
    # --- data and rewards -----------------------------------------------------------------------------
    dataset: str = field(
        default="countdown", metadata={"help": "a benchmark of the eval harness: countdown | gsm8k | math500 | custom "
                                              "(with data) | rg:TASK[:difficulty=0,size=N,KEY=V] (reasoning-gym)"})
    data: str | None = field(
        default=None, metadata={"help": "file / hub id for custom (or to replace a built-in's data)"})
    split: Literal[SPLITS] = field(
        default="train", metadata={"help": "training split; periodic evaluation uses eval_split"})
    eval_split: Literal[SPLITS] = field(default="test", metadata={"help": "split used by the periodic evaluation"})
    columns: dict = field(default_factory=dict, metadata={"help": "template / verifier field -> data column"})
    template: str | None = field(
        default=None, metadata={"help": "user message with {fields}, or a .txt/.md/.jinja/.json/.yaml file"})
    system: str | None = field(default=None, metadata={"help": "replace the template's system prompt ('' removes it)"})
    prefill: str | None = field(default=None, metadata={"help": "replace the assistant pre-fill ('' removes it)"})
    raw: bool = field(default=False, metadata={"help": "plain-text prompt, no chat template (base models)"})
    constant_prompt: bool = field(default=False, metadata={"help": "accept a template with no {field}"})
    rewards: str | None = field(
        default=None, metadata={"help": "weighted verifiers, e.g. 'countdown+0.5*format'; None = the data set's "
                                       "default reward"})
    # --- GRPO -------------------------------------------------------------------------------------------
    group_size: int = field(default=4, metadata={"help": "completions per prompt (G)"})
    prompts_per_step: int | None = field(
        default=None, metadata={"help": "prompts per optimiser step, all processes (default 2)"})
    batch_size: int | None = field(
        default=None, metadata={"help": "completions per optimiser step = prompts_per_step * group_size; give one "
                                       "of the two"})
    per_device_batch_size: int | None = field(
        default=None, metadata={"help": "completions per micro-batch on one process (derived if None)"})
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "micro-batches per optimiser step on each process"})
    max_steps: int = field(default=10, metadata={"help": "optimiser steps (generation batches) to train on"})
    max_tokens: int = field(default=128, metadata={"help": "completion length limit (new tokens)"})
    temperature: float = field(
        default=1.0, metadata={"help": "sampling temperature of the rollouts (log-probs use the same)"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling of the rollouts (< 1: sampled from the "
                         "renormalised nucleus, trained on full-vocabulary log-probs: slightly off-policy)"})
    epsilon: float = field(
        default=0.2, metadata={"help": "lower clip range of the ratio (and upper, unless epsilon_high)"})
    epsilon_high: float | None = field(
        default=None, metadata={"help": "upper clip range (DAPO clip-higher, e.g. 0.28); None = epsilon"})
    beta: float = field(default=0.0, metadata={"help": "KL weight; 0 = no reference model is run"})
    kl_estimator: Literal[KL_ESTIMATORS] = field(
        default="weighted_k3", metadata={"help": "weighted_k3 (reverse-KL gradient, TRL's default) | k3 (the paper's)"})
    importance_sampling_level: Literal[IMPORTANCE_SAMPLING_LEVELS] = field(
        default="token", metadata={"help": "token (GRPO) | sequence (GSPO: one ratio per completion; use with "
                                          "loss_type grpo and a small epsilon)"})
    num_iterations: int = field(default=1, metadata={"help": "mu: optimiser passes over each generation batch"})
    scale_rewards: Literal[SCALE_REWARDS] = field(
        default="group", metadata={"help": "group | batch | none (Dr. GRPO)"})
    loss_type: Literal[LOSS_TYPES] = field(
        default="dapo", metadata={"help": "grpo | bnpo | dapo | dr_grpo (dapo is TRL 1.16's default)"})
    mask_truncated: bool = field(default=False, metadata={"help": "completions that hit max_tokens leave the loss"})
    score_truncated: bool = field(
        default=False, metadata={"help": "credit completions that hit max_tokens (default: reward 0, as eval scores "
                                         "them)"})
    zero_variance: Literal[ZERO_VARIANCE] = field(
        default="keep", metadata={"help": "keep | skip groups whose rewards are all equal"})
    # --- optimiser --------------------------------------------------------------------------------------
    learning_rate: float = field(default=5e-5, metadata={"help": "AdamW learning rate"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    warmup: float = field(default=0.0, metadata={"help": "linear warmup (any lr_scheduler): steps >= 1 or a fraction of max_steps"})
    lr_scheduler: Literal[LR_SCHEDULERS] = field(
        default="constant", metadata={"help": "transformers scheduler name: constant, linear, cosine, ..."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm; 0 = no clipping"})
    # --- generation backend ---------------------------------------------------------------------------
    backend: Literal[BACKENDS] = field(
        default="hf", metadata={"help": "rollouts on hf (the live policy), vllm (an engine in this job) or "
                                        "vllm-server (base_url; needs LoRA)"})
    backend_options: dict = field(default_factory=dict, metadata={
        "help": "options for the generation backend, e.g. gpu_memory_utilization=0.3,max_model_len=2048"})
    base_url: tuple = field(default=(), metadata={"help": "vllm-server: base URL(s) ending in /v1, comma-separated"})
    vllm_sync: Literal[VLLM_SYNC] = field(
        default="auto", metadata={"help": "engine sync after each step: auto (weights on vllm, adapter on "
                                          "vllm-server) | weights (merged, loaded in place) | adapter (a new LoRA id)"})
    importance_sampling: Literal[IS_CHOICES] = field(
        default="auto", metadata={"help": "sampler correction: auto | none | token_truncate | token_mask | "
                                          "sequence_truncate | sequence_mask"})
    importance_sampling_cap: float = field(default=3.0, metadata={"help": "cap C of the importance weights"})
    # --- run management -------------------------------------------------------------------------------
    seed: int = field(default=0, metadata={"help": "seed for data order, sampling and initialisation"})
    output: str | None = field(default=None, metadata={"help": "run directory; default runs/train/<dataset>-<model>"})
    save_steps: int = field(default=0, metadata={"help": "checkpoint every N steps (0 = only at the end)"})
    save_total_limit: int = field(default=0, metadata={"help": "keep the newest N checkpoints (0 = all)"})
    eval_steps: int = field(default=0, metadata={"help": "evaluate every N steps on eval_split (0 = never)"})
    eval_limit: int = field(default=32, metadata={"help": "items per periodic evaluation"})
    # held-out signal and divergence alarm (reasonkit.grpo.heldout, reasonkit.grpo.divergence)
    eval_verifiers: tuple | None = field(
        default=None, metadata={"help": "held-out verifiers logged as heldout/<name> at every eval and watched by "
                                "the divergence alarm; None = the task's headline verifier, chosen from the data "
                                "set, never from rewards: a benchmark's first verifier (gsm8k -> gsm8k, math500 -> "
                                "math, countdown -> countdown), rg:TASK -> rg:TASK, custom -> the first non-format "
                                "reward term"})
    logging_steps: int = field(default=1, metadata={"help": "write metrics every N steps"})
    log_completions_steps: int = field(
        default=10, metadata={"help": "sample completions to the log every N steps (0 = never)"})
    report_to: Any = field(default="none",
                           metadata={"help": "none | tensorboard | wandb, or a list of them", "list": True})
    resume: Any = field(  # --resume [PATH] is written by hand in reasonkit.grpo.cli (a bare --resume = latest)
        default=None, metadata={"cli": False,
                                "help": "None, 'latest' (newest checkpoint in output) or a checkpoint directory"})

    # ----------------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        check_fields(self, ConfigError)  # types (from the annotations), Literal choices, bounds
        if self.resume is not None and not isinstance(self.resume, (str, bool)):
            raise ConfigError(f"resume = {self.resume!r}: use 'latest' or a checkpoint directory")
        if isinstance(self.lora_target_modules, (list, tuple)):
            self.lora_target_modules = tuple(str(m) for m in self.lora_target_modules)
        self.columns = dict(self.columns or {})
        self.backend_options = dict(self.backend_options or {})
        if isinstance(self.report_to, (list, tuple)):
            self.report_to = tuple(self.report_to) or "none"
        if self.resume is True:
            self.resume = "latest"
        elif self.resume is False:
            self.resume = None
        self.base_url = (self.base_url,) if isinstance(self.base_url, str) else tuple(self.base_url or ())
        check_choices(self)
        self._take_init_adapter()
        check_server(self)

        check_option_values(self.backend_options)
        check_numbers(self)
        check_batch(self)
        check_data(self)
        self._check_rewards()

        self.eval_verifiers = check_eval_verifiers(self.eval_verifiers)

    def _take_init_adapter(self) -> None:
        """With ``init_adapter``, the LoRA shape is the adapter's (so the saved config says what trains)."""
        if self.init_adapter is None:
            return

        try:
            self.lora_r, self.lora_alpha, self.lora_target_modules = adapter_shape(self.init_adapter)
        except ReasonkitError as exc:
            raise ConfigError(f"init_adapter: {exc}") from None

    def _check_rewards(self) -> None:
        """Parse the reward expression against the verifier registry (imported only here)."""
        try:
            resolve(self.reward_spec)
        except VerifierLookupError as exc:
            raise ConfigError(f"rewards {self.reward_spec!r}: {exc}") from None

    # --- derived values -----------------------------------------------------------------------------------
    @property
    def reward_spec(self) -> str:
        """The reward expression in force (``rewards`` or the data set's default)."""
        if self.rewards:
            return self.rewards
        if self.dataset.startswith("rg:"):  # the task's own scorer, a little format
            return f"rg:{self.dataset[3:].partition(':')[0]}+0.2*format"
        return DEFAULT_REWARDS[self.dataset]

    @property
    def num_prompts_per_step(self) -> int:
        if self.prompts_per_step is not None:
            return self.prompts_per_step
        if self.batch_size is not None:
            return self.batch_size // self.group_size
        return 2

    @property
    def completions_per_step(self) -> int:
        return self.num_prompts_per_step * self.group_size

    @property
    def use_lora(self) -> bool:
        return self.lora_r > 0

    @property
    def warmup_steps(self) -> int:
        return int(self.warmup) if self.warmup >= 1 else int(math.ceil(self.warmup * self.max_steps))

    @property
    def trackers(self) -> list[str]:
        t = [self.report_to] if isinstance(self.report_to, str) else list(self.report_to)
        return [x for x in t if x != "none"]

    def micro_batch_size(self, num_processes: int = 1) -> int:
        """Completions per forward/backward on one process (``per_device_batch_size`` or derived)."""
        self.check_world(num_processes)
        if self.per_device_batch_size is not None:
            return self.per_device_batch_size
        return self.completions_per_step // (num_processes * self.gradient_accumulation_steps)

    def check_world(self, num_processes: int) -> None:
        """Check the batch against the number of processes (known only at launch)."""
        n, ga, total = num_processes, self.gradient_accumulation_steps, self.completions_per_step
        if total % n:
            raise ConfigError(f"the {total} completions of a step (prompts_per_step {self.num_prompts_per_step} x "
                              f"group_size {self.group_size}) cannot be split over {n} processes: make "
                              f"prompts_per_step x group_size a multiple of {n}")
        per_process = total // n
        if per_process % ga:
            raise ConfigError(f"{per_process} completions per process cannot be split into "
                              f"gradient_accumulation_steps {ga} micro-batches: use a divisor of {per_process}")
        if self.per_device_batch_size is not None and self.per_device_batch_size * ga != per_process:
            raise ConfigError(
                f"per_device_batch_size {self.per_device_batch_size} x gradient_accumulation_steps {ga} x "
                f"{n} processes = {self.per_device_batch_size * ga * n}, but a step has {total} completions: "
                f"set per_device_batch_size to {per_process // ga} or leave it out")

    def deepspeed_values(self, num_processes: int) -> dict[str, Any]:
        """The entries that ``train/accelerate/ds_zero*.json`` leave as ``"auto"``, from this config.

        accelerate can only fill the batch entries from a prepared DataLoader, which the GRPO loop
        does not have; set these on ``accelerator.state.deepspeed_plugin.deepspeed_config`` before
        ``accelerator.prepare``. DeepSpeed's engine then divides each micro-batch loss by
        ``gradient_accumulation_steps`` itself (see :mod:`reasonkit.grpo.loss`).
        """
        micro = self.micro_batch_size(num_processes)
        ga = self.completions_per_step // (num_processes * micro)
        return {"train_micro_batch_size_per_gpu": micro, "gradient_accumulation_steps": ga,
                "train_batch_size": micro * ga * num_processes,
                "gradient_clipping": self.max_grad_norm if self.max_grad_norm > 0 else 0.0}

    def resolved_vllm_sync(self) -> str:
        """``weights`` or ``adapter`` (``auto``: adapter for a vllm-server, weights in process)."""
        if self.vllm_sync == "auto":
            return "adapter" if self.backend == "vllm-server" else "weights"
        return self.vllm_sync

    def resolved_dtype(self):  # -> torch.dtype
        import torch

        if self.dtype == "bf16":
            return torch.bfloat16
        if self.dtype == "fp32":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32

    def run_dir(self) -> Path:
        """``output``, else ``runs/train/<dataset>-<model>`` (:func:`reasonkit.config_cli.run_dir`)."""
        return run_dir("train", self.output, self.dataset, self.model)

    # --- YAML and overrides ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else (dict(v) if isinstance(v, dict) else v)
        return out

    def to_yaml(self, path: str | Path) -> Path:
        import yaml

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> "TrainConfig":
        check_keys(data, (f.name for f in fields(cls)), where, ConfigError)
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        data = read_yaml(path, ConfigError)  # one line starting "config PATH" for a bad file
        try:
            return cls.from_dict(data, where=f"config {path}")
        except ConfigError as exc:
            msg = exc.message
            raise ConfigError(msg if msg.startswith(f"config {path}") else f"config {path}: {msg}") from None

    def with_overrides(self, **flags: Any) -> "TrainConfig":
        """A new config with every flag that is not None applied (flags use the field names)."""
        names = {f.name for f in fields(self)}
        unknown = [k for k in flags if k not in names]
        if unknown:
            raise ConfigError(f"flag: {_did_you_mean(unknown[0], sorted(names), 'option')}")
        given = {k: v for k, v in flags.items() if v is not None}
        if not given:
            return self
        # A step's size given one way on the command line replaces the other way from the file.
        if "batch_size" in given and "prompts_per_step" not in given:
            given["prompts_per_step"] = None
        elif "prompts_per_step" in given and "batch_size" not in given:
            given["batch_size"] = None
        return dataclasses.replace(self, **given)
