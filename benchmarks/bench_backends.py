"""vLLM vs transformers generation on the embedded SmolLM2-135M-Instruct, side by side in one run.

Workload (issue 3): the first 64 GSM8K test questions, chat template, 4 samples each
(temperature 1.0, seed 0), at most 256 new tokens. Per backend it reports engine start-up (model
load, vLLM's profiling / KV-cache set-up) separately from generation: generated tokens / wall time
of the ``generate`` call. Then both backends generate greedily on the same items and the script
records how often they agree: identical completion token ids, identical extracted final number, and
the mean length of the common token prefix.

The load average before and after each run is recorded.

    python benchmarks/bench_backends.py --record   # full: 64 items x 4 samples x 256 tokens
    python benchmarks/bench_backends.py --quick    # smoke run: 8 items x 2 samples x 32 tokens, prints only
    python benchmarks/bench_backends.py --greedy-only --dtype float32 --record   # agreement only, in fp32

With ``--record`` the results go to ``benchmarks/results/backends.md`` and ``backends.json``
(``--greedy-only`` writes ``backends-greedy-<dtype>``; ``--results``, ``--suffix``: ``benchmarks/harness.py``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

import harness  # benchmarks/harness.py

ROOT = Path(__file__).resolve().parents[1]


def load_prompts(n_items: int, tokenizer) -> tuple[list[str], list[dict]]:
    """GSM8K test prompts rendered with the eval harness's gsm8k benchmark (fallback: the plain
    question in the model's chat template)."""
    try:
        from reasonkit.tasks.registry import get_benchmark

        bench = get_benchmark("gsm8k")
        items = bench.load("test", limit=n_items)
        return [bench.render(item, tokenizer) for item in items], items
    except ImportError:
        rows = [json.loads(line) for line in (ROOT / "reasonkit/data/gsm8k_test.jsonl").open()][:n_items]
        prompts = [tokenizer.apply_chat_template([{"role": "user", "content": r["question"]}], tokenize=False,
                                                 add_generation_prompt=True) for r in rows]
        return prompts, rows


def last_number(text: str) -> str | None:
    nums = re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)
    return nums[-1].replace(",", "").rstrip(".") if nums else None


def run_backend(name: str, prompts: list[str], sampled, greedy, options: dict) -> dict:
    """Start one backend, then time the sampled run (skipped when ``sampled`` is None) and the greedy run."""
    from reasonkit.engine import get_backend

    t0 = time.perf_counter()
    backend = get_backend(name, None, **options)
    startup = time.perf_counter() - t0
    result = {"backend": name, "startup_s": startup, "options": options, "load_avg_before": os.getloadavg()}
    try:
        # One tiny request first so one-off lazy set-up is not billed to the timed runs.
        from reasonkit.engine.types import SamplingConfig

        backend.generate(prompts[:1], SamplingConfig(max_tokens=4))
        runs = (("sampled", sampled), ("greedy", greedy)) if sampled is not None else (("greedy", greedy),)
        for label, sampling in runs:
            t0 = time.perf_counter()
            outputs = backend.generate(prompts, sampling)
            wall = time.perf_counter() - t0
            tokens = sum(len(c.token_ids) for o in outputs for c in o.completions)
            result[label] = {"wall_s": wall, "completions": sum(len(o.completions) for o in outputs),
                             "generated_tokens": tokens, "tokens_per_s": tokens / wall,
                             "truncated": sum(c.finish_reason == "length" for o in outputs for c in o.completions)}
            if label == "greedy":
                result["greedy_outputs"] = [o.completions[0] for o in outputs]
            print(f"  {name} {label}: {tokens} tokens in {wall:.1f} s = {tokens / wall:.1f} tok/s", flush=True)
    finally:
        backend.close()
    result["load_avg_after"] = os.getloadavg()
    return result


def agreement(a: list, b: list) -> dict:
    exact = sum(x.token_ids == y.token_ids for x, y in zip(a, b))
    answers = sum(last_number(x.text) == last_number(y.text) for x, y in zip(a, b))
    prefixes = []
    for x, y in zip(a, b):
        k = 0
        while k < min(len(x.token_ids), len(y.token_ids)) and x.token_ids[k] == y.token_ids[k]:
            k += 1
        prefixes.append(k)
    n = len(a)
    return {"items": n, "identical_completions": exact, "identical_rate": exact / n,
            "same_final_number": answers, "same_final_number_rate": answers / n,
            "mean_common_prefix_tokens": sum(prefixes) / n,
            "mean_greedy_tokens": sum(len(x.token_ids) for x in a) / n}


