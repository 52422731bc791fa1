"""The invariants of :class:`reasonkit.grpo.config.TrainConfig` (choices, engine, paths, numeric ranges,
batch sizes), as functions that ``TrainConfig.__post_init__`` calls, and the name lists they check
against; the field definitions stay in :mod:`reasonkit.grpo.config`, the per-field type checks are
:func:`reasonkit.config_cli.check_fields`. Each violation raises :class:`ConfigError` with a message
that says the fix. Standard library only (the data-set registry and the sampler checks load lazily)."""
from __future__ import annotations

from pathlib import Path

from ..errors import ReasonkitError
from reasonkit.tasks.registry import benchmark_names
from reasonkit.verifiers.base import did_you_mean
from .is_correction import SAMPLER_BACKENDS, check


class ConfigError(ReasonkitError, ValueError):
    """A bad training configuration: one line that names the field (or file and key) and the fix."""


# the rollout engines: the in-process hf / vllm backends, or a vLLM server (a training choice, unlike eval's)
BACKENDS = ("hf", "vllm", "vllm-server")
VLLM_SYNC = ("auto", "weights", "adapter")  # how the engine gets the new policy (reasonkit.engine.vllm_sync)
DTYPES = ("auto", "bf16", "fp32")
TRACKERS = ("none", "tensorboard", "wandb")
# transformers.get_scheduler names (listed here so that reading a config does not import transformers)
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts",
                 "polynomial", "inverse_sqrt")

def _known_dataset(name: str) -> bool:
    return name.startswith("rg:") or name in _dataset_names()


def _dataset_names() -> tuple[str, ...]:
    """The task registry's benchmark names."""
    return tuple(benchmark_names())


def _did_you_mean(name: str, choices: tuple[str, ...] | list[str], kind: str) -> str:
    return str(did_you_mean(name, tuple(choices), kind))

def check_choices(cfg) -> None:
    """The data set is a benchmark name (with "did you mean"); trackers and target modules are well formed.

    The fixed choices (loss type, backend, ...) are ``Literal`` fields, checked with the field types."""
    if not _known_dataset(cfg.dataset) and cfg.dataset not in _dataset_names():
        raise ConfigError(f"dataset: {_did_you_mean(cfg.dataset, _dataset_names(), 'dataset')}")
    if not isinstance(cfg.report_to, (str, tuple)):
        raise ConfigError(f"report_to {cfg.report_to!r}: give a tracker name or a list of them "
                          f"({', '.join(TRACKERS)})")
    trackers = (cfg.report_to,) if isinstance(cfg.report_to, str) else cfg.report_to
    for t in trackers:
        if t not in TRACKERS:
            raise ConfigError(f"report_to: {_did_you_mean(str(t), TRACKERS, 'tracker')}")
    if "none" in trackers and len(trackers) > 1:
        raise ConfigError(f"report_to {list(trackers)}: 'none' cannot be combined with trackers; drop it")
    if not isinstance(cfg.lora_target_modules, (str, tuple)):
        raise ConfigError(f"lora_target_modules {cfg.lora_target_modules!r}: give module names such as "
                          "[q_proj, v_proj] or all-linear")
    if isinstance(cfg.lora_target_modules, str):
        if not cfg.lora_target_modules:
            raise ConfigError("lora_target_modules is empty: list module names such as [q_proj, v_proj] "
                              "or use all-linear")
    elif not cfg.lora_target_modules:
        raise ConfigError("lora_target_modules is empty: list module names such as [q_proj, v_proj] "
                          "or use all-linear")


def check_server(cfg) -> None:
    """The rollout engine, its sync and the sampler correction agree."""
    problem = check(cfg.importance_sampling, cfg.importance_sampling_cap, cfg.backend)
    if problem:
        raise ConfigError(problem)
    if (cfg.backend == "vllm-server") != bool(cfg.base_url):
        raise ConfigError("--backend vllm-server needs --base-url http://HOST:PORT/v1 (and --base-url is only "
                          "for vllm-server)")
    if cfg.backend == "vllm-server" and cfg.vllm_sync == "weights":
        raise ConfigError("vllm_sync weights loads the merged weights into an engine of this job; a vllm-server "
                          "is synced by loading the adapter: use --vllm-sync adapter (or auto)")
    if cfg.backend == "vllm-server" and cfg.lora_r == 0:
        raise ConfigError("backend vllm-server loads the LoRA adapter on the server after every step, so it "
                          "needs lora_r > 0; use --backend hf for full fine-tuning")


