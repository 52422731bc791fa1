"""The GRPO training loop: the orchestration of its stages, a module each.

One *step* is one generation batch: ``prompts_per_step`` prompts (over all processes) ×
``group_size`` completions. Each step runs ``num_iterations`` (mu) optimiser updates on that batch,
each update accumulating gradients over micro-batches of ``micro_batch_size`` completions. The
objective, its aggregation variants and the departures from the paper are documented in
:mod:`reasonkit.grpo.loss` and :mod:`reasonkit.grpo.advantages`. A step, stage by stage
(:meth:`GRPOTrainer.train_step`):

1. data: the next prompts in a seeded per-epoch shuffle of the data (:mod:`reasonkit.grpo.data_order`;
   the position is checkpointed);
2. rollout (:meth:`~GRPOTrainer.generate`, :mod:`reasonkit.grpo.rollout`, :mod:`reasonkit.grpo.server_rollout`):
   ``group_size`` completions each on the hf backend (live policy) or a vLLM engine / server (synced
   to the policy before every step), no scoring; sampling is seeded with ``seed + step`` (and the
   process index) so a resumed run draws exactly the completions an uninterrupted run would;
3. reward (:meth:`~GRPOTrainer.reward`, :mod:`reasonkit.grpo.reward`): the composite verifier's
   reward per completion and per component, with the verifier-crash and truncation policy;
4. advantages and batch (:meth:`~GRPOTrainer.optimize`, :mod:`reasonkit.grpo.advantages`, the pure
   :func:`reasonkit.grpo.batch.prepare_batch`): the rewards of all processes are gathered, advantages
   are group-relative (groups never straddle processes), and the token mask is completion tokens,
   minus truncated completions (``mask_truncated``), minus unscored completions, minus zero-variance
   groups when ``zero_variance = "skip"`` (``"keep"`` keeps them: they carry no policy gradient but
   still add the KL term and count in the normalisers);
5. loss and step (:mod:`reasonkit.grpo.loss`, :mod:`reasonkit.grpo.step`): old log-probs (only when
   mu > 1) and reference log-probs (only when beta > 0; LoRA runs disable the adapter instead of
   holding a second model), then mu updates with gradient clipping; a step whose groups are all
   zero-variance everywhere makes no update (its learning-rate schedule steps still pass). What
   differs between one process, DDP, DeepSpeed ZeRO-2/3 and FSDP2 is in :mod:`reasonkit.grpo.distributed`;
6. log and checkpoint (:meth:`~GRPOTrainer.train`, :mod:`reasonkit.grpo.tracking`,
   :mod:`reasonkit.grpo.checkpoint`): metrics, warnings when there is no learning signal
   (:mod:`reasonkit.grpo.alarms`), sample completions, an evaluation every ``eval_steps`` on the
   held-out split (:mod:`reasonkit.grpo.evaluation`), and a checkpoint every ``save_steps`` and at the end.

Failure handling: a non-finite loss or gradient norm stops the run with :class:`TrainingDiverged`
before the optimiser touches the weights (under DeepSpeed, whose engine steps inside the last
backward, a non-finite gradient norm is seen only after that update), and the last good checkpoint stays as it was. Ctrl-C
(SIGINT) asks the loop to stop after the current step and save a checkpoint; a second Ctrl-C
interrupts at once, and a ``KeyboardInterrupt`` outside an optimiser update also saves a checkpoint
of the last completed step before exiting.
"""
from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from reasonkit.audit import StepAudit, has_task_verifier
from reasonkit.threads import apply_torch_threads

