"""The same workload through a vLLM server (``--backend openai``) and through the in-process vLLM backend.

Workload (issue 9): the first 64 GSM8K test questions with the gsm8k benchmark's chat template, 4
samples each (temperature 1.0, seed 0), at most 256 new tokens, on the embedded SmolLM2-135M-Instruct.

1. A vLLM server is started on 127.0.0.1 (``reasonkit.engine.vllm_server``: the module form
   of ``vllm serve``, with the CPU settings of the in-process backend) and the prompts are sent by
   the openai backend at its default concurrency (64 per replica) through the chat endpoint, as
   ``reasonkit eval --backend openai`` does; one warm-up request first. The server is then stopped.
2. The in-process vLLM backend (``reasonkit eval --backend vllm``) generates the same prompts.

Both engines run with the same settings (dtype, max_model_len, the CPU KV cache and thread binding of
``reasonkit.engine.vllm``, prefix caching on, chunked prefill off on CPU) and, unless
``--lora``, without LoRA layers: a server started with ``--enable-lora`` runs its LoRA kernels on
every forward pass, which an in-process engine with no adapter does not, and that alone made an
earlier version of this script compare unlike engines. ``--lora`` enables LoRA on both.

Tokens/s = generated tokens (counted from the token ids each path returns) / wall time of the
generate call; start-up is reported apart. Each engine generates the workload ``--repeats`` times
(the same seeds, so the same completions up to engine nondeterminism); the ratio is that of the
median tokens/s, and its spread (slowest server over fastest in-process, and the reverse) is shown.
The two engines run one after the other, never at once, and the 1-minute load average before and
after each is recorded (the machine is shared).

    python benchmarks/bench_server.py --record        # full size -> benchmarks/results/server.{md,json}
    python benchmarks/bench_server.py --quick         # 16 items x 4 samples x 64 tokens, prints only

``--lora`` records ``server-lora``; ``--results``, ``--suffix``: ``benchmarks/harness.py``.
"""
from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from pathlib import Path

import harness  # benchmarks/harness.py

GOAL = 0.9