def check_data(cfg) -> None:
    """The data set, data file, model and resume paths are there."""
    if cfg.dataset == "custom":
        if not cfg.data:
            raise ConfigError("dataset custom needs data: a JSONL / parquet / CSV file or a hub id")
        if not cfg.rewards:
            raise ConfigError("dataset custom needs rewards, e.g. rewards: gsm8k+0.5*format")
    if cfg.data and not cfg.data.startswith("hub:") and \
            (cfg.data.startswith((".", "/", "~")) or Path(cfg.data).suffix) and \
            not Path(cfg.data).expanduser().exists():
        raise ConfigError(f"data {cfg.data}: no such file")
    if cfg.model is not None and cfg.model.startswith((".", "/", "~")) and \
            not Path(cfg.model).expanduser().exists():
        raise ConfigError(f"model {cfg.model}: no such directory")
    if cfg.resume not in (None, "latest") and not Path(cfg.resume).expanduser().is_dir():
        raise ConfigError(f"resume {cfg.resume}: no such checkpoint directory (use 'latest' for the newest "
                          "checkpoint in the output directory)")


def check_numbers(cfg) -> None:
    """Ranges of the numeric fields."""
    def at_least(name: str, lo: float, hint: str = "") -> None:
        if getattr(cfg, name) < lo:
            raise ConfigError(f"{name} = {getattr(cfg, name)}: must be at least {lo:g}{hint}")

    if cfg.group_size < 2:
        raise ConfigError(f"group_size = {cfg.group_size}: GRPO compares completions of the same prompt, "
                          "so it needs at least 2 (4 to 16 is usual)")
    at_least("lora_r", 0, " (0 = full fine-tuning)")
    if cfg.lora_r > 0:
        at_least("lora_alpha", 1)
    if not 0 <= cfg.lora_dropout < 1:
        raise ConfigError(f"lora_dropout = {cfg.lora_dropout}: must be in [0, 1)")
    at_least("gradient_accumulation_steps", 1)
    at_least("max_steps", 1)
    at_least("max_tokens", 1)
    at_least("num_iterations", 1, " (mu = optimiser passes per generation batch)")
    if cfg.temperature <= 0:
        raise ConfigError(f"temperature = {cfg.temperature}: GRPO samples its completions, so it must be "
                          "> 0 (1.0 is usual)")
    if not 0 < cfg.top_p <= 1:
        raise ConfigError(f"top_p = {cfg.top_p}: must be in (0, 1]")
    if cfg.learning_rate <= 0:
        raise ConfigError(f"learning_rate = {cfg.learning_rate}: must be > 0 (e.g. 1e-5)")
    at_least("weight_decay", 0)
    at_least("max_grad_norm", 0, " (0 = no clipping)")
    if cfg.warmup < 0 or (cfg.warmup >= 1 and cfg.warmup != int(cfg.warmup)):
        raise ConfigError(f"warmup = {cfg.warmup}: give whole steps (e.g. 10) or a fraction of max_steps "
                          "below 1 (e.g. 0.1)")
    if not 0 < cfg.epsilon < 1:
        raise ConfigError(f"epsilon = {cfg.epsilon}: the clip range must be in (0, 1) (0.2 is usual)")
    if cfg.epsilon_high is not None and cfg.epsilon_high < cfg.epsilon:
        raise ConfigError(f"epsilon_high = {cfg.epsilon_high} is below epsilon = {cfg.epsilon}: clip-higher "
                          f"needs epsilon_high >= epsilon (DAPO uses 0.28 with 0.2), or leave it unset")
    if cfg.beta < 0:
        raise ConfigError(f"beta = {cfg.beta}: the KL weight must be >= 0 (0 = no KL term)")
    for name in ("seed", "save_steps", "save_total_limit", "eval_steps", "log_completions_steps"):
        at_least(name, 0)
    at_least("logging_steps", 1)
    at_least("eval_limit", 1)

