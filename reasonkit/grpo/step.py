"""The step stage of GRPO: the mu optimiser updates on one prepared batch.

:func:`apply_updates` takes an :class:`reasonkit.grpo.batch.UpdateBatch` and runs, on the trainer's
model, optimiser and scheduler:

1. a step whose groups are all zero-variance everywhere (``batch.skip``) makes no update
   (:func:`skip_update`); its learning-rate schedule steps still pass
   (:func:`reasonkit.grpo.build.advance_schedule`), so a skipped step counts like any other (issue 23 a);
2. otherwise, with the policy in eval mode and no gradient: the old log-probs (only when mu > 1)
   and the reference log-probs (only when beta > 0; :mod:`reasonkit.grpo.logprobs`), and the
   sampler correction (:mod:`reasonkit.grpo.is_correction`) when a vLLM sampler gave log-probs;
3. ``num_iterations`` (mu) updates, each accumulating the gradients of every micro-batch
   (:func:`reasonkit.grpo.loss.grpo_loss`, scaled for the accumulation and, under DeepSpeed, for
   its engine) and then clipping the gradient norm and stepping optimiser and scheduler. The policy
   forward encodes each prompt once per group (:mod:`reasonkit.grpo.prefix`) when ``batch.groups``
   is set; under DDP its gradients are then averaged by one all-reduce per update (what DDP itself
   would do). What differs between engines is in :mod:`reasonkit.grpo.distributed`.

A non-finite loss or gradient norm raises :class:`TrainingDiverged` before the optimiser touches the
weights (under DeepSpeed, whose engine steps inside the last backward, a non-finite gradient norm is
seen only after that update). The trainer's ``_updating`` flag is set from the first moment the
weights may have moved, so an interrupt tells a half-done step from one that never happened.

Logged: the loss terms of :func:`~reasonkit.grpo.loss.grpo_loss` averaged over micro-batches,
updates and processes (``policy_loss`` the surrogate alone, ``kl_loss`` = beta * KL, ``loss`` their
sum, the step loss as TRL logs it; issue 23 item 10), ``grad_norm``, ``lr``, ``clip_ratio`` and the
sampler metrics.
"""
from __future__ import annotations

import contextlib

import torch

from reasonkit.engine.packing import completion_logprobs

from . import distributed as dist_engine
from .batch import UpdateBatch
from .is_correction import SAMPLER_BACKENDS, StepCorrection
from .logprobs import reference_logprobs
from .loss import grpo_loss
from .prefix import shared_prefix_logprobs
from .build import advance_schedule


class TrainingDiverged(RuntimeError):
    """The loss or the gradient norm became NaN / inf; the run stopped before applying it."""


def skip_update(tr) -> dict[str, float]:
    """A step with nothing to learn on any process: no update, but its schedule steps pass."""
    advance_schedule(tr.scheduler, tr.cfg.num_iterations)  # skipped steps count too (issue 23 a)
    return {"skipped_update": 1.0}


