"""reasonkit's decode-step attention vs transformers' sdpa, side by side in one run (CPU).

Two levels, each timed with both paths interleaved (best of ``--rounds``; ``benchmarks/harness.py``):

1. one attention call of one layer, SmolLM2-135M's shapes (9 query heads, 3 key-value heads,
   head size 64), a one-token query over a bf16 cache of 150 and 400 tokens with left padding:
   transformers' ``sdpa_attention_forward`` vs :func:`reasonkit.engine.hf_attention._attention`,
   and each one's mean absolute error against the same attention computed in fp32;
2. the embedded SmolLM2-135M-Instruct in bf16: ms per decode step (a batch of GSM8K prompts,
   ``--steps`` tokens after the prefill) with ``config._attn_implementation`` sdpa vs reasonkit's.

    python benchmarks/bench_decode_attention.py --record   # records results/decode_attention.{md,json}
    python benchmarks/bench_decode_attention.py --quick    # fewer steps, prints only
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import harness  # benchmarks/harness.py

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 50  # attention calls per timing at the layer level


def layer_level(rounds: int) -> list[dict]:
    import types

    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from reasonkit.engine.hf_attention import _attention

    module = types.SimpleNamespace(num_key_value_groups=3, is_causal=True, training=False, layer_idx=0)
    rows = []
    for batch, length in ((32, 150), (32, 400), (8, 400)):
        g = torch.Generator().manual_seed(0)
        q = (torch.randn(batch, 9, 1, 64, generator=g) * 2).bfloat16()
        k = (torch.randn(batch, 3, length, 64, generator=g) * 2).bfloat16()
        v = torch.randn(batch, 3, length, 64, generator=g).bfloat16()
        mask = torch.ones(batch, 1, 1, length, dtype=torch.bool)
        for row in range(batch):
            mask[row, ..., : row * 3] = False
        exact = sdpa_attention_forward(module, q.float(), k.float(), v.float(), mask)[0]
        paths = {"sdpa": lambda: sdpa_attention_forward(module, q, k, v, mask)[0],
                 "reasonkit": lambda: _attention(module, q, k, v, mask)[0]}
        row = {"batch": batch, "cached_tokens": length}
        for fn in paths.values():
            fn()  # warm-up
        timed = harness.rounds({name: (lambda fn=fn: [fn() for _ in range(REPEATS)]) for name, fn in paths.items()},
                               rounds)
        for name, fn in paths.items():
            row[f"{name}_ms"] = timed[name]["min"] / REPEATS * 1e3
            row[f"{name}_mean_abs_err"] = (fn().float() - exact).abs().mean().item()
        row["speedup"] = row["sdpa_ms"] / row["reasonkit_ms"]
        rows.append(row)
    return rows


def model_level(batches: list[int], steps: int, rounds: int) -> list[dict]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasonkit.engine.packing import left_pad
    from reasonkit.engine.hf_attention import NAME, register
    from reasonkit.engine.models import resolve_model

    path = resolve_model(None)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).eval()
    register()
    questions = [json.loads(line)["question"] for line in (ROOT / "reasonkit/data/gsm8k_test.jsonl").open()]
    rows = []
    for batch in batches:
        prompts = [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                           add_generation_prompt=True) for q in questions[:batch]]
        ids, mask = left_pad([tok(p, add_special_tokens=False)["input_ids"] for p in prompts], tok.pad_token_id,
                              "cpu")
        row = {"batch": batch, "prompt_width": ids.shape[1], "steps": steps}

        def decode(impl: str) -> float:
            model.config._attn_implementation = impl
            with torch.no_grad():
                out = model(input_ids=ids, attention_mask=mask, use_cache=True, logits_to_keep=1)
                cache, step_mask = out.past_key_values, mask
                nxt, pos = out.logits[:, -1].argmax(-1, keepdim=True), mask.sum(1, keepdim=True)
                t0 = time.perf_counter()
                for _ in range(steps):
                    step_mask = torch.cat([step_mask, torch.ones_like(nxt)], dim=1)
                    out = model(input_ids=nxt, attention_mask=step_mask, position_ids=pos,
                                past_key_values=cache, use_cache=True)
                    nxt, pos = out.logits[:, -1].argmax(-1, keepdim=True), pos + 1
                return (time.perf_counter() - t0) / steps  # the decode steps only, not the prefill

        timed = harness.rounds({"sdpa": lambda: decode("sdpa"), "reasonkit": lambda: decode(NAME)}, rounds)
        for name in ("sdpa", "reasonkit"):
            row[f"{name}_ms_per_step"] = timed[name]["min"] * 1e3
        model.config._attn_implementation = "sdpa"
        row["speedup"] = row["sdpa_ms_per_step"] / row["reasonkit_ms_per_step"]
        row["reasonkit_tokens_per_s"] = batch / row["reasonkit_ms_per_step"] * 1e3
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=64, help="decode steps per model-level measurement")
    harness.common_args(ap, rounds=2, quick="8 steps, 1 round, print only")
    args = ap.parse_args(argv)
    steps, rounds = (8, 1) if args.quick else (args.steps, args.rounds)
    import torch  # noqa: F401  (before the machine is described: its CPU kernel level)

    bench = harness.start(__file__, args, argv)
    layer = layer_level(rounds)
    model = model_level([8, 32], steps, rounds)
    lines = ["| batch | cached tokens | sdpa ms | reasonkit ms | speed-up | mean abs err sdpa / reasonkit |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['batch']} | {r['cached_tokens']} | {r['sdpa_ms']:.3f} | {r['reasonkit_ms']:.3f} | "
              f"{r['speedup']:.1f}x | {r['sdpa_mean_abs_err']:.5f} / {r['reasonkit_mean_abs_err']:.5f} |"
              for r in layer]
    lines += ["", "| batch | prompt width | decode steps | sdpa ms/step | reasonkit ms/step | speed-up "
              "| reasonkit tok/s |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['batch']} | {r['prompt_width']} | {r['steps']} | {r['sdpa_ms_per_step']:.1f} | "
              f"{r['reasonkit_ms_per_step']:.1f} | {r['speedup']:.2f}x | {r['reasonkit_tokens_per_s']:.0f} |"
              for r in model]
    print("\n".join(lines))
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    md = ["# Decode-step attention: reasonkit vs transformers sdpa (CPU, bf16)", "",
          f"Measured {stamp} by `{bench.command}`. Best of {rounds} interleaved rounds.", "",
          harness.machine_line(bench.machine), "",
          "One attention call of one layer (SmolLM2-135M shapes: 9 query heads, 3 key-value heads, head size 64; "
          "one-token query; bf16 cache with left padding). Error: mean absolute difference from the same "
          "attention in fp32.", ""] + lines[:len(layer) + 2] + [
          "", f"Whole decode steps of the embedded SmolLM2-135M-Instruct in bf16 after a prefill of GSM8K prompts "
          f"(greedy, KV cache growing from the prompt width by {steps} tokens).", ""] + lines[len(layer) + 3:]
    bench.record({"layer_level": layer, "model_level": model}, md)


if __name__ == "__main__":
    main()