def timed(backend, prompts, sampling, repeats: int = 1) -> dict:
    tries = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        outputs = backend.generate(prompts, sampling)
        wall = time.perf_counter() - t0
        comps = [c for o in outputs for c in o.completions]
        tokens = sum(c.num_tokens or 0 for c in comps)
        tries.append({"wall_s": wall, "completions": len(comps), "generated_tokens": tokens,
                      "tokens_per_s": tokens / wall, "errors": sum(c.error is not None for c in comps),
                      "truncated": sum(c.finish_reason == "length" for c in comps)})
    median = sorted(tries, key=lambda t: t["tokens_per_s"])[len(tries) // 2]
    return {**median, "tries": tries, "tokens_per_s_all": [t["tokens_per_s"] for t in tries]}


def run_server(model_path, items, bench, sampling, dtype: str, concurrency, lora: bool, repeats: int) -> dict:
    from reasonkit.engine import get_backend
    from reasonkit.engine.vllm_server import running_server
    from reasonkit.engine.types import SamplingConfig
    from reasonkit.eval.engine_io import engine_prompt

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = Path(tempfile.gettempdir()) / f"reasonkit-bench-server-{port}.log"  # kept only if the run fails
    load_before = os.getloadavg()[0]
    with running_server(model_path, port, dtype=dtype, log=log, max_model_len=2048, enable_lora=lora) as (url, startup):
        backend = get_backend("openai", model_path, base_url=url, concurrency=concurrency)
        prompts = [engine_prompt(bench, it, backend, None) for it in items]
        backend.generate(prompts[:1], SamplingConfig(max_tokens=4))
        result = timed(backend, prompts, sampling, repeats)
        result.update(backend="vllm server (openai backend)", startup_s=startup, concurrency=backend.concurrency)
    log.unlink(missing_ok=True)
    result.update(load_avg_before=load_before, load_avg_after=os.getloadavg()[0])
    return result


def run_in_process(model_path, items, bench, sampling, dtype: str, lora: bool, repeats: int) -> dict:
    from reasonkit.engine import get_backend
    from reasonkit.engine.types import SamplingConfig

    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    lora_options = {"enable_lora": True, "max_lora_rank": 16, "max_loras": 2} if lora else {"enable_lora": False}
    backend = get_backend("vllm", None, dtype=dtype, max_model_len=2048, **lora_options)
    startup = time.perf_counter() - t0
    try:
        prompts = [bench.render(it, backend.tokenizer) for it in items]
        backend.generate(prompts[:1], SamplingConfig(max_tokens=4))
        result = timed(backend, prompts, sampling, repeats)
    finally:
        backend.close()
    result.update(backend="vllm in-process", startup_s=startup, load_avg_before=load_before,
                  load_avg_after=os.getloadavg()[0])
    return result


def markdown(record: dict, bench: harness.Run) -> str:
    w = record["workload"]
    lines = ["# Server vs in-process vLLM", "",
             f"Embedded SmolLM2-135M-Instruct, GSM8K test, {w['items']} items x {w['samples']} samples "
             f"(temperature {w['temperature']}, seed 0) x at most {w['max_tokens']} new tokens, {w['dtype']}. "
             f"LoRA {'enabled on both engines' if w.get('lora') else 'off on both engines'}. "
             f"Produced by `{bench.command}` on {record['date']} (the load average columns say how busy the machine "
             "was).", "", harness.machine_line(bench.machine), "",
             "| path | start-up (s) | wall (s, median try) | tokens | tok/s (median) | tok/s of each try | errors | "
             "load avg before -> after |",
             "|---|---:|---:|---:|---:|---|---:|---|"]
    for r in record["runs"]:
        each = ", ".join(f"{t:.1f}" for t in r.get("tokens_per_s_all", [r["tokens_per_s"]]))
        lines.append(f"| {r['backend']} | {r['startup_s']:.1f} | {r['wall_s']:.1f} | {r['generated_tokens']} | "
                     f"{r['tokens_per_s']:.1f} | {each} | {r['errors']} | {r['load_avg_before']:.1f} -> "
                     f"{r['load_avg_after']:.1f} |")
    ratio = record["ratio"]
    lo, hi = record.get("ratio_spread", (ratio, ratio))
    lines += ["", f"Server / in-process tokens/s: **{ratio:.2f}x** (spread {lo:.2f}-{hi:.2f}) at concurrency "
              f"{record['runs'][0]['concurrency']} (goal >= {GOAL}x: {'met' if ratio >= GOAL else 'not met'}).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--concurrency", type=int, default=None, help="default: the openai backend's (64)")
    parser.add_argument("--lora", action="store_true", help="LoRA enabled on both engines (results stem -lora)")
    parser.add_argument("--repeats", type=int, default=2, help="workload runs per engine (median and spread)")
    harness.common_args(parser, quick="16 items x 4 samples x 64 tokens, print only")
    args = parser.parse_args(argv)
    if args.quick:
        args.items, args.max_tokens = min(args.items, 16), min(args.max_tokens, 64)
    if args.repeats < 1:
        harness.fail(f"--repeats {args.repeats} must be at least 1")
    run = harness.start(__file__, args, argv)

    from reasonkit.engine.types import SamplingConfig
    from reasonkit.tasks.registry import get_benchmark
    from reasonkit.engine.models import resolve_model

    model_path = resolve_model(None)
    bench = get_benchmark("gsm8k")
    items = bench.load("test", limit=args.items)
    sampling = SamplingConfig(n=args.samples, temperature=args.temperature, max_tokens=args.max_tokens, seed=0)
    runs = [run_server(model_path, items, bench, sampling, args.dtype, args.concurrency, args.lora, args.repeats)]
    print(f"  server: {runs[0]['generated_tokens']} tokens in {runs[0]['wall_s']:.1f} s", flush=True)
    runs.append(run_in_process(model_path, items, bench, sampling, args.dtype, args.lora, args.repeats))
    print(f"  in-process: {runs[1]['generated_tokens']} tokens in {runs[1]['wall_s']:.1f} s", flush=True)
    record = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "workload": {"items": args.items, "samples": args.samples, "max_tokens": args.max_tokens,
                           "temperature": args.temperature, "dtype": args.dtype, "quick": args.quick,
                           "lora": args.lora, "repeats": args.repeats},
              "runs": runs, "ratio": runs[0]["tokens_per_s"] / runs[1]["tokens_per_s"],
              "ratio_spread": (min(runs[0]["tokens_per_s_all"]) / max(runs[1]["tokens_per_s_all"]),
                               max(runs[0]["tokens_per_s_all"]) / min(runs[1]["tokens_per_s_all"]))}
    text = markdown(record, run)
    print(text)
    run.record(record, text.splitlines(), name="server" + ("-lora" if args.lora else ""))


if __name__ == "__main__":
    main()