def apply_updates(tr, batch: UpdateBatch) -> dict[str, float]:
    """The mu optimiser updates of ``tr`` (a :class:`~reasonkit.grpo.trainer.GRPOTrainer`) on ``batch``
    (not a skipped one); returns the loss terms, grad norm and lr."""
    cfg, acc = tr.cfg, tr.accelerator
    G, device, chunks, T = cfg.group_size, acc.device, batch.chunks, batch.width
    input_ids, attention, mask, advantages = (t.to(device) for t in (batch.input_ids, batch.attention_mask,
                                                                       batch.mask, batch.advantages))
    model = tr.model
    temperature = cfg.temperature if cfg.temperature > 0 else 1.0
    shared = batch.groups is not None
    if shared:
        pids, pmask, cids, cmask = (t.to(device) for t in batch.groups)
        bare = acc.unwrap_model(model)

    def policy_logprobs(c: slice) -> torch.Tensor:
        if shared:
            g = slice(c.start // G, c.stop // G)
            return shared_prefix_logprobs(bare, pids[g], pmask[g], cids[c], cmask[c], G, temperature)
        return completion_logprobs(model, input_ids[c], attention[c], T, temperature)

    old_logp = ref_logp = None
    # beta = 0 runs no reference at all (one forward pass less per step); KL is then not logged.
    want_ref = cfg.beta > 0
    sampler = batch.sampler_logprobs is not None and cfg.backend in SAMPLER_BACKENDS
    if cfg.num_iterations > 1 or want_ref:
        model.eval()  # no dropout while recording the sampling / reference policy
        with torch.no_grad():
            if cfg.num_iterations > 1:
                old_logp = torch.cat([policy_logprobs(c) for c in chunks])
            if want_ref:
                ref_logp = torch.cat([reference_logprobs(model, input_ids[c], attention[c], T, temperature,
                                                         ref_model=tr.ref_model) for c in chunks])
    # one update per batch: the IS weights come from each micro-batch's training forward (is_correction)
    correction = StepCorrection(cfg, batch.sampler_logprobs.to(device), mask, old_logp) if sampler else None
    model.train()
    tokens_global = acc.gather(mask.sum().reshape(1)).sum()
    sums: dict[str, float] = {}
    for _ in range(cfg.num_iterations):
        tr.optimizer.zero_grad(set_to_none=True)
        # The shared-prefix forward calls the bare model twice per backward, which DDP's reducer does
        # not support: gradients are then averaged over processes by hand below (what DDP would do).
        manual_sync = shared and tr.world > 1
        sync_ctx = acc.no_sync(model) if manual_sync else contextlib.nullcontext()
        with sync_ctx:
            _accumulate(tr, chunks, policy_logprobs, old_logp, ref_logp, advantages, mask, tokens_global, sums,
                        correction)
        if manual_sync:
            dist_engine.average_gradients(tr.model, tr.world)
        grad_norm = dist_engine.grad_norm(acc, model, cfg.max_grad_norm)
        if not (tr.deepspeed and torch.isnan(grad_norm)):  # DeepSpeed stepped already; nan = no norm
            check_finite(tr, grad_norm, "gradient norm")
        tr._updating = True  # from here on an interrupt leaves a half-done step
        tr.optimizer.step()
        tr.scheduler.step()
    tr.optimizer.zero_grad(set_to_none=True)
    sampler_metrics = correction.metrics(acc) if correction is not None else {}  # of logp_old, before the updates
    reduced = acc.reduce(torch.tensor([sums.get(k, 0.0) for k in sorted(sums)], device=device), "mean")
    metrics = {k: float(v) for k, v in zip(sorted(sums), reduced.cpu())}
    metrics["loss"] = metrics["policy_loss"] + metrics["kl_loss"]  # the step loss, as TRL logs it
    metrics["grad_norm"] = float(grad_norm)
    metrics["lr"] = float(tr.scheduler.get_last_lr()[0])
    metrics.update(sampler_metrics)
    metrics["clip_ratio"] = metrics.pop("clip_ratio/region", 0.0)
    metrics.pop("tokens", None)
    return metrics


def _accumulate(tr, chunks, policy_logprobs, old_logp, ref_logp, advantages, mask, tokens_global, sums,
                correction) -> None:
    """Forward + backward of every micro-batch of one optimiser update (gradients accumulate)."""
    cfg, acc = tr.cfg, tr.accelerator
    for c in chunks:
        logp = policy_logprobs(c)
        is_weights = None if correction is None else correction.weights(c, logp)
        loss, lm = grpo_loss(
            logp, None if old_logp is None else old_logp[c], None if ref_logp is None else ref_logp[c],
            advantages[c], mask[c], epsilon=cfg.epsilon, epsilon_high=cfg.epsilon_high, beta=cfg.beta,
            loss_type=cfg.loss_type, max_completion_length=cfg.max_tokens, kl_estimator=cfg.kl_estimator,
            importance_sampling_level=cfg.importance_sampling_level,
            num_items_in_batch=tokens_global, num_processes=tr.world,
            # DeepSpeed's engine divides by its gradient_accumulation_steps itself
            gradient_accumulation_steps=1 if tr.deepspeed else len(chunks),
            is_weights=is_weights)
        check_finite(tr, loss, "loss")
        last = c is chunks[-1]
        if tr.deepspeed and last:
            tr._updating = True  # the engine steps inside this backward
        factor = dist_engine.deepspeed_loss_factor(acc, tr.model, cfg.loss_type)  # dapo x GA under DeepSpeed
        dist_engine.backward(acc, tr.model, loss * factor, last=last)
        for k, v in lm.items():  # means over micro-batches and updates; dapo's loss terms are each
            # micro-batch's share of the step loss, so they add up to it (issue 23 item 10)
            n = 1 if cfg.loss_type == "dapo" and k in ("policy_loss", "kl_loss") else len(chunks)
            sums[k] = sums.get(k, 0.0) + float(v) / (n * cfg.num_iterations)


def check_finite(tr, value: torch.Tensor, what: str) -> None:
    """Raise :class:`TrainingDiverged` on every process if ``value`` is non-finite on any of them."""
    bad = torch.tensor([0.0 if torch.isfinite(value).all() else 1.0], device=tr.accelerator.device)
    if float(tr.accelerator.reduce(bad, "sum")) > 0:
        where = (f"the last good checkpoint is {tr.last_checkpoint}" if tr.last_checkpoint
                 else "no checkpoint was written yet")
        raise TrainingDiverged(f"non-finite {what} at step {tr.step + 1}; stopped before the update, "
                               f"{where} (lower --learning-rate, check the rewards, or use fp32)")