from .alarms import SignalAlarms, reward_range
from reasonkit.engine.train_attention import gqa_attention
from .batch import prepare_batch
from .checkpoint import load_checkpoint, save_checkpoint
from .config_checks import check_sampler_backend, top_p_warning
from reasonkit.engine.frozen_linear import packed_frozen_linears
from .heldout import divergence_alarms, divergence_monitor, heldout_verifiers
from .data_order import DataOrder, epoch_order, few_prompts_warning, load_training_data  # noqa: F401 (epoch_order)
from . import distributed as dist_engine
from .tracking import RunLogger, audit_records, completion_rows, rollout_metrics, tracker_init_kwargs
from .is_correction import SAMPLER_BACKENDS
from .resume_check import check_resume, run_identity
from .reward import eval_verdicts, score
from .rollout import Rollouts, generate_hf
from .sampler import open_sampler
from .evaluation import evaluate_policy
from reasonkit.verifiers import resolve
from reasonkit.engine.models import resolve_model
from reasonkit.engine.types import SamplingConfig
from reasonkit.errors import ReasonkitError
from .build import load_policy, make_accelerator, make_scheduler, seed_everything, step_seed, wrap_policy
from .step import TrainingDiverged, apply_updates, skip_update  # noqa: F401 (TrainingDiverged: the CLI's import)


LOG_COMPLETIONS = 4  # sample completions written to completions.jsonl every log_completions_steps


@dataclass
class TrainResult:
    output_dir: Path
    steps_done: int
    last_checkpoint: Path | None
    interrupted: bool = False


# ------------------------------------------------------------------------------------------------ the loop

