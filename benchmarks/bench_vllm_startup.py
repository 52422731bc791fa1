"""vLLM engine start-up on CPU, with and without compilation (``enforce_eager``), against the hf backend.

The main job (``reasonkit eval --benchmark gsm8k --limit 16``) generates a few thousand tokens, so
on CPU what vLLM's engine costs to start decides whether it pays off (``--backend auto`` encodes
that cost in ``reasonkit.engine``). Each setting runs in a fresh process (no warm caches of
the parent): start the backend on the embedded model, then generate greedily for the first
``--items`` GSM8K test prompts with at most ``--max-tokens`` tokens. Reported: start-up seconds,
generation seconds, generated tokens and tokens/s, and the load average before each run.

    python benchmarks/bench_vllm_startup.py --record        # 16 items x 256 tokens, recorded
    python benchmarks/bench_vllm_startup.py --items 4 --max-tokens 32   # smoke run: prints only

With ``--record`` writes ``benchmarks/results/vllm_startup.md`` and ``.json`` (``benchmarks/harness.py``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import harness  # benchmarks/harness.py

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {  # label -> (backend, options)
    "hf": ("hf", {}),
    "vllm (default: compiled)": ("vllm", {}),
    "vllm enforce_eager=True": ("vllm", {"enforce_eager": True}),
}


def child(backend: str, options: dict, items: int, max_tokens: int) -> dict:
    from reasonkit.engine import get_backend
    from reasonkit.engine.types import SamplingConfig
    from reasonkit.tasks.registry import get_benchmark

    t0 = time.perf_counter()
    engine = get_backend(backend, None, **options)
    startup = time.perf_counter() - t0
    bench = get_benchmark("gsm8k")
    prompts = [bench.render(it, engine.tokenizer) for it in bench.load("test", limit=items)]
    t0 = time.perf_counter()
    outs = engine.generate(prompts, SamplingConfig(max_tokens=max_tokens))
    generation = time.perf_counter() - t0
    engine.close()
    tokens = sum(len(c.token_ids) for o in outs for c in o.completions)
    return {"startup_s": round(startup, 1), "generation_s": round(generation, 1), "tokens": tokens,
            "tokens_per_s": round(tokens / generation, 1)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    harness.common_args(ap, quick=None)
    args = ap.parse_args(argv)
    if args.child:
        backend, options = SETTINGS[args.child]
        print(json.dumps(child(backend, options, args.items, args.max_tokens)))
        return
    bench = harness.start(__file__, args, argv)
    rows = []
    for label in SETTINGS:
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--child", label, "--items", str(args.items),
                               "--max-tokens", str(args.max_tokens)], capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
            rows.append({"setting": label, "error": tail[:200], "load_before": round(load, 1)})
        else:
            rows.append({"setting": label, **json.loads(proc.stdout.strip().splitlines()[-1]),
                         "process_wall_s": round(wall, 1), "load_before": round(load, 1)})
        print(rows[-1], flush=True)
    header = "| setting | start-up (s) | generation (s) | tokens | tok/s | process wall (s) | load avg before |"
    table = [header, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            table.append(f"| {r['setting']} | failed: {r['error']} | | | | | {r['load_before']} |")
        else:
            table.append(f"| {r['setting']} | {r['startup_s']} | {r['generation_s']} | {r['tokens']} | "
                         f"{r['tokens_per_s']} | {r['process_wall_s']} | {r['load_before']} |")
    print("\n".join(table))
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    md = ["# vLLM start-up on CPU: compiled vs enforce_eager, and the hf backend", "",
          f"Embedded SmolLM2-135M-Instruct, first {args.items} GSM8K test prompts, greedy, at most "
          f"{args.max_tokens} new tokens; each setting in a fresh process. Measured {when} by `{bench.command}`.", "",
          harness.machine_line(bench.machine), "", *table]
    bench.record({"items": args.items, "max_tokens": args.max_tokens, "rows": rows}, md)


if __name__ == "__main__":
    main()