def markdown(record: dict, bench: harness.Run) -> str:
    w = record["workload"]
    lines = [
        "# Generation backends: vLLM vs transformers",
        "",
        f"Embedded SmolLM2-135M-Instruct, GSM8K test, {w['items']} items x "
        + ("1 greedy sample (the sampled run skipped: --greedy-only)" if w.get("greedy_only") else
           f"{w['samples']} samples (temperature {w['temperature']}, seed 0)")
        + f" x at most {w['max_tokens']} new tokens; dtype {w['dtype']}. "
        f"Produced by `{bench.command}` on {record['date']}.",
        "",
        harness.machine_line(bench.machine),
        "",
        "| backend | start-up (s) | sampled: wall (s) | sampled: tokens | sampled: tok/s | greedy: wall (s) "
        "| greedy: tok/s | load avg (1 min) before -> after |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in record["backends"]:
        s, g = r.get("sampled"), r["greedy"]
        sampled_cells = (f"{s['wall_s']:.1f} | {s['generated_tokens']} | {s['tokens_per_s']:.1f}" if s
                         else "not run | | ")
        lines.append(f"| {r['backend']} | {r['startup_s']:.1f} | {sampled_cells} | {g['wall_s']:.1f} | "
                     f"{g['tokens_per_s']:.1f} | {r['load_avg_before'][0]:.1f} -> {r['load_avg_after'][0]:.1f} |")
    if record.get("speedup_sampled"):
        lines += ["", f"vLLM / hf generation tokens/s: **{record['speedup_sampled']:.2f}x** sampled "
                      f"(target >= 3x), {record['speedup_greedy']:.2f}x greedy."]
    if "agreement" in record:
        a = record["agreement"]
        lines += ["", f"Greedy agreement on {a['items']} items: identical completions "
                      f"**{a['identical_completions']}/{a['items']} ({a['identical_rate']:.0%})**, same final number "
                      f"{a['same_final_number']}/{a['items']} ({a['same_final_number_rate']:.0%}), mean common prefix "
                      f"{a['mean_common_prefix_tokens']:.1f} of {a['mean_greedy_tokens']:.1f} tokens. " + (
                          f"Both backends run {w['dtype']}: every greedy completion is the same token sequence."
                          if a["identical_completions"] == a["items"] else
                          f"Both backends run {w['dtype']}; they differ in kernels (vLLM's CPU attention and GEMMs vs "
                          "torch's) and batching, so rounding differences flip near-tied argmaxes (bf16 logits tie "
                          "often) and the greedy paths diverge from there. In fp32 they agree: "
                          "`--greedy-only --dtype float32`.")]
    lines += ["", "hf batch size: " + str(record.get("hf_batch_size")) + "; vLLM: prefix caching on, "
              "VLLM_CPU_KVCACHE_SPACE=" + os.environ.get("VLLM_CPU_KVCACHE_SPACE", "?") + " GiB.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--hf-batch-size", type=int, default=32)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--backends", default="vllm,hf")
    parser.add_argument("--greedy-only", action="store_true",
                        help="skip the sampled run: greedy speed and agreement only "
                             "(results stem backends-greedy-<dtype>)")
    harness.common_args(parser, quick="8 items x 2 samples x 32 tokens, print only")
    args = parser.parse_args(argv)
    if args.quick:
        args.items, args.samples, args.max_tokens = min(args.items, 8), min(args.samples, 2), min(args.max_tokens, 32)
    stem = f"backends-greedy-{args.dtype}" if args.greedy_only else "backends"
    bench = harness.start(__file__, args, argv)

    from transformers import AutoTokenizer

    from reasonkit.engine.types import SamplingConfig
    from reasonkit.engine.models import resolve_model

    record = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "hf_batch_size": args.hf_batch_size,
              "workload": {"items": args.items, "samples": args.samples, "max_tokens": args.max_tokens,
                           "temperature": args.temperature, "dtype": args.dtype, "quick": args.quick,
                           "greedy_only": args.greedy_only}}
    model_path = resolve_model(None)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    prompts, _ = load_prompts(args.items, tokenizer)
    sampled = (None if args.greedy_only else
               SamplingConfig(n=args.samples, temperature=args.temperature, max_tokens=args.max_tokens, seed=0))
    greedy = SamplingConfig(n=1, temperature=0.0, max_tokens=args.max_tokens)
    options = {"vllm": {"dtype": args.dtype, "max_model_len": 2048},
               "hf": {"dtype": args.dtype, "batch_size": args.hf_batch_size}}
    results = []
    for name in args.backends.split(","):
        print(f"{name}: starting", flush=True)
        results.append(run_backend(name, prompts, sampled, greedy, options[name]))
        print(f"  {name} start-up {results[-1]['startup_s']:.1f} s", flush=True)
        # Keep what is measured so far if a later backend is interrupted.
        if bench.stem(stem) is not None:
            partial = {**record, "partial": True, "backends": [
                {k: v for k, v in r.items() if k != "greedy_outputs"} for r in results]}
            bench.record(partial, markdown(partial, bench).splitlines(), name=stem)
    by_name = {r["backend"]: r for r in results}
    if "vllm" in by_name and "hf" in by_name:
        v, h = by_name["vllm"], by_name["hf"]
        if sampled is not None:
            record["speedup_sampled"] = v["sampled"]["tokens_per_s"] / h["sampled"]["tokens_per_s"]
        record["speedup_greedy"] = v["greedy"]["tokens_per_s"] / h["greedy"]["tokens_per_s"]
        record["agreement"] = agreement(by_name["vllm"]["greedy_outputs"], by_name["hf"]["greedy_outputs"])
    for r in results:
        r.pop("greedy_outputs", None)
    record["backends"] = results
    print()
    md = markdown(record, bench)
    print(md)
    bench.record(record, md.splitlines(), name=stem)


if __name__ == "__main__":
    main()
