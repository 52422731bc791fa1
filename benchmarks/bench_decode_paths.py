"""What each of the hf decode loop's fast paths buys on a GRPO rollout, side by side in one process.

Workload: the GRPO benchmark's rollout (``bench_grpo.py``): the embedded SmolLM2-135M-Instruct in
fp32 with a LoRA adapter (r=8, alpha 16, dropout 0.05, q/k/v/o; B initialised non-zero so that it
is not a no-op), 2 Countdown prompts x 4 samples x 64 new tokens at temperature 1, EOS never
allowed to end a row early (every row decodes all 64 tokens, so all paths do the same work).

Paths, each adding one change to the one before (all run through ``generate_with_model``; the
changes left out are switched off by this script, the library has no switches for them):

1. ``baseline``: the decode loop with transformers' ``DynamicCache``, ``torch.multinomial``, the
   adapter unmerged and ``F.linear`` (the loop as it was before these changes);
2. ``+ preallocated cache`` (:class:`reasonkit.engine.hf_decode.PreallocatedLayer`);
3. ``+ inverse-CDF draw`` (:func:`reasonkit.engine.hf_decode.sample_rows`);
4. ``+ merged LoRA`` (:mod:`reasonkit.engine.hf_merge`);
5. ``+ few-row layout`` (:mod:`reasonkit.engine.hf_linear`: per weight shape the fastest of
   ``F.linear``, ``W @ x^T`` and oneDNN's matmul on a reordered weight, by a timing): all on, what
   reasonkit runs.

The paths are interleaved over ``--rounds`` rounds (the machine is shared and noisy); each row
shows the median wall time and its [min-max], and the ratio of medians to the baseline
(``benchmarks/harness.py``). With ``--record`` the results go to
``benchmarks/results/decode_paths.md`` / ``.json``.

    python benchmarks/bench_decode_paths.py --record           # 5 rounds, recorded
    python benchmarks/bench_decode_paths.py --rounds 2 --quick  # print only
"""
from __future__ import annotations

import argparse
import contextlib
import time

import harness  # benchmarks/harness.py

PATHS = ("baseline", "+ preallocated cache", "+ inverse-CDF draw", "+ merged LoRA", "+ few-row layout")


class _NoEos:
    """The tokenizer without an EOS token (everything else passed through)."""

    eos_token_id = None

    def __init__(self, tok):
        self._tok = tok
        self.pad_token_id = tok.pad_token_id if tok.pad_token_id != tok.eos_token_id else 0

    def __getattr__(self, name):
        return getattr(self._tok, name)


@contextlib.contextmanager
def switched_off(level: int):
    """Undo the fast paths from ``level`` on (1 = cache, 2 = draw, 3 = merge, 4 = layout)."""
    import torch
    from transformers import DynamicCache

    from reasonkit.engine import hf_decode, hf_linear, hf_merge

    saved = (hf_decode.preallocated_cache, hf_decode.sample_rows, hf_merge.merged_lora, hf_linear.streaming_linears)
    try:
        if level <= 1:
            hf_decode.preallocated_cache = lambda model, capacity: DynamicCache(config=model.config)
        if level <= 2:
            hf_decode.sample_rows = lambda probs: torch.multinomial(probs, num_samples=1).squeeze(1)
        if level <= 3:
            hf_merge.merged_lora = lambda model, enabled=True: contextlib.nullcontext()
        if level <= 4:
            hf_linear.streaming_linears = lambda model, enabled=True: contextlib.nullcontext()
        yield
    finally:
        hf_decode.preallocated_cache, hf_decode.sample_rows, hf_merge.merged_lora, hf_linear.streaming_linears = saved


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=64)
    harness.common_args(ap, rounds=5)
    args = ap.parse_args(argv)

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasonkit.engine.types import SamplingConfig, cpu_has_fast_bf16
    from reasonkit.engine.hf import generate_with_model
    from reasonkit.tasks.registry import get_benchmark
    from reasonkit.engine.models import resolve_model

    bench = harness.start(__file__, args, argv)
    path = resolve_model(None)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.generation_config.eos_token_id = None
    torch.manual_seed(0)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.01)
    bench = get_benchmark("countdown")
    prompts = [bench.render(it, tok) for it in bench.load(split="train", limit=args.prompts)]
    rows = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    no_eos = _NoEos(tok)  # no row stops early: every path decodes the same number of tokens
    sampling = SamplingConfig(n=args.samples, temperature=1.0, max_tokens=args.tokens, seed=0)

    def run(level: int) -> float:
        with switched_off(level):
            t0 = time.perf_counter()
            out = generate_with_model(model, no_eos, prompts, sampling, prompt_token_ids=rows)
            wall = time.perf_counter() - t0
        assert all(len(c.token_ids) == args.tokens for o in out for c in o.completions)
        return wall

    for level in range(1, len(PATHS) + 1):  # warm-up, the layout calibration included
        run(level)
    summary = harness.rounds({name: (lambda level=level: run(level)) for level, name in enumerate(PATHS, start=1)},
                             args.rounds, baseline="baseline",
                             report=lambda name, r, t: print(f"{name}: {t:.2f} s", flush=True))
    rows_out = [{"path": p, "median_s": t["median"], "min_s": t["min"], "max_s": t["max"], "seconds": t["seconds"],
                 "vs_baseline": t["vs_baseline"]} for p, t in summary.items()]
    from reasonkit.engine import hf_linear

    names = {"linear": "x @ W^T (F.linear)", "transposed": "W @ x^T", "packed": "oneDNN packed"}
    choices = {f"{str(k[0]).replace('torch.', '')} {k[2][0]}x{k[2][1]}, {k[1]} rows": names[v]
               for k, v in sorted(hf_linear._CHOICE.items(), key=lambda kv: (kv[0][1], kv[0][2]))}
    bf16 = f"CPU bf16 {'native' if cpu_has_fast_bf16() else 'emulated'} (unused: fp32)"
    head = (f"SmolLM2-135M-Instruct (embedded) fp32 + LoRA r=8 on q/k/v/o, {args.prompts} Countdown prompts x "
            f"{args.samples} samples x {args.tokens} tokens (no early stop), temperature 1; {args.rounds} "
            "interleaved rounds.")
    lines = ["| path | median wall (s) [min-max] | s per decode step | vs baseline |", "|---|---:|---:|---:|"]
    lines += [f"| {r['path']} | {r['median_s']:.2f} [{r['min_s']:.2f}-{r['max_s']:.2f}] | "
              f"{r['median_s'] / args.tokens * 1e3:.0f} ms | {r['vs_baseline']:.2f}x |" for r in rows_out]
    print(head)
    print("\n".join(lines))
    print("layout chosen by the calibration:", choices)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    md = ["# hf decode loop: what each fast path buys on a GRPO rollout", "", head, "",
          f"Command: `{bench.command}` ({stamp})", "", f"{harness.machine_line(bench.machine)} {bf16}.", ""] + lines + [
          "", f"Layout chosen by `hf_linear`'s calibration on this host: "
              f"{', '.join(f'{k}: {v}' for k, v in choices.items()) or 'none'}.",
          "", "Each path adds one change to the row above; the script switches off the later ones (the library "
              "has no switches for them). The per-step figure is the wall time over the tokens per row, prefill "
              "included."]
    bench.record({"workload": head, "cpu_bf16": bf16, "paths": rows_out, "layout_choice": choices}, md)

if __name__ == "__main__":
    main()
