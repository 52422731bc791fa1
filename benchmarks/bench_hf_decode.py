"""The hf backend's generation paths side by side: what each of reasonkit's two changes buys.

Same model, prompts and greedy settings, one process, paths interleaved over ``--rounds`` (best kept;
``benchmarks/harness.py``):

* ``generate``: transformers ``model.generate`` with the model's sdpa attention (what
  lm-evaluation-harness runs; ``generate_with_model(..., fast_decode=False)``);
* ``generate + decode attention``: the same with :mod:`reasonkit.engine.hf_attention`
  switched on (CPU only; skipped on GPU, where it is not used);
* ``reasonkit`` (default): :func:`reasonkit.engine.hf_decode.decode_batch` (finished rows leave
  the batch) with the decode attention on CPU.

Reported per path: wall time, generated tokens/s, and how many completions are identical to the
``generate`` path's. The model is the embedded SmolLM2-135M-Instruct on GSM8K test prompts; with
``--random-weights CONFIG_DIR`` (a machine without the model, e.g. a lent GPU) a randomly
initialised model of that config on random prompt ids, where a token the model emits early in
about half the rows is made the EOS token so that completions have different lengths.

    python benchmarks/bench_hf_decode.py --record             # CPU, 64 items x 256 tokens, batch 32
    python benchmarks/bench_hf_decode.py --quick              # 16 items x 64 tokens, prints only
    python benchmarks/bench_hf_decode.py --device cuda --random-weights DIR --record --suffix=-cuda
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import harness  # benchmarks/harness.py

ROOT = Path(__file__).resolve().parents[1]


def load(args):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from reasonkit.engine.types import pick_dtype

    dtype = pick_dtype(args.dtype, args.device)
    if args.random_weights:
        config = AutoConfig.from_pretrained(args.random_weights)
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config, dtype=dtype).to(args.device).eval()
        g = torch.Generator().manual_seed(0)
        lengths = torch.randint(90, 200, (args.items,), generator=g).tolist()
        rows = [torch.randint(100, config.vocab_size, (n,), generator=g).tolist() for n in lengths]
        return model, None, rows, "random-weight " + config.model_type, dtype
    from reasonkit.tasks.registry import get_benchmark
    from reasonkit.engine.models import resolve_model

    path = resolve_model(None)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(args.device).eval()
    bench = get_benchmark("gsm8k")
    prompts = [bench.render(item, tok) for item in bench.load("test", limit=args.items)]
    rows = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    return model, tok, rows, "SmolLM2-135M-Instruct (embedded), GSM8K test prompts", dtype


class _Tok:
    """The little of a tokenizer that generate_with_model needs, for random token ids."""

    def __init__(self, eos: int, pad: int):
        self.eos_token_id, self.pad_token_id = eos, pad

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(map(str, ids))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--random-weights", metavar="CONFIG_DIR")
    harness.common_args(ap, rounds=1, quick="16 items x 64 tokens, print only")
    args = ap.parse_args(argv)
    if args.quick:
        args.items, args.max_tokens = min(args.items, 16), min(args.max_tokens, 64)

    import torch

    from reasonkit.engine.types import SamplingConfig
    from reasonkit.engine.hf import generate_with_model
    from reasonkit.engine.hf_attention import decode_attention
    from reasonkit.engine.hf_decode import decode_batch

    bench = harness.start(__file__, args, argv)
    model, tok, rows, what, dtype = load(args)
    if tok is None:  # random weights: pick an EOS token that about half the rows emit early
        free = decode_batch(model, rows, max_new_tokens=args.max_tokens, eos_ids=[-1], pad_id=0)
        first = {}
        for r in free:
            for t in set(r):
                first.setdefault(t, []).append(r.index(t))
        eos = min(first, key=lambda t: (abs(len(first[t]) - len(rows) // 2), sum(first[t])))
        tok = _Tok(eos, 0)
        model.generation_config.eos_token_id = eos
    sampling = SamplingConfig(max_tokens=args.max_tokens)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    cpu = not args.device.startswith("cuda")

    def run(path: str):
        if path == "reasonkit":
            return generate_with_model(model, tok, [""] * len(rows), sampling, batch_size=args.batch_size,
                                       prompt_token_ids=rows)
        with decode_attention(model, enabled=path == "generate + decode attention"):
            return generate_with_model(model, tok, [""] * len(rows), sampling, batch_size=args.batch_size,
                                       prompt_token_ids=rows, fast_decode=False)

    paths = ["generate"] + (["generate + decode attention"] if cpu else []) + ["reasonkit"]
    # warm-up (allocator, kernels, lazy imports) outside the timings
    generate_with_model(model, tok, ["", ""], SamplingConfig(max_tokens=4), prompt_token_ids=rows[:2])
    outputs: dict[str, list] = {}

    def timed(path: str):
        def go() -> None:
            sync()
            outputs[path] = run(path)
            sync()
        return go

    best = {path: t["min"] for path, t in harness.rounds({path: timed(path) for path in paths}, args.rounds).items()}
    ref = [o.completions[0].token_ids for o in outputs["generate"]]
    table = []
    for path in paths:
        ids = [o.completions[0].token_ids for o in outputs[path]]
        tokens = sum(len(x) for x in ids)
        table.append({"path": path, "wall_s": best[path], "tokens": tokens, "tokens_per_s": tokens / best[path],
                      "speedup": best["generate"] / best[path],
                      "identical_to_generate": sum(a == b for a, b in zip(ids, ref)),
                      "truncated": sum(len(x) >= args.max_tokens for x in ids)})
    device = torch.cuda.get_device_name() if not cpu else f"{bench.machine['arch']} CPU, {bench.machine['cores']} cores"
    head = (f"{what}; {len(rows)} prompts x 1 greedy completion x at most {args.max_tokens} new tokens, batch "
            f"{args.batch_size}, {str(dtype).replace('torch.', '')}, {device}; best of {args.rounds} round(s).")
    lines = ["| path | wall (s) | tokens | tokens/s | speed-up vs generate | identical to generate | truncated |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['path']} | {r['wall_s']:.1f} | {r['tokens']} | {r['tokens_per_s']:.0f} | {r['speedup']:.2f}x | "
              f"{r['identical_to_generate']}/{len(rows)} | {r['truncated']} |" for r in table]
    print(head)
    print("\n".join(lines))
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    md = ["# hf backend: transformers generate vs reasonkit's decode path", "", head, "",
          f"Measured {stamp} by `{bench.command}`.", "", harness.machine_line(bench.machine), ""] + lines + [
          "", "Identical: same completion token ids as plain `generate`. In bf16 a different kernel or batch shape "
          "flips near-tied argmaxes (bf16 logits tie often), so bf16 paths diverge on some rows; the tests hold the "
          "paths to identical output in fp32."]
    bench.record({"workload": head, "device": device, "paths": table}, md)

if __name__ == "__main__":
    main()
