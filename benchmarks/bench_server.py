"""The same workload through a vLLM server (``--backend openai``) and through the in-process vLLM backend.

Workload (issue 9): the first 64 GSM8K test questions with the gsm8k benchmark's chat template, 4
samples each (temperature 1.0, seed 0), at most 256 new tokens, on the embedded SmolLM2-135M-Instruct.

1. A vLLM server is started on 127.0.0.1 (``reasonkit.eval.backends.vllm_server``: the module form
   of ``vllm serve``, with the CPU settings of the in-process backend) and the prompts are sent by
   the openai backend at its default concurrency (32 per replica) through the chat endpoint, as
   ``reasonkit eval --backend openai`` does; one warm-up request first. The server is then stopped.
2. The in-process vLLM backend (``reasonkit eval --backend vllm``) generates the same prompts.

Tokens/s = generated tokens (counted from the token ids each path returns) / wall time of the
generate call; start-up is reported apart. The two run one after the other, never at once, and the
1-minute load average before and after each is recorded (the machine is shared).

    python benchmarks/bench_server.py                 # full size -> benchmarks/results/server.{md,json}
    python benchmarks/bench_server.py --quick         # 16 items x 4 samples x 64 tokens -> server-quick.{md,json}
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.9


def timed(backend, prompts, sampling) -> dict:
    t0 = time.perf_counter()
    outputs = backend.generate(prompts, sampling)
    wall = time.perf_counter() - t0
    comps = [c for o in outputs for c in o.completions]
    tokens = sum(c.num_tokens or 0 for c in comps)
    return {"wall_s": wall, "completions": len(comps), "generated_tokens": tokens, "tokens_per_s": tokens / wall,
            "errors": sum(c.error is not None for c in comps), "truncated": sum(c.finish_reason == "length"
                                                                                for c in comps)}


def run_server(model_path, items, bench, sampling, dtype: str, concurrency) -> dict:
    from reasonkit.eval.backends import get_backend
    from reasonkit.eval.backends.vllm_server import running_server
    from reasonkit.eval.backends.base import SamplingConfig
    from reasonkit.eval.engine_io import engine_prompt

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = Path(tempfile.gettempdir()) / f"reasonkit-bench-server-{port}.log"  # kept only if the run fails
    load_before = os.getloadavg()[0]
    with running_server(model_path, port, dtype=dtype, log=log, max_model_len=2048) as (url, startup):
        backend = get_backend("openai", model_path, base_url=url, concurrency=concurrency)
        prompts = [engine_prompt(bench, it, backend, None) for it in items]
        backend.generate(prompts[:1], SamplingConfig(max_tokens=4))
        result = timed(backend, prompts, sampling)
        result.update(backend="vllm server (openai backend)", startup_s=startup, concurrency=backend.concurrency)
    log.unlink(missing_ok=True)
    result.update(load_avg_before=load_before, load_avg_after=os.getloadavg()[0])
    return result


def run_in_process(model_path, items, bench, sampling, dtype: str) -> dict:
    from reasonkit.eval.backends import get_backend
    from reasonkit.eval.backends.base import SamplingConfig

    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    backend = get_backend("vllm", None, dtype=dtype, max_model_len=2048)
    startup = time.perf_counter() - t0
    try:
        prompts = [bench.render(it, backend.tokenizer) for it in items]
        backend.generate(prompts[:1], SamplingConfig(max_tokens=4))
        result = timed(backend, prompts, sampling)
    finally:
        backend.close()
    result.update(backend="vllm in-process", startup_s=startup, load_avg_before=load_before,
                  load_avg_after=os.getloadavg()[0])
    return result


def markdown(record: dict) -> str:
    w = record["workload"]
    lines = ["# Server vs in-process vLLM", "",
             f"Embedded SmolLM2-135M-Instruct, GSM8K test, {w['items']} items x {w['samples']} samples "
             f"(temperature {w['temperature']}, seed 0) x at most {w['max_tokens']} new tokens, {w['dtype']}. "
             f"Produced by `python benchmarks/bench_server.py{' --quick' if w['quick'] else ''}` on "
             f"{record['date']} ({record['cores']} cores; the load average columns say how busy the machine was).", "",
             "| path | start-up (s) | wall (s) | tokens | tok/s | errors | load avg before -> after |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in record["runs"]:
        lines.append(f"| {r['backend']} | {r['startup_s']:.1f} | {r['wall_s']:.1f} | {r['generated_tokens']} | "
                     f"{r['tokens_per_s']:.1f} | {r['errors']} | {r['load_avg_before']:.1f} -> "
                     f"{r['load_avg_after']:.1f} |")
    ratio = record["ratio"]
    lines += ["", f"Server / in-process tokens/s: **{ratio:.2f}x** at concurrency {record['runs'][0]['concurrency']} "
              f"(goal >= {GOAL}x: {'met' if ratio >= GOAL else 'not met'}).", ""]
    if w["quick"]:
        lines += ["This is the --quick size; the full size (64 x 4 x 256) was not run.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--concurrency", type=int, default=None, help="default: the openai backend's (32)")
    parser.add_argument("--quick", action="store_true", help="16 items x 4 samples x 64 tokens")
    parser.add_argument("--out", default=None, help="results stem (default benchmarks/results/server[-quick])")
    args = parser.parse_args()
    if args.quick:
        args.items, args.max_tokens = min(args.items, 16), min(args.max_tokens, 64)
    stem = Path(args.out) if args.out else ROOT / "benchmarks/results" / ("server-quick" if args.quick else "server")

    from reasonkit.eval.backends.base import SamplingConfig
    from reasonkit.eval.benchmarks import get_benchmark
    from reasonkit.models import resolve_model

    model_path = resolve_model(None)
    bench = get_benchmark("gsm8k")
    items = bench.load("test", limit=args.items)
    sampling = SamplingConfig(n=args.samples, temperature=args.temperature, max_tokens=args.max_tokens, seed=0)
    runs = [run_server(model_path, items, bench, sampling, args.dtype, args.concurrency)]
    print(f"  server: {runs[0]['generated_tokens']} tokens in {runs[0]['wall_s']:.1f} s", flush=True)
    runs.append(run_in_process(model_path, items, bench, sampling, args.dtype))
    print(f"  in-process: {runs[1]['generated_tokens']} tokens in {runs[1]['wall_s']:.1f} s", flush=True)
    record = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
              "workload": {"items": args.items, "samples": args.samples, "max_tokens": args.max_tokens,
                           "temperature": args.temperature, "dtype": args.dtype, "quick": args.quick},
              "runs": runs, "ratio": runs[0]["tokens_per_s"] / runs[1]["tokens_per_s"]}
    text = markdown(record)
    print(text)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    stem.with_suffix(".md").write_text(text)
    print(f"wrote {stem.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