def check_batch(cfg) -> None:
    """The batch vocabulary agrees with itself (see :mod:`reasonkit.grpo.config`)."""
    g = cfg.group_size
    if cfg.prompts_per_step is not None:
        at = cfg.prompts_per_step
        if at < 1:
            raise ConfigError(f"prompts_per_step = {at}: must be at least 1")
    if cfg.batch_size is not None:
        b = cfg.batch_size
        if b < 1 or b % g:
            k = max(1, round(b / g))
            raise ConfigError(f"batch_size {b} is not divisible by group_size {g}: use a multiple of {g} "
                              f"such as {k * g} (or set prompts_per_step instead)")
        if cfg.prompts_per_step is not None and cfg.prompts_per_step * g != b:
            raise ConfigError(f"batch_size {b} disagrees with prompts_per_step {cfg.prompts_per_step} x "
                              f"group_size {g} = {cfg.prompts_per_step * g}: give only one of them")
    if cfg.per_device_batch_size is not None:
        p = cfg.per_device_batch_size
        if p < 1:
            raise ConfigError(f"per_device_batch_size = {p}: must be at least 1")
        if cfg.completions_per_step % (p * cfg.gradient_accumulation_steps):
            raise ConfigError(
                f"per_device_batch_size {p} x gradient_accumulation_steps {cfg.gradient_accumulation_steps} "
                f"does not divide the {cfg.completions_per_step} completions of a step "
                f"(prompts_per_step {cfg.num_prompts_per_step} x group_size {g}): choose values whose "
                f"product divides {cfg.completions_per_step}")
    elif cfg.completions_per_step % cfg.gradient_accumulation_steps:
        raise ConfigError(
            f"gradient_accumulation_steps {cfg.gradient_accumulation_steps} does not divide the "
            f"{cfg.completions_per_step} completions of a step (prompts_per_step {cfg.num_prompts_per_step} "
            f"x group_size {g}): use a divisor of {cfg.completions_per_step}")


def check_sampler_backend(cfg, engine: str) -> None:
    """A vLLM sampler is synced after every step: with merged weights, or by loading the LoRA adapter."""
    if cfg.backend not in SAMPLER_BACKENDS:
        return
    if not cfg.use_lora and cfg.resolved_vllm_sync() == "adapter":
        raise ConfigError(f"backend {cfg.backend} with vllm_sync adapter syncs the engine by loading the LoRA "
                          "adapter after every step, so it needs lora_r > 0; for full fine-tuning use --backend hf, "
                          "or --backend vllm with --vllm-sync weights")
    if engine == "fsdp":
        raise ConfigError(f"backend {cfg.backend} is not supported under FSDP (the adapter sync reads sharded "
                          "parameters); use --backend hf, or DeepSpeed ZeRO-2 / DDP with vllm")


def top_p_warning(cfg) -> str | None:
    """The one-time warning for ``top_p < 1`` (issue 23 d): the sampler's and the trainer's log-probs differ.

    Nucleus sampling draws each token from the top-p tokens, renormalised; the trainer's log-probs
    (and TRL's) are over the whole vocabulary. So the completions are off-policy by the cut-off mass,
    and a vLLM sampler's log-probs (renormalised over the nucleus) sit above the trainer's: the gap
    metric does not reach 0 and the importance-sampling weights ``exp(logp_old - logp_s)`` lean below 1.
    """
    if cfg.top_p >= 1:
        return None
    where = (" and the vLLM sampler's log-probs sit above the trainer's (sampler/logprob_gap > 0, "
             "importance weights biased below 1)" if cfg.backend in ("vllm", "vllm-server") else "")
    return (f"top_p = {cfg.top_p:g} < 1: completions are drawn from the renormalised nucleus while the "
            f"trainer's log-probs are over the whole vocabulary, so updates are slightly off-policy{where}; "
            f"top_p 1 (the default) avoids it")
