"""A longer GRPO learning run on the embedded model, recorded as a reward curve (PNG) and a table.

Recipe (the same as tests/test_grpo_learning.py, longer): Countdown prompts whose assistant
pre-fill ends with ``<answer>``, reward ``format_soft`` (the completion closes the answer tag),
group 8, 2 prompts per step, 16 new tokens, LoRA r=8 on q/k/v/o, lr 3e-3, fp32, seed 0, CPU.

    python benchmarks/learning_curve.py --steps 30                 # train, then plot
    python benchmarks/learning_curve.py --from-run RUN_DIR         # plot an existing run

Writes ``benchmarks/results/learning_curve.png`` and ``benchmarks/results/learning_curve.md``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
PREFILL = "Let me solve this step by step.\n<think>\nI combine the numbers.\n</think>\n<answer>"
RECIPE = ["--dataset", "countdown", "--rewards", "format_soft", "--prefill", PREFILL, "--group-size", "8",
          "--prompts-per-step", "2", "--max-tokens", "16", "--learning-rate", "3e-3", "--lora-r", "8",
          "--lora-alpha", "16", "--lora-dropout", "0", "--dtype", "fp32", "--seed", "0", "--quiet"]


def train(steps: int, out: Path) -> None:
    cmd = [sys.executable, "-c", "from reasonkit.cli import main; main()", "train", *RECIPE, "--max-steps", str(steps), "--output", str(out),
           "--save-steps", "10"]
    subprocess.run(cmd, check=True)


def plot(run: Path, window: int = 5, note: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {r["step"]: r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}
    steps = sorted(rows)
    reward = [rows[s]["reward"] for s in steps]
    length = [rows[s]["completion_length"] for s in steps]
    smooth = [sum(reward[max(0, i - window + 1):i + 1]) / len(reward[max(0, i - window + 1):i + 1])
              for i in range(len(reward))]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, reward, "o", alpha=0.4, label="mean reward of the step (16 completions)")
    ax.plot(steps, smooth, "-", lw=2, label=f"moving mean ({window} steps)")
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("format_soft reward")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("reasonkit GRPO, SmolLM2-135M-Instruct + LoRA r=8, CPU")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "learning_curve.png", dpi=120)
    k = min(window, len(reward))
    md = ["# Learning curve: GRPO on the embedded model (CPU)", "",
          f"Recorded {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with "
          "`python benchmarks/learning_curve.py` (recipe in its docstring). ![curve](learning_curve.png)", "",
          f"Mean reward, first {k} steps: **{sum(reward[:k]) / k:.3f}**; last {k} steps: "
          f"**{sum(reward[-k:]) / k:.3f}**.", "", *([note, ""] if note else []),
          "| step | reward | completion length | truncated | zero-variance groups | step seconds |",
          "|---:|---:|---:|---:|---:|---:|"]
    for s in steps:
        r = rows[s]
        md.append(f"| {s} | {r['reward']:.3f} | {r['completion_length']:.1f} | {r['truncated']:.2f} | "
                  f"{r['zero_variance']:.2f} | {r.get('step_seconds', float('nan')):.0f} |")
    (RESULTS / "learning_curve.md").write_text("\n".join(md) + "\n")
    print("\n".join(md[:6]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--from-run", type=Path)
    ap.add_argument("--output", type=Path, default=Path("runs/train/learning-curve"))
    ap.add_argument("--note", default="", help="a sentence added to the markdown (how the run went)")
    args = ap.parse_args()
    run = args.from_run
    if run is None:
        train(args.steps, args.output)
        run = args.output
    plot(run, note=args.note)


if __name__ == "__main__":
    main()
