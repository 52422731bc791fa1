"""The GRPO loss against (1) a reference written from the formulas with plain loops over tokens and
(2) TRL 1.16's ``GRPOTrainer._compute_loss`` on identical inputs; values, gradients and metrics."""
from __future__ import annotations

import itertools
import math
import warnings
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from reasonkit.grpo.loss import LOSS_TYPES, grpo_loss  # noqa: E402

N, T = 6, 7
MAXLEN = 9  # generation limit (> T: completions may stop early)


def make_inputs(seed: int = 0, spread: float = 0.4):
    g = torch.Generator().manual_seed(seed)
    logp = (-torch.rand(N, T, generator=g) * 3).double()
    old = logp + spread * torch.randn(N, T, generator=g).double()  # ratios well outside 1 +- 0.2
    ref = logp + 0.3 * torch.randn(N, T, generator=g).double()
    adv = torch.randn(N, generator=g).double()
    adv[2] = 0.0
    lengths = [7, 5, 3, 7, 1, 0]  # row 5 is a truncated completion masked out entirely
    mask = torch.zeros(N, T, dtype=torch.bool)
    for i, n in enumerate(lengths):
        mask[i, :n] = True
    return logp, old, ref, adv, mask


def reference_loss(logp, old, ref, adv, mask, *, eps, eps_high, beta, loss_type, max_len, num_items,
                   num_processes=1, ga=1, kl_estimator="k3", level="token"):
    """Loops over tokens with scalar ops (autograd through the indexed leaf gives the gradient)."""
    eh = eps if eps_high is None else eps_high
    token_losses = [[None] * T for _ in range(N)]
    for i in range(N):
        toks = [t for t in range(T) if mask[i, t]]
        olds = [logp[i, t].detach() if old is None else old[i, t] for t in range(T)]
        seq_rho = torch.exp(sum(logp[i, t] - olds[t] for t in toks) / len(toks)) if toks else None
        for t in toks:
            lp = logp[i, t]
            rho = torch.exp(lp - olds[t]) if level == "token" else seq_rho
            a = float(adv[i])
            rho_c = torch.clamp(rho, 1 - eps, 1 + eh)
            surr = torch.minimum(rho * a, rho_c * a)
            loss_t = -surr
            if beta:
                d = ref[i, t] - lp
                k3 = torch.exp(d) - d - 1
                loss_t = loss_t + beta * (k3 * rho if kl_estimator == "weighted_k3" else k3)
            token_losses[i][t] = loss_t
    total = sum(x for row in token_losses for x in row if x is not None)
    n_tok = int(mask.sum())
    if loss_type == "grpo":
        seq = []
        for i in range(N):
            toks = [x for x in token_losses[i] if x is not None]
            seq.append(sum(toks) / len(toks) if toks else torch.zeros((), dtype=logp.dtype))
        return sum(seq) / N / ga
    if loss_type == "bnpo":
        return total / max(n_tok, 1) / ga
    if loss_type == "dr_grpo":
        return total / (N * max_len) / ga
    return total / (num_items / num_processes)


CASES = list(itertools.product(LOSS_TYPES, [None, 0.28], [0.0, 0.04], [False, True]))
# (kl_estimator, importance_sampling_level): the default first, then each alternative alone
OBJECTIVES = [("weighted_k3", "token"), ("k3", "token"), ("weighted_k3", "sequence")]
FULL = [c + o for c in CASES for o in OBJECTIVES if c[2] or o[0] == "weighted_k3"]  # estimator moot at beta 0