class GRPOTrainer:
    """Build with a config; ``train()`` runs the loop. Tests may inject a model, tokenizer and data."""

    def __init__(self, cfg, *, model=None, tokenizer=None, items: list[dict] | None = None,
                 prompts: list[str] | None = None, verifier=None, accelerator=None, show_progress: bool = True,
                 on_step_end: Callable[[int, dict], None] | None = None):
        self.cfg = cfg
        self.out = cfg.run_dir()
        self._owns_accelerator = accelerator is None  # then train() ends it: trackers, process group
        self.accelerator = accelerator or make_accelerator(log_with=cfg.trackers or None, project_dir=str(self.out))
        acc = self.accelerator
        self.rank, self.world = acc.process_index, acc.num_processes
        cfg.check_world(self.world)
        self.micro_batch = cfg.micro_batch_size(self.world)
        check_sampler_backend(cfg, dist_engine.engine(acc))
        self.show_progress = show_progress
        self.on_step_end = on_step_end
        seed_everything(cfg.seed)
        if acc.device.type == "cpu" and self.world == 1:  # a busy machine: see reasonkit/threads.py
            apply_torch_threads()

        if model is None:
            self.model_path = resolve_model(cfg.model)
            tokenizer, model = load_policy(cfg, self.model_path)
        else:
            self.model_path = getattr(model.config, "_name_or_path", None)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        self.ref_model = None
        if cfg.beta > 0 and cfg.lora_r == 0:  # full fine-tuning: a frozen copy is the reference
            import copy

            self.ref_model = copy.deepcopy(model).eval().requires_grad_(False)
        model = wrap_policy(cfg, model)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        self.scheduler = make_scheduler(cfg, self.optimizer)  # warmup under every schedule
        self.engine = dist_engine.engine(acc)  # single | ddp | deepspeed | fsdp (see reasonkit.grpo.distributed)
        self.deepspeed = self.engine == "deepspeed"
        if self.deepspeed:  # no DataLoader to infer the "auto" batch entries from
            acc.state.deepspeed_plugin.deepspeed_config.update(cfg.deepspeed_values(self.world))
        # The scheduler is prepared only for DeepSpeed (whose engine steps it): accelerate's wrapper would
        # otherwise step it num_processes times per update, running the schedule too fast under DDP.
        if self.deepspeed:
            self.model, self.optimizer, self.scheduler = acc.prepare(model, self.optimizer, self.scheduler)
        else:
            self.model, self.optimizer = acc.prepare(model, self.optimizer)

        # Encode each prompt once per group (see reasonkit.grpo.prefix) unless the KV cache is off
        # (gradient checkpointing) or the engine shards parameters (DeepSpeed / FSDP).
        self.shared_prefix = not cfg.gradient_checkpointing and self.engine in ("single", "ddp")
        if self.ref_model is not None:
            self.ref_model.to(acc.device)

        # data and rewards
        self.score_prefix = ""
        if items is None:
            self.benchmark, items, prompts, verifier = load_training_data(cfg, tokenizer)
            self.score_prefix = self.benchmark.score_prefix
        elif prompts is None:
            raise ValueError("pass prompts together with items")

        verifier = resolve(cfg.reward_spec if verifier is None else verifier)
        self.items, self.prompts, self.verifier = items, prompts, verifier
        self.identity = run_identity(cfg, items, prompts)  # config + data fingerprint, checked on resume
        for warning in (few_prompts_warning(prompts, cfg.max_steps, cfg.num_prompts_per_step), top_p_warning(cfg)):
            if warning and acc.is_main_process:
                print(f"WARNING: {warning}", file=sys.stderr, flush=True)
        self.prompts_per_process = cfg.num_prompts_per_step // self.world
        self.data_order = DataOrder(cfg.seed, len(items))
        self.step = 0
        self._stop_requested = False
        self._updating = False
        self.vllm = None  # VLLMRollouts or ServerRollouts, built at the first step
        self._audit_verifier = None  # (name, verifier): the audit's task verifier for a format-only reward
        self._sync_seconds: float | None = None
        self._synced_step = -1
        self.last_checkpoint: Path | None = None

    # ------------------------------------------------------------------------------------------- data

    @property
    def epoch(self) -> int:
        return self.data_order.epoch

    @property
    def position(self) -> int:
        return self.data_order.position

    def _next_batch(self) -> tuple[list[str], list[dict]]:
        """This process's prompts for the next step; the global position advances on all processes."""
        picked = self.data_order.take(self.cfg.num_prompts_per_step)
        mine = picked[self.rank * self.prompts_per_process:(self.rank + 1) * self.prompts_per_process]
        return [self.prompts[i] for i in mine], [self.items[i] for i in mine]

    # ------------------------------------------------------------------------------------------ rollouts

    def _sampling(self, step: int):
        return SamplingConfig(n=self.cfg.group_size, temperature=self.cfg.temperature, top_p=self.cfg.top_p,
                              max_tokens=self.cfg.max_tokens, seed=step_seed(self.cfg.seed, step, self.rank),
                              logprobs=self.cfg.backend in SAMPLER_BACKENDS)

    def generate(self, step: int) -> Rollouts:
        """The rollout stage: this process's next prompts and their completions, not scored yet."""
        prompts, items = self._next_batch()
        sampling = self._sampling(step)
        if self.cfg.backend in SAMPLER_BACKENDS:
            if self.vllm is None:
                self.vllm = open_sampler(self.cfg, self.model_path, self.out, self.tokenizer, self.accelerator,
                                         self.rank)
            if self._synced_step != step:
                t0 = time.perf_counter()
                with dist_engine.gathered(self.accelerator, self.model) as bare:
                    self.vllm.sync(bare, step)
                self._synced_step = step
                self._sync_seconds = time.perf_counter() - t0  # weights / adapter written + loaded (in gen_seconds)
            rollouts = self.vllm.generate(prompts, items, sampling)
        else:  # ZeRO-3 / FSDP2: from the gathered parameters (processes stop after different lengths)
            with dist_engine.gathered(self.accelerator, self.model) as bare:
                rollouts = generate_hf(bare, self.tokenizer, prompts, items, sampling)
        return rollouts

    # -------------------------------------------------------------------------------------------- reward

    def reward(self, rollouts: Rollouts) -> Rollouts:
        """The reward stage: the verifiers' rewards per completion and per component, filled in place."""
        return score(rollouts, self.verifier, self.score_prefix, score_truncated=self.cfg.score_truncated)

    # ---------------------------------------------------------------------- advantages -> batch -> step

    def optimize(self, rollouts: Rollouts) -> dict[str, float]:
        """Advantages, masks and the mu optimiser updates on one generation batch; returns metrics.

        ``rollouts`` holds this process's completions with ``rewards`` filled. Usable on its own
        (fixed completions) by tests, e.g. the DDP equivalence test. The batch preparation is the
        pure :func:`reasonkit.grpo.batch.prepare_batch`; :func:`reasonkit.grpo.step.apply_updates` runs
        the updates.
        """
        acc = self.accelerator
        all_rewards = acc.gather(rollouts.rewards.to(acc.device)).cpu()
        batch = prepare_batch(self.cfg, rollouts, all_rewards, rank=self.rank, pad_id=self.tokenizer.pad_token_id,
                              micro_batch=self.micro_batch, shared_prefix=self.shared_prefix)
        metrics = rollout_metrics(acc, self.cfg, rollouts, all_rewards, batch.zero_variance, batch.completion_mask)
        if batch.skip:  # all groups zero-variance everywhere: no update, the schedule still moves
            metrics.update(skip_update(self))
            return metrics
        # CPU: no repeated key/value heads in the forwards (engine.train_attention), frozen linears on packed weights
        # where measured faster (engine.frozen_linear; not with sharded parameters)
        packed = self.engine in ("single", "ddp")
        with gqa_attention(self.model), packed_frozen_linears(self.model, enabled=packed):
            metrics.update(apply_updates(self, batch))  # loss -> step (reasonkit.grpo.step)
        return metrics

    def _audit_task(self) -> tuple[str, list[dict]] | None:
        """The hack audit's task verdicts when the reward has no task term (e.g. ``format_soft`` alone):
        the run's first held-out verifier on this step's completions (reasonkit.audit)."""
        rollouts = self._last_rollouts
        if has_task_verifier(rollouts.per_verifier):
            return None
        if self._audit_verifier is None:
            name = heldout_verifiers(self.cfg)[0]
            self._audit_verifier = (name, resolve(name))
        name, verifier = self._audit_verifier
        return name, eval_verdicts(rollouts, verifier, self.score_prefix)

    # --------------------------------------------------------------------------------------- the loop

    def save(self) -> Path:
        path = save_checkpoint(self.out, self.step, accelerator=self.accelerator, model=self.model,
                               tokenizer=self.tokenizer, optimizer=self.optimizer, scheduler=self.scheduler,
                               state={**self.data_order.state(), **self.identity}, keep=self.cfg.save_total_limit)
        self.last_checkpoint = path
        return path

    def resume(self, path: str | Path) -> None:
        state = load_checkpoint(path, accelerator=self.accelerator, model=self.model, optimizer=self.optimizer,
                                scheduler=self.scheduler)
        if state.get("num_items") not in (None, len(self.items)):
            raise ReasonkitError(f"{path}: checkpoint was trained on {state['num_items']} items, the data now "
                                 f"has {len(self.items)}; resume with the same data")
        check_resume(path, state, self.identity)  # same training config, seed and data, or one line
        self.step = int(state["step"])
        self.data_order.restore(state)
        self.last_checkpoint = Path(path)

    def evaluate(self) -> dict[str, float]:
        """Periodic evaluation of the live policy on the held-out split (main process only)."""
        result: dict[str, float] = {}
        self._eval_rows = []  # the eval's rows, for the divergence alarm (reasonkit.grpo.divergence)
        with dist_engine.gathered(self.accelerator, self.model) as bare:
            if self.accelerator.is_main_process:
                result = evaluate_policy(self.cfg, bare, self.tokenizer, self.step, self.out, self._eval_rows)
        self.accelerator.wait_for_everyone()
        return result

    def train_step(self) -> dict[str, float]:
        """One generation batch and its updates; advances ``self.step``."""
        seed_everything(step_seed(self.cfg.seed, self.step, self.rank))  # dropout etc. independent of history
        snapshot = self.data_order.state()
        t0 = time.perf_counter()
        try:
            rollouts = self.reward(self.generate(self.step))  # rollout -> reward
            t_gen = time.perf_counter() - t0  # generation and scoring, as TRL's _generate_and_score_completions
            metrics = self.optimize(rollouts)  # advantages -> batch -> loss -> step
        except BaseException:
            if not self._updating:  # weights untouched: the step never happened, data position included
                self.data_order.restore(snapshot)
            raise
        self._updating = False
        metrics["gen_seconds"] = t_gen
        if self._sync_seconds is not None:
            metrics["sync_seconds"], self._sync_seconds = self._sync_seconds, None
        metrics["step_seconds"] = time.perf_counter() - t0
        self.step += 1
        self._last_rollouts = rollouts
        return metrics

    def train(self, resume_from: str | Path | None = None) -> TrainResult:
        cfg, acc = self.cfg, self.accelerator
        self.out.mkdir(parents=True, exist_ok=True)
        if resume_from:
            self.resume(resume_from)
        if cfg.trackers:
            acc.init_trackers(self.out.name, config={k: v for k, v in cfg.to_dict().items()
                                                     if isinstance(v, (int, float, str, bool))},
                              init_kwargs=tracker_init_kwargs(self.out, cfg.trackers))
        logger = RunLogger(self.out, total_steps=cfg.max_steps, start_step=self.step, enabled=acc.is_main_process,
                           show_progress=self.show_progress, accelerator=acc, use_trackers=bool(cfg.trackers))
        interrupted = False
        alarms = SignalAlarms(reward_range=reward_range(self.verifier))  # "solved" on the reward's scale
        hack_audit = StepAudit()  # audit/<class> shares (reasonkit.audit), this process's completions
        divergence = divergence_monitor(self.verifier)  # reward rose, held-out did not: reward hacking?
        self._eval_rows = None
        previous = None
        try:
            previous = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread
            previous = None
        try:
            while self.step < cfg.max_steps:
                metrics = self.train_step()
                divergence.observe_step(metrics)
                if cfg.eval_steps and self.step % cfg.eval_steps == 0:
                    metrics.update(self.evaluate())  # written to OUTPUT/eval/step-N, headline in the log
                metrics.update(hack_audit.update(audit_records(self._last_rollouts, self._audit_task())))
                warnings = alarms.update(self.step, metrics)  # no learning signal: say so now
                if warnings:
                    metrics["alarms"] = warnings
                    logger.alarm(warnings)
                elif not any(alarms.streak.values()):
                    logger.alarm([])
                if self._eval_rows is not None:  # an eval ran: reward / held-out divergence
                    found = divergence_alarms(divergence, self.step, self._eval_rows, cfg, logger)
                    self._eval_rows = None
                    if found:
                        metrics["alarms"] = [*metrics.get("alarms", []), *found]
                if self.step % cfg.logging_steps == 0 or self.step == cfg.max_steps:
                    logger.log_step(self.step, metrics)
                if cfg.log_completions_steps and self.step % cfg.log_completions_steps == 0:
                    logger.log_completions(self.step, completion_rows(self._last_rollouts, LOG_COMPLETIONS))
                if metrics.get("unscored"):
                    logger.print(f"[yellow]step {self.step}: {int(metrics['unscored'])} completions could not be "
                                 f"scored ({'; '.join(self._last_rollouts.unscored_reasons)})")
                if self.on_step_end is not None:
                    self.on_step_end(self.step, metrics)
                if cfg.save_steps and self.step % cfg.save_steps == 0 and self.step < cfg.max_steps:
                    self.save()
                if self._stop_requested:
                    raise KeyboardInterrupt
            if self.last_checkpoint is None or self.last_checkpoint.name != f"checkpoint-{self.step}":
                self.save()
        except KeyboardInterrupt:
            interrupted = True
            if self._updating:  # interrupted inside an optimiser update: the weights are half a step on
                logger.print(f"[yellow]interrupted during an update; not saving it. The last good checkpoint "
                             f"is {self.last_checkpoint or 'none'}")
            else:
                path = self.save()
                logger.print(f"[yellow]interrupted: saved {path}; continue with --resume")
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            logger.close()
            if self.vllm is not None:
                self.vllm.close()
                self.vllm = None
            self._end(finished=sys.exc_info()[0] is None)
        return TrainResult(self.out, self.step, self.last_checkpoint, interrupted)

    def _end(self, *, finished: bool) -> None:
        """Close the trackers; when this trainer made the accelerator, destroy the process group too.

        A launched run that left its gloo process group to interpreter teardown died now and then
        with ``terminate called without an active exception`` (SIGABRT on one rank) after its last
        checkpoint. All ranks have passed the checkpoint's barrier when the loop ends; on an error
        the group is left alone (another rank may be inside a collective).
        """
        acc = self.accelerator
        if self._owns_accelerator and finished:
            acc.end_training()  # finishes the trackers, then destroys the process group
        elif self.cfg.trackers:
            for tracker in acc.trackers:
                tracker.finish()

    def _on_sigint(self, signum, frame):
        if self._stop_requested:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self._stop_requested = True
