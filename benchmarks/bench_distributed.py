"""Seconds per GRPO step under DDP, DeepSpeed ZeRO-2, ZeRO-3 and FSDP2: 2 processes, one configuration.

Every engine runs the same command, ``accelerate launch --config_file train/accelerate/<engine>.yaml
--num_processes 2 reasonkit train ...``: the embedded SmolLM2-135M-Instruct in fp32, LoRA r=8 on
q/k/v/o, Countdown, 2 prompts x 4 completions x 32 new tokens per step (one group per process),
loss dapo, beta 0, gradient accumulation 1, hf rollouts, no checkpoints until the end. On this
project's CPU machines the processes talk over gloo (see reasonkit/grpo/distributed.py for how the
DeepSpeed and FSDP launches are made to run there); on GPUs the same command uses NCCL.

The trainer logs ``gen_seconds`` (rollouts: under ZeRO-3 and FSDP2 this includes gathering the
full parameters once per step) and ``step_seconds`` (rollouts + scoring + the update) for every
step; the table gives their means over the steps after the first (the first includes warm-up),
the update time (their difference), and the launch's wall time (start-up, model load and
the final checkpoint included). The machine is shared, so the load average before and after each
engine is recorded too. Results (with ``--record``): ``benchmarks/results/distributed.md`` and
``distributed.json`` (``benchmarks/harness.py``).

    python benchmarks/bench_distributed.py --record              # all four engines, 3 steps each
    python benchmarks/bench_distributed.py --engines zero2,fsdp2 --steps 4   # prints only
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import harness  # benchmarks/harness.py

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIGS = {"ddp": "ddp.yaml", "zero2": "deepspeed-zero2.yaml", "zero3": "deepspeed-zero3.yaml", "fsdp2": "fsdp2.yaml"}
PROMPTS, GROUP, TOKENS = 2, 4, 32


def _train_args(steps: int, out: str) -> list[str]:
    return ["train", "--dataset", "countdown", "--dtype", "fp32", "--lora-r", "8", "--group-size", str(GROUP),
            "--prompts-per-step", str(PROMPTS), "--max-tokens", str(TOKENS), "--loss-type", "dapo", "--beta", "0",
            "--learning-rate", "1e-5", "--max-steps", str(steps), "--save-steps", "0", "--log-completions-steps", "0",
            "--seed", "0", "--quiet", "--output", out]


def run_engine(name: str, steps: int, processes: int) -> dict:
    reasonkit = shutil.which("reasonkit")
    if reasonkit is None:
        raise SystemExit("reasonkit is not on PATH (activate the venv)")
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // processes)),
           "TOKENIZERS_PARALLELISM": "false"}
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "run")
        cmd = ["accelerate", "launch", "--config_file", f"train/accelerate/{CONFIGS[name]}", "--num_processes",
               str(processes), reasonkit, *_train_args(steps, out)]
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if res.returncode != 0:
            raise SystemExit(f"{name} failed (rc {res.returncode}):\n{res.stderr[-4000:]}")
        rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    later = rows[1:] or rows
    gen = sum(r["gen_seconds"] for r in later) / len(later)
    step = sum(r["step_seconds"] for r in later) / len(later)
    return {"engine": name, "config": f"train/accelerate/{CONFIGS[name]}", "processes": processes, "steps": len(rows),
            "gen_seconds": gen, "step_seconds": step, "update_seconds": step - gen, "wall_seconds": wall,
            "load_before": load_before, "load_after": os.getloadavg()[0],
            "per_step": [{k: r[k] for k in ("step", "gen_seconds", "step_seconds", "grad_norm", "reward")}
                         for r in rows]}


def markdown(result: dict, bench: harness.Run) -> str:
    lines = [f"# GRPO step time by distributed engine ({result['processes']} processes)", "",
             f"Configuration: {result['configuration']}; {result['transport']}.", "",
             harness.machine_line(bench.machine), "",
             "| engine | accelerate config | rollouts s/step | update s/step | total s/step | vs DDP | launch wall s "
             "| load avg before/after |",
             "|---|---|---|---|---|---|---|---|"]
    base = next((r["step_seconds"] for r in result["engines"] if r["engine"] == "ddp"), None)
    for r in result["engines"]:
        rel = f"{r['step_seconds'] / base:.2f}x" if base else "-"
        lines.append(f"| {r['engine']} | `{r['config']}` | {r['gen_seconds']:.2f} | {r['update_seconds']:.2f} | "
                     f"{r['step_seconds']:.2f} | {rel} | {r['wall_seconds']:.0f} | "
                     f"{r['load_before']:.1f} / {r['load_after']:.1f} |")
    lines += ["", f"Means over steps 2..{result['steps']} (step 1 includes warm-up). Written by "
              "`benchmarks/bench_distributed.py`; command: `" + bench.command + "`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", default=",".join(CONFIGS))
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--processes", type=int, default=2)
    harness.common_args(ap, quick=None)
    args = ap.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in CONFIGS]
    if unknown:
        harness.fail(f"--engines {unknown[0]}: choose from {', '.join(CONFIGS)}")
    import torch

    bench = harness.start(__file__, args, argv, benchmark="distributed")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = {"processes": args.processes, "steps": args.steps, "device": device,
              "transport": "NCCL on " + torch.cuda.get_device_name() if device == "cuda" else "gloo on CPU",
              "configuration": f"embedded SmolLM2-135M-Instruct fp32, LoRA r=8 q/k/v/o, countdown, {PROMPTS} prompts x "
                               f"{GROUP} completions x {TOKENS} tokens, dapo, beta 0, GA 1, hf rollouts",
              "engines": []}
    for name in engines:
        r = run_engine(name, args.steps, args.processes)
        print(f"{name}: {r['step_seconds']:.2f} s/step (rollouts {r['gen_seconds']:.2f}), wall {r['wall_seconds']:.0f} s",
              flush=True)
        result["engines"].append(r)
    md = markdown(result, bench)
    print(md)
    bench.record(result, md.splitlines())


if __name__ == "__main__":
    main()