@pytest.mark.parametrize("loss_type,eps_high,beta,mu_gt_1,kl_est,level", FULL)
def test_matches_loop_reference_value_and_gradient(loss_type, eps_high, beta, mu_gt_1, kl_est, level):
    logp, old, ref, adv, mask = make_inputs()
    old_in = old if mu_gt_1 else None
    a = logp.clone().requires_grad_(True)
    loss, metrics = grpo_loss(a, old_in, ref if beta else None, adv, mask, epsilon=0.2, epsilon_high=eps_high,
                              beta=beta, loss_type=loss_type, max_completion_length=MAXLEN,
                              kl_estimator=kl_est, importance_sampling_level=level)
    loss.backward()
    b = logp.clone().requires_grad_(True)
    expected = reference_loss(b, old_in, ref, adv, mask, eps=0.2, eps_high=eps_high, beta=beta,
                              loss_type=loss_type, max_len=MAXLEN, num_items=int(mask.sum()),
                              kl_estimator=kl_est, level=level)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-10, abs=1e-12)
    assert torch.allclose(a.grad, b.grad, rtol=1e-10, atol=1e-12)
    assert torch.all(a.grad[~mask] == 0)  # masked tokens (padding, truncated row 5) get no gradient
    if mu_gt_1 and level == "token":  # the setup makes the clip fire on some tokens but not on all
        assert 0 < metrics["clip_ratio/region"].item() < 1
    elif mu_gt_1:  # sequence ratios differ from 1 (the mean of the log ratios rarely leaves the range)
        assert metrics["ratio"].item() != pytest.approx(1.0)
        # clipped tokens contribute no gradient through the ratio
    else:
        assert metrics["ratio"].item() == pytest.approx(1.0)
        assert metrics["clip_ratio/region"].item() == 0.0


def test_clipped_tokens_have_zero_policy_gradient_and_clip_metrics_count_them():
    logp = torch.zeros(1, 4, dtype=torch.float64, requires_grad=True)
    old = torch.log(torch.tensor([[1 / 1.5, 1 / 1.1, 1 / 0.5, 1.0]], dtype=torch.float64))  # rho = 1.5 1.1 .5 1
    mask = torch.ones(1, 4)
    loss, m = grpo_loss(logp, old, None, torch.tensor([1.0], dtype=torch.float64), mask, loss_type="bnpo")
    loss.backward()
    # A > 0: rho = 1.5 is clipped (no gradient); rho = 0.5 is below 1 - eps but min() keeps it (gradient)
    assert logp.grad[0, 0] == 0
    assert logp.grad[0, 1] == pytest.approx(-1.1 / 4)
    assert logp.grad[0, 2] == pytest.approx(-0.5 / 4)
    assert m["clip_ratio/high"].item() == pytest.approx(0.25)
    assert m["clip_ratio/low"].item() == 0.0
    # epsilon_high = 0.6 lets rho = 1.5 through (DAPO clip-higher)
    logp.grad = None
    loss, m = grpo_loss(logp, old, None, torch.tensor([1.0], dtype=torch.float64), mask, loss_type="bnpo",
                        epsilon_high=0.6)
    loss.backward()
    assert logp.grad[0, 0] == pytest.approx(-1.5 / 4)
    assert m["clip_ratio/high"].item() == 0.0
    # negative advantage: rho = 0.5 < 1 - eps is the clipped one
    logp.grad = None
    loss, m = grpo_loss(logp, old, None, torch.tensor([-1.0], dtype=torch.float64), mask, loss_type="bnpo")
    loss.backward()
    assert logp.grad[0, 2] == 0 and logp.grad[0, 0] != 0
    assert m["clip_ratio/low"].item() == pytest.approx(0.25)
    assert m["clip_ratio/region"].item() == pytest.approx(0.25)


