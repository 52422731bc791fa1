"""The numeric and batch-size invariants of :class:`reasonkit.grpo.config.TrainConfig`, as functions that
``TrainConfig.__post_init__`` calls (kept apart so that the config module reads top to bottom). Each
violation raises :class:`ConfigError` with a message that says the fix. Standard library only."""
from __future__ import annotations

from ..errors import ReasonkitError
from .is_correction import SAMPLER_BACKENDS


class ConfigError(ReasonkitError, ValueError):
    """A bad training configuration: one line that names the field (or file and key) and the fix."""


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
