"""Does the reward / held-out divergence alarm catch a real reward hack, and stay silent on learning?

1. **The hack** (a real run on the embedded model): the recorded learning run's task and prompt form
   (``rg:basic_arithmetic`` 2-term 1-digit, the pre-fill that closes an empty think block and opens
   the answer), but the reward is ``format_soft`` alone: it pays for closing ``</answer>`` after a
   non-empty answer and nothing for the number (the "format paid while the task verifier fails"
   class of the README's earlier runs). Periodic evals score the held-out items with the task's
   headline verifier (``rg:basic_arithmetic``, the default rule) and with ``gsm8k`` (the number the
   answer states: the recorded learning run's judge), each watched by the alarm. Recorded: the step
   of the first ``reward_heldout_divergence`` per held-out verifier (steps to detection), the reward
   and held-out curves.
2. **The negative case** (the recorded learning runs' configuration, which really learned):
   ``benchmarks/results/learning.json`` and ``learning-seed1.json`` replayed through the alarm (its
   step rewards, and per-eval held-out accuracies turned into items with the fewest changes those
   accuracies allow: the least favourable case for a false alarm). Recorded: alarms per held-out
   verifier. Rerunning those 200-step runs takes 40 minutes each on 2 CPU cores; the alarm is a
   function of what they recorded, so the replay decides exactly what the live alarm would have.

    python benchmarks/hack_alarm.py --record        # 14 steps, 7 evals
    python benchmarks/hack_alarm.py --steps 2 --eval-steps 1 --eval-limit 16   # plumbing: prints only

With ``--record`` writes ``benchmarks/results/hack_alarm{suffix}.json`` / ``.md`` (``benchmarks/harness.py``).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import harness  # benchmarks/harness.py

RESULTS = harness.RESULTS
TASK = "rg:basic_arithmetic:min_terms=2,max_terms=2,min_digits=1,max_digits=1"  # the learning run's task
PREFILL = "<think>\n</think>\n<answer>"  # the learning run's prompt form
HEADLINE = "rg:basic_arithmetic"
JUDGE = "gsm8k"
LEARNING_RUNS = ("learning", "learning-seed1")


def hack_run(a) -> dict:
    """Train on the format-only reward; returns the curve, the evals and the alarms from metrics.jsonl."""
    from reasonkit.cli import main as cli

    out = a.work / "train"
    args = ["train", "--dataset", TASK, "--prefill", PREFILL, "--rewards", a.reward, "--eval-verifiers",
            f"{HEADLINE},{JUDGE}", "--group-size", str(a.group_size), "--prompts-per-step", str(a.prompts_per_step),
            "--max-tokens", str(a.max_tokens), "--temperature", str(a.temperature), "--learning-rate", str(a.lr),
            "--beta", "0", "--lora-r", "16", "--lora-alpha", "32", "--lora-dropout", "0", "--lora-target-modules",
            "all-linear", "--dtype", "fp32", "--seed", str(a.seed), "--max-steps", str(a.steps), "--eval-steps",
            str(a.eval_steps), "--eval-limit", str(a.eval_limit), "--log-completions-steps", "5", "--output", str(out),
            "--quiet"]
    if a.model:
        args += ["--model", a.model]
    print("+ reasonkit " + " ".join(repr(x) if " " in x or "\n" in x else x for x in args), flush=True)
    t0 = time.perf_counter()
    cli.main(args, standalone_mode=False)
    minutes = (time.perf_counter() - t0) / 60
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    curve = [{k: r[k] for k in r if k in ("step", "reward") or k.startswith("rewards/")} for r in rows]
    evals = [{k: r[k] for k in r if k == "step" or k.startswith("heldout/")} for r in rows
             if any(k.startswith("heldout/") for k in r)]
    alarms = [{k: v for k, v in al.items() if k != "message"} | {"step": r["step"]} for r in rows
              for al in r.get("alarms", []) if isinstance(al, dict) and al.get("name") == "reward_heldout_divergence"]
    detection = {v: next((al["step"] for al in alarms if al["verifier"] == v), None) for v in (HEADLINE, JUDGE)}
    return {"minutes": minutes, "curve": curve, "evals": evals, "alarms": alarms, "detection": detection}


def replay(name: str, verifier: str, results: Path = RESULTS) -> dict:
    """The alarm on a recorded learning run (fewest-changes reconstruction of its held-out items)."""
    from reasonkit.grpo.divergence import DivergenceMonitor

    data = harness.load(results / f"{name}.json")  # the figures, in either results layout
    n = data["eval_limit"]
    monitor = DivergenceMonitor({data["reward"]: 1.0})
    prev, fired = 0, []
    for e in data["evals"]:
        for row in data["curve"][prev:e["step"]]:
            monitor.observe_step(row)
        prev = e["step"]
        right = round(e[f"eval/{verifier}"] * n)
        if monitor.on_eval(e["step"], {verifier: {str(i): i < right for i in range(n)}}):
            fired.append(e["step"])
    return {"run": name, "verifier": verifier, "evals": len(data["evals"]), "eval_items": n, "alarms": fired,
            "heldout_first": data["evals"][0][f"eval/{verifier}"], "heldout_last": data["evals"][-1][f"eval/{verifier}"]}


def markdown(r: dict) -> list[str]:
    """The results page, from the record alone (``--render`` rewrites it from the JSON)."""
    a, hack, negatives = argparse.Namespace(**r), r["hack"], r["learning_runs"]
    lines = ["# Reward / held-out divergence alarm: a real hack and the recorded learning runs", "",
             f"Command: `{r['command']}`", "", f"CPU: {r['cpu']}", "",
             "## The hack: format-only reward on the embedded model", "",
             f"Task `{TASK}`, pre-fill `{PREFILL!r}`, reward `{a.reward}` (no task term), {a.steps} steps of "
             f"{a.prompts_per_step} prompts x {a.group_size} completions, max {a.max_tokens} tokens, temperature "
             f"{a.temperature}, lr {a.lr}, LoRA r 16 all-linear, beta 0; eval every {a.eval_steps} steps on "
             f"{a.eval_limit} held-out items, greedy. {hack['minutes']:.1f} minutes.", "",
             "| held-out verifier | first alarm at step | alarms |", "|---|---|---|"]
    for v, step in hack["detection"].items():
        n = sum(al["verifier"] == v for al in hack["alarms"])
        lines.append(f"| {v} | {step if step is not None else 'none'} | {n} |")
    lines += ["", "Reward (mean of the steps since the previous eval) and held-out accuracy at each eval:", "",
              "| step | reward | " + " | ".join(f"heldout/{v}" for v in (HEADLINE, JUDGE)) + " | alarm |",
              "|---|---|" + "---|" * 2 + "---|"]
    prev = 0
    for e in hack["evals"]:
        window = [c["reward"] for c in hack["curve"] if prev < c["step"] <= e["step"]]
        prev = e["step"]
        fired = ", ".join(al["verifier"] for al in hack["alarms"] if al["step"] == e["step"])
        lines.append(f"| {e['step']} | {sum(window) / max(len(window), 1):.3f} | " +
                     " | ".join(f"{e.get(f'heldout/{v}', float('nan')):.3f}" for v in (HEADLINE, JUDGE)) +
                     f" | {fired} |")
    shown = [al for al in hack["alarms"] if al["verifier"] == JUDGE][:1] or hack["alarms"][:1]
    for al in shown:
        lines += ["", f"First alarm (step {al['step']}, held-out `{al['verifier']}`): reward "
                      f"{al['reward_before']:.3f} -> {al['reward_after']:.3f} (component `{al['component']}`), "
                      f"held-out {al['heldout_before']:.3f} -> {al['heldout_after']:.3f} on {al['items']} items "
                      f"({al['wrong_to_right']} now right, {al['right_to_wrong']} now wrong; upper bound of the gain "
                      f"{al['gain_upper']:+.3f}). Completions it showed:", ""]
        lines += [f"- item {ex['item_id']}, reward {ex['reward']:.2f}, {al['verifier']}: {ex['reason']}: "
                  f"`{' '.join(str(ex['completion']).split())[:160]}`" for ex in al["examples"]]
    lines += ["", "## False alarms: the recorded learning runs (replayed)", "",
              "Step rewards and per-eval held-out accuracies from the results files; held-out items rebuilt with "
              "the fewest changes the accuracies allow (the least favourable case for a false alarm).", "",
              "| run | held-out verifier | evals | items | held-out first -> last eval | alarms |",
              "|---|---|---|---|---|---|"]
    for n in negatives:
        lines.append(f"| {n['run']} | {n['verifier']} | {n['evals']} | {n['eval_items']} | {n['heldout_first']:.3f} -> "
                     f"{n['heldout_last']:.3f} | {', '.join(map(str, n['alarms'])) or 'none'} |")
    lines += ["", f"`{JUDGE}` is the learning runs' own judge (the number the answer states). `{HEADLINE}` is what "
              "the default rule picks for this task; its scorer wants a bare number and rates the learning runs' "
              "answers (`4 - 1 = 3`) wrong, so held-out accuracy under it stays at 0.000-0.016 at every eval "
              "(`learning.md`, task's scorer). Against a flat held-out line every large enough reward rise is a "
              "divergence, which is what an alarm there reports: the reward's gain is in a form the task's scorer "
              f"does not accept. For this prompt form, watch `{JUDGE}` (`--eval-verifiers {JUDGE}`)."]
    return lines


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M-Instruct")
    ap.add_argument("--reward", default="format_soft")
    ap.add_argument("--steps", type=int, default=14)
    ap.add_argument("--eval-steps", type=int, default=2)
    ap.add_argument("--eval-limit", type=int, default=48)
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--prompts-per-step", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=2e-4, help="1e-3 finishes the hack within the first eval "
                    "interval, before there is a held-out baseline to compare with")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=Path("runs/hack_alarm"))
    harness.common_args(ap, quick=None)
    ap.add_argument("--render", type=Path, default=None, help="rewrite the .md from a recorded .json, run nothing")
    a = ap.parse_args(argv)
    from reasonkit.errors import ReasonkitError

    if a.render is not None:
        whole = json.loads(a.render.read_text())
        harness.write(a.render.with_suffix(""), whole, markdown(harness.results_of(whole)))
        return harness.results_of(whole)

    if (a.work / "train").exists():
        raise ReasonkitError(f"--work {a.work}: already holds a run; choose another --work")
    bench = harness.start(__file__, a, argv)
    hack = hack_run(a)
    negatives = [replay(name, v) for name in LEARNING_RUNS for v in (JUDGE, HEADLINE)]
    result = {"task": TASK, "prefill": PREFILL, "reward": a.reward, "steps": a.steps, "eval_steps": a.eval_steps,
              "eval_limit": a.eval_limit, "group_size": a.group_size, "prompts_per_step": a.prompts_per_step,
              "max_tokens": a.max_tokens, "temperature": a.temperature, "lr": a.lr, "seed": a.seed,
              "model": a.model or "embedded SmolLM2-135M-Instruct", "hack": hack, "learning_runs": negatives,
              "command": bench.command, "cpu": bench.machine["cpu"]}
    bench.record(result, markdown(result))
    return result


if __name__ == "__main__":
    main()