def test_k3_kl_value_and_metric():
    logp = torch.tensor([[-1.0, -2.0]], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([[-1.5, -1.0]], dtype=torch.float64)
    loss, m = grpo_loss(logp, None, ref, torch.zeros(1, dtype=torch.float64), torch.ones(1, 2), beta=0.1,
                        loss_type="bnpo", kl_estimator="k3")
    k3 = [math.exp(d) - d - 1 for d in (-0.5, 1.0)]
    assert m["kl"].item() == pytest.approx(sum(k3) / 2)
    assert loss.item() == pytest.approx(0.1 * sum(k3) / 2)  # A = 0: only the KL term
    loss.backward()  # d/dlogp k3 = 1 - exp(ref - logp)
    assert logp.grad.tolist()[0] == pytest.approx([0.1 * (1 - math.exp(-0.5)) / 2, 0.1 * (1 - math.exp(1.0)) / 2])


def test_weighted_k3_has_the_same_value_on_policy_and_the_reverse_kl_gradient():
    """On-policy the ratio is 1, so the value equals k3; its gradient gains k3 * grad log pi, which makes
    it (log pi - log pi_ref) grad log pi per token: the reverse-KL (score-function) gradient."""
    logp = torch.tensor([[-1.0, -2.0]], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([[-1.5, -1.0]], dtype=torch.float64)
    loss, m = grpo_loss(logp, None, ref, torch.zeros(1, dtype=torch.float64), torch.ones(1, 2), beta=0.1,
                        loss_type="bnpo")  # the default estimator
    k3 = [math.exp(d) - d - 1 for d in (-0.5, 1.0)]
    assert m["kl"].item() == pytest.approx(sum(k3) / 2)
    loss.backward()
    assert logp.grad.tolist()[0] == pytest.approx([0.1 * (-1.0 + 1.5) / 2, 0.1 * (-2.0 + 1.0) / 2])


def test_sequence_level_ratio_clips_whole_completions():
    """GSPO: one ratio per completion, exp(mean log ratio); once it leaves the clip range no token of it
    gets a policy gradient, even tokens whose own ratio is 1."""
    logp = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    old = torch.tensor([[-0.9, 0.0, 0.0], [-0.03, 0.0, 0.0]], dtype=torch.float64)  # seq ratios e^.3, e^.01
    mask = torch.ones(2, 3)
    loss, m = grpo_loss(logp, old, None, torch.tensor([1.0, 1.0], dtype=torch.float64), mask, loss_type="grpo",
                        importance_sampling_level="sequence")
    loss.backward()
    assert logp.grad[0].tolist() == [0.0, 0.0, 0.0]
    s = math.exp(0.01)  # d/dlogp_t of -exp(mean(logp - old)) / 2 sequences
    assert logp.grad[1].tolist() == pytest.approx([-s / 3 / 2] * 3)
    assert m["clip_ratio/high"].item() == pytest.approx(0.5)
    assert m["ratio"].item() == pytest.approx((math.exp(0.3) + s) / 2)


def test_padding_with_minus_inf_logprobs_stays_finite():
    logp, old, ref, adv, mask = make_inputs()
    logp = logp.masked_fill(~mask, float("-inf")).requires_grad_(True)
    old = old.masked_fill(~mask, float("nan"))
    loss, m = grpo_loss(logp, old, ref, adv, mask, beta=0.04, loss_type="grpo")
    loss.backward()
    assert math.isfinite(loss.item()) and torch.isfinite(logp.grad).all()
    assert all(math.isfinite(v.item()) for v in m.values())


def test_unscored_and_zero_variance_completions_get_no_gradient():
    """rewards -> advantages -> mask -> loss: a NaN reward (could not score) leaves the loss entirely,
    KL term included; a zero-variance group has A = 0, so only the KL term moves it."""
    from reasonkit.grpo.advantages import group_advantages, scored_mask, zero_variance_groups

    rewards = torch.tensor([1.0, 0.0, float("nan"), 1.0, 0.5, 0.5, 0.5, 0.5], dtype=torch.float64)
    adv = group_advantages(rewards, 4)
    g = torch.Generator().manual_seed(2)
    logp = (-torch.rand(8, 5, generator=g)).double().requires_grad_(True)
    ref = logp.detach() + 0.2
    mask = torch.ones(8, 5, dtype=torch.float64) * scored_mask(rewards).double()[:, None]
    loss, m = grpo_loss(logp, None, ref, adv, mask, beta=0.0, loss_type="bnpo")
    loss.backward()
    assert torch.all(logp.grad[2] == 0) and torch.all(logp.grad[4:] == 0)  # unscored; zero-variance group
    assert torch.all(logp.grad[[0, 1, 3]] != 0)
    assert m["tokens"].item() == 35  # the unscored completion's tokens are not counted
    assert zero_variance_groups(rewards, 4).tolist() == [False, True]
    logp.grad = None
    loss, _ = grpo_loss(logp, None, ref, adv, mask, beta=0.1, loss_type="bnpo")
    loss.backward()
    assert torch.all(logp.grad[2] == 0) and torch.all(logp.grad[4:] != 0)  # KL still pulls the kept group


def _split(x, rows):
    return None if x is None else x[rows]


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_accumulation_and_processes_reproduce_the_full_batch_gradient(loss_type):
    """2 processes x 2 accumulation micro-batches: summing each process's micro-batch gradients and
    averaging over processes (DDP) gives the gradient of one big batch. For dapo this holds for any
    token counts; for the per-batch normalisers it needs equal-sized micro-batches with the same token
    totals, so the check uses full masks for them."""
    torch.manual_seed(1)
    n, t = 8, 5
    logp = -torch.rand(n, t, dtype=torch.float64)
    old = logp + 0.3 * torch.randn(n, t, dtype=torch.float64)
    adv = torch.randn(n, dtype=torch.float64)
    mask = torch.ones(n, t, dtype=torch.bool)
    if loss_type == "dapo":
        mask[1, 3:] = False
        mask[6, 1:] = False
    kw = dict(loss_type=loss_type, max_completion_length=t)
    full = logp.clone().requires_grad_(True)
    big_loss, _ = grpo_loss(full, old, None, adv, mask, num_items_in_batch=int(mask.sum()), **kw)
    big_loss.backward()

    part = logp.clone().requires_grad_(True)
    grads = torch.zeros_like(logp)
    for proc in range(2):
        part.grad = None
        for micro in range(2):
            rows = slice(proc * 4 + micro * 2, proc * 4 + micro * 2 + 2)
            loss, _ = grpo_loss(part[rows], old[rows], None, adv[rows], mask[rows], num_processes=2,
                                gradient_accumulation_steps=2, num_items_in_batch=int(mask.sum()), **kw)
            loss.backward()
        grads += part.grad / 2  # DDP all-reduce: mean over processes
    assert torch.allclose(grads, full.grad, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_issue23_item10_policy_loss_excludes_kl_and_kl_loss_is_logged_apart(loss_type):
    """``policy_loss`` is the surrogate alone, ``kl_loss`` = the beta * KL part, and their sum is the
    micro-batch loss before the accumulation division (issue 23 item 10: policy_loss held beta * KL)."""
    logp, old, ref, adv, mask = make_inputs()
    kw = dict(eps=0.2, eps_high=None, loss_type=loss_type, max_len=MAXLEN, num_items=int(mask.sum()),
              kl_estimator="weighted_k3")
    surrogate = reference_loss(logp, old, ref, adv, mask, beta=0.0, **kw).item()
    with_kl = reference_loss(logp, old, ref, adv, mask, beta=0.04, **kw).item()
    loss, m = grpo_loss(logp, old, ref, adv, mask, beta=0.04, loss_type=loss_type, max_completion_length=MAXLEN,
                        gradient_accumulation_steps=1 if loss_type == "dapo" else 3)
    assert m["policy_loss"].item() == pytest.approx(surrogate, rel=1e-10)
    assert m["kl_loss"].item() == pytest.approx(with_kl - surrogate, rel=1e-8)
    assert with_kl - surrogate > 0
    ga = 1 if loss_type == "dapo" else 3
    assert (m["policy_loss"] + m["kl_loss"]).item() == pytest.approx(loss.item() * ga, rel=1e-10)
    _, m0 = grpo_loss(logp, old, None, adv, mask, loss_type=loss_type, max_completion_length=MAXLEN)
    assert m0["kl_loss"].item() == 0.0


def test_input_errors():
    logp, old, ref, adv, mask = make_inputs()
    with pytest.raises(ValueError, match="ref_logp"):
        grpo_loss(logp, old, None, adv, mask, beta=0.1)
    with pytest.raises(ValueError, match="loss_type"):
        grpo_loss(logp, old, None, adv, mask, loss_type="dpo")
    with pytest.raises(ValueError, match="kl_estimator"):
        grpo_loss(logp, old, None, adv, mask, kl_estimator="k2")
    with pytest.raises(ValueError, match="importance_sampling_level"):
        grpo_loss(logp, old, None, adv, mask, importance_sampling_level="group")
    with pytest.raises(ValueError, match="max_completion_length"):
        grpo_loss(logp, old, None, adv, mask, loss_type="dr_grpo")
    with pytest.raises(ValueError, match="num_items_in_batch"):
        grpo_loss(logp, old, None, adv, mask, loss_type="dapo", gradient_accumulation_steps=2)
    with pytest.raises(ValueError, match="mask shape"):
        grpo_loss(logp, old, None, adv, mask[:, :3])


# --- against TRL ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trl_trainer_cls():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mod = pytest.importorskip("trl.trainer.grpo_trainer")
    return mod.GRPOTrainer


class _Accel:
    """The few accelerate calls ``_compute_loss`` makes, for one process."""

    num_processes = 1

    def gather(self, x):
        return x

    def gather_for_metrics(self, x):
        return x

    def reduce(self, x, reduction="sum"):
        return x


def trl_loss(cls, logp, old, ref, adv, mask, *, eps, eps_high, beta, loss_type, max_len, ga=1,
             kl_est="weighted_k3", level="token"):
    """TRL's own ``_compute_loss`` on our tensors: a bare trainer whose log-prob pass returns ``logp``."""
    tr = cls.__new__(cls)
    tr.model = SimpleNamespace(training=True)
    tr.accelerator = _Accel()
    tr.args = SimpleNamespace(use_bias_correction_kl=kl_est == "weighted_k3", delta=None, steps_per_generation=ga)
    tr.loss_type, tr.beta = loss_type, beta
    tr.epsilon_low, tr.epsilon_high = eps, (eps if eps_high is None else eps_high)
    tr.importance_sampling_level = level
    tr.top_entropy_quantile = 1.0
    tr.off_policy_mask_threshold = None
    tr.use_vllm = False
    tr.vllm_importance_sampling_correction = False
    tr.current_gradient_accumulation_steps = ga
    tr.max_completion_length = max_len
    tr._entropy_bonus_enabled = False
    tr.aux_loss_enabled = False
    from collections import defaultdict

    tr._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    tr._get_per_token_logps_and_entropies = lambda *a, **k: (logp, torch.zeros_like(logp), None)
    inputs = {
        "prompt_ids": torch.zeros(N, 2, dtype=torch.long), "prompt_mask": torch.ones(N, 2, dtype=torch.long),
        "completion_ids": torch.zeros(N, T, dtype=torch.long), "completion_mask": mask.long(),
        "advantages": adv, "num_items_in_batch": mask.sum(),
    }
    if old is not None:
        inputs["old_per_token_logps"] = old
    if beta:
        inputs["ref_per_token_logps"] = ref
    return tr._compute_loss(None, inputs), tr._metrics["train"]


@pytest.mark.parametrize("loss_type,eps_high,beta,mu_gt_1,kl_est,level", FULL)
def test_matches_trl_compute_loss(trl_trainer_cls, loss_type, eps_high, beta, mu_gt_1, kl_est, level):
    """TRL's ``use_bias_correction_kl`` is our ``weighted_k3``; its ``importance_sampling_level`` is ours."""
    logp, old, ref, adv, mask = make_inputs(seed=3)
    old_in = old if mu_gt_1 else None
    ga = 2
    a = logp.clone().requires_grad_(True)
    loss, metrics = grpo_loss(a, old_in, ref if beta else None, adv, mask, epsilon=0.2, epsilon_high=eps_high,
                              beta=beta, loss_type=loss_type, max_completion_length=MAXLEN,
                              num_items_in_batch=mask.sum(), gradient_accumulation_steps=ga,
                              kl_estimator=kl_est, importance_sampling_level=level)
    loss.backward()
    b = logp.clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected, trl_metrics = trl_loss(trl_trainer_cls, b, old_in, ref, adv, mask, eps=0.2, eps_high=eps_high,
                                         beta=beta, loss_type=loss_type, max_len=MAXLEN, ga=ga, kl_est=kl_est,
                                         level=level)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-9, abs=1e-12)
    assert torch.allclose(a.grad, b.grad, rtol=1e-9, atol=1e-12)
    if level == "sequence":  # TRL averages the clip flags over sequences, we over tokens (see loss.py)
        if beta:
            assert metrics["kl"].item() == pytest.approx(trl_metrics["kl"][-1], rel=1e-9)
        return
    for ours, theirs in (("clip_ratio/low", "clip_ratio/low_mean"), ("clip_ratio/high", "clip_ratio/high_mean"),
                         ("clip_ratio/region", "clip_ratio/region_mean")):
        assert metrics[ours].item() == pytest.approx(trl_metrics[theirs][-1], abs=1e-6)  # TRL counts in fp32
    if beta:
        assert metrics["kl"].item() == pytest.approx(trl_metrics["kl"][-1], rel=1e-9)


# --- log-probs feeding the loss (reasonkit.grpo.logprobs) ----------------------------------------------


@pytest.fixture(scope="module")
def tiny_lm():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return transformers.LlamaForCausalLM(cfg).eval()


def _batch():
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(1, 97, (3, 11), generator=g)
    att = torch.ones_like(ids)
    att[0, :3] = 0  # a left-padded prompt
    att[2, -2:] = 0  # a right-padded (shorter) completion
    return ids, att


def test_completion_logprobs_match_full_log_softmax(tiny_lm):
    from reasonkit.engine.packing import completion_logprobs

    ids, att = _batch()
    t = 4
    got = completion_logprobs(tiny_lm, ids, att, t, temperature=0.7)
    with torch.no_grad():
        logits = tiny_lm(input_ids=ids, attention_mask=att).logits  # all positions, no logits_to_keep
    expected = torch.log_softmax(logits[:, -t - 1:-1].float() / 0.7, dim=-1).gather(-1, ids[:, -t:, None])[..., 0]
    assert got.shape == (3, t) and got.dtype == torch.float32
    assert torch.allclose(got, expected, atol=1e-5)
    # the completion mask form gives the same as the length form
    assert torch.allclose(completion_logprobs(tiny_lm, ids, att, torch.ones(3, t), temperature=0.7), got)
    # gradients reach the model through the selected log-probs
    completion_logprobs(tiny_lm, ids, att, t).sum().backward()
    assert tiny_lm.lm_head.weight.grad is not None and tiny_lm.lm_head.weight.grad.abs().sum() > 0
    tiny_lm.zero_grad(set_to_none=True)


def test_reference_logprobs_disable_the_lora_adapter(tiny_lm):
    peft = pytest.importorskip("peft")
    import copy

    from reasonkit.grpo.logprobs import reference_logprobs
    from reasonkit.engine.packing import completion_logprobs

    ids, att = _batch()
    base = copy.deepcopy(tiny_lm)
    model = peft.get_peft_model(copy.deepcopy(tiny_lm), peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                                         init_lora_weights=False))
    policy = completion_logprobs(model, ids, att, 4)
    ref = reference_logprobs(model, ids, att, 4)
    assert not ref.requires_grad
    assert torch.allclose(ref, completion_logprobs(base, ids, att, 4), atol=1e-6)  # = the base model
    assert (policy - ref).abs().max() > 1e-3  # the (non-zero) adapter changes the policy
    assert torch.allclose(completion_logprobs(model, ids, att, 4), policy)  # adapter enabled again afterwards
    # full fine-tuning: a frozen copy is passed; without one the error says what to do
    assert torch.allclose(reference_logprobs(tiny_lm, ids, att, 4, ref_model=base),
                          completion_logprobs(base, ids, att, 4))
    with pytest.raises(ValueError, match="pass ref_model"):
        reference_logprobs(tiny_lm, ids, att, 4)
