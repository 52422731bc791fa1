"""Does GRPO teach the embedded model a task? survey -> train -> held-out eval -> report, in one script.

1. **Survey**: for each candidate task, ``reasonkit eval`` measures the base model's pass@1 and pass@8
   (``--n 8 --temperature 1``) on ``--survey-items`` test items (GRPO turns pass@k into pass@1), by
   the reward's verifier and by the task's own scorer.
2. **Pilot**: a ``--pilot-steps`` training run on each candidate whose pass@8 exceeds its pass@1; the
   task trained is the one whose training reward rose most over its pilot (:func:`pilot`; ties: the
   largest pass@8 - pass@1 gap; ``--pilot-steps 0`` picks by the gap alone, ``--task`` skips the
   choice). A first full run on the largest-gap task (3-term sums)
   at lr 3e-4 collapsed into copying the question (``9-3+7</answer>``, reward falling for 40 steps):
   the survey alone does not say what the trainer can move, so the pilot measures it. Candidates whose
   training split has fewer than 50 distinct questions are not piloted (a products run at difficulty
   0 trained on one question, reached reward 1.0 and stayed at 0.06-0.09 held-out).
3. **Train**: ``reasonkit train --dataset TASK --rewards REWARD``, periodic held-out evaluation
   (``--eval-steps``, scored by the benchmark's verifiers and the reward's), TensorBoard logging.
4. **Judge**: base and adapter on ``--heldout`` test items (never in training: see
   :mod:`reasonkit.verifiers.reasoning_gym`), greedy and at temperature 1, with ``reasonkit eval
   --lora`` and ``reasonkit report``'s paired sign test; plus untrained tasks (``--control``), and a
   lenient breakdown of where a change comes from (answers finished, right numbers, equations
   written out) and a paired same-form comparison with its own sign test
   (``benchmarks/learning_analysis.py``). ``--beta`` (default 0.04) is the weight of the KL term of the training run.
5. **Record** (with ``--record``; ``benchmarks/harness.py``): ``benchmarks/results/learning{suffix}.json``
   / ``.md`` / ``.png`` (reward per step, held-out accuracy per periodic eval, truncation rate). Every
   number is read from the run files.

    python benchmarks/learning_run.py --record             # the full run (its time is in the record)
    python benchmarks/learning_run.py --steps 2 --survey-items 2 --heldout 4   # plumbing: prints only

**The reward** (``--reward``, default ``gsm8k_computed``): the number the answer states is right. All
candidates share one prompt form: the reasoning system prompt and an assistant pre-fill that closes
an empty think block and opens the answer tag (``--prefill``; a 135M model does not write the tags on
its own). Asked ``4 - 1 =``, the base model sometimes writes the sum out (``4 - 1 = 3``) and sometimes
a bare number (``3</answer>``), and the first form is right far more often. reasoning-gym's scorers
want the bare number and give 0 to ``4 - 1 = 3``: greedy, on 64 items of 2-term sums, the task's
scorer rated 0.000 under every pre-fill tried, while the ``gsm8k`` verifier rated 0.33 (this
pre-fill) to 0.52 (``<answer>`` alone). The ``.exact`` reward (``--reward task``) had a success rate
of 1-4 % at temperature 1, so nearly every group had no signal (see the earlier runs in docs/results/learning.md). The
``gsm8k`` verifier reads the number the answer states (after the last ``=``, or a final "the answer
is N"), with its policy against hedged answers and invented turns, and pays nothing for the form.
It also reads an answer left as arithmetic as its value (``<answer>5 - 3</answer>`` is 2), and here
the question *is* that arithmetic: the recorded re-run of 2026-12-07, trained with ``gsm8k`` (the
default then), learned to give the question back in many of its greedy answers
(``docs/results/learning.md``). ``gsm8k_computed`` counts such an answer wrong, so a rise in its
accuracy is a rise in right numbers; ``learning_analysis.computed`` gives that reading of a run
judged with ``gsm8k``. The task's own scorer is reported next to it, and the ``shows_equation``
share says how much of a change comes from writing the sum out.

**What the judge separates.** With the think block pre-filled, the base model guesses a bare number
more often than with ``<answer>`` alone, and is right less often; GRPO can gain by making it write
the sum out (a one-line working it computes better), which is a gain of the trained prompt, not of
arithmetic. So the trained task is judged a third time, greedy, with ``--alt-prefill``
(``<answer>``) for base and adapter: the adapter under the training prompt against the base under
its better one says what is left once the prompt form is matched. Rollouts sample at
``--temperature`` 0.7: at 1, on the items the 135M model's greedy answer gets wrong, 1.6 % of its
samples are right (a probe of 32 items x 8), so there is almost nothing to reinforce where greedy
fails (pilots of 30 steps at 1 left greedy held-out accuracy unchanged; at 0.7 it moved).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import harness  # benchmarks/harness.py
from learning_analysis import breakdown, computed, plot, same_form  # benchmarks/learning_analysis.py

# Task spaces large enough that the training split keeps thousands of distinct questions after the
# test questions are dropped (products at difficulty 0 keeps one, 2-term one-digit sums 200 at most).
CANDIDATES = [
    "rg:chain_sum:min_terms=2,max_terms=2,min_digits=1,max_digits=2",          # a +- b, one or two digits
    "rg:chain_sum:min_terms=3,max_terms=3,min_digits=1,max_digits=1",          # a +- b +- c, one digit each
    "rg:basic_arithmetic:min_terms=2,max_terms=2,min_digits=1,max_digits=1",  # a op b, + - * /
    "rg:products:difficulty=0,min_digits=1,max_digits=2",                      # a * b, up to two digits
]
# untrained tasks that must not drop (the trained one is left out): another operation, and no arithmetic
CONTROLS = ["rg:products:min_digits=1,max_digits=1", "rg:letter_counting:difficulty=0"]
# the reward and the judge's headline: the number the answer states (see the module docstring)
REWARD = "gsm8k_computed"  # gsm8k pays an answer that gives the question back (see the module docstring)
PREFILL = "<think>\n</think>\n<answer>"  # the form the system prompt asks for, reasoning left empty
ALT_PREFILL = "<answer>"  # judged too: the base model's better prompt form (see the module docstring)


def reasonkit(*args: str) -> None:
    """One ``reasonkit`` command, in this process (the CLI exactly as a user runs it, minus the exit)."""
    from reasonkit.cli import main as cli

    print("+ reasonkit " + " ".join(repr(x) if " " in x or "\n" in x else x for x in args), flush=True)
    cli.main(list(args), standalone_mode=False)


def summary(run: Path):
    from reasonkit.eval.store import read_summary

    return read_summary(run / "summary.json")  # a reasonkit.records.Summary


def primary_stats(run: Path, adapter: str = "base") -> dict:
    s = summary(run)
    return dict(s.metrics(adapter)) | {"truncation_rate": s.adapter(adapter).truncation_rate}


def eval_args(a, bench: str, limit: int, out: Path, *, n: int = 1, temperature: float = 0.0,
              lora: str | None = None, prefill: str | None = None) -> list[str]:
    args = ["eval", "-b", bench, "--backend", "hf", "--limit", str(limit), "--n", str(n), "--temperature",
            str(temperature), "--max-tokens", str(a.max_tokens), "--prefill", prefill or a.prefill, "--seed", str(a.seed),
            "-q", "-o", str(out)]
    for v in dict.fromkeys([judge_verifier(a, bench), own_verifier(bench)]):
        args += ["--verifier", v]
    if a.model:
        args += ["--model", a.model]
    if lora:
        args += ["--lora", f"adapter={lora}"]
    return args


def own_verifier(task: str) -> str:
    """The task's own scorer: ``rg:chain_sum`` for ``rg:chain_sum:min_terms=2,...``."""
    return f"rg:{task[3:].partition(':')[0]}"


def reward_expression(a, task: str) -> str:
    """``--reward``; ``task`` is the task's own scorer without partial credit (``rg:TASK.exact``)."""
    return f"{own_verifier(task)}.exact" if a.reward == "task" else a.reward


def judge_verifier(a, task: str) -> str:
    """The judge's headline: the reward's first verifier (``rg:TASK`` for ``--reward task``)."""
    from reasonkit.verifiers.compose import parse_expression

    first = next(iter(parse_expression(reward_expression(a, task))))
    return own_verifier(task) if first.endswith(".exact") else first


def check_reward(a) -> None:
    """``--reward`` resolves for every candidate, before an hour of work: else one line, exit 2."""
    from reasonkit.verifiers.compose import resolve

    for task in [a.task] if a.task else a.candidates:
        try:
            resolve(reward_expression(a, task))
        except ValueError as exc:  # unknown names and malformed expressions (VerifierLookupError)
            print(f"learning_run.py: --reward {a.reward!r}: {exc}", file=sys.stderr)
            raise SystemExit(2) from None


def survey(a, work: Path) -> list[dict]:
    rows = []
    for i, task in enumerate(a.candidates):
        out = work / "survey" / str(i)
        reasonkit(*eval_args(a, task, a.survey_items, out, n=8, temperature=1.0))
        st = primary_stats(out)
        own = summary(out).metrics("base", own_verifier(task))
        rows.append({"task": task, "items": st["items"], "pass@1": st["pass@1"], "pass@8": st.get("pass@8"),
                     "own_pass@1": own.pass_at(1), "own_pass@8": own.pass_at(8),
                     "truncation_rate": st["truncation_rate"], "train_questions": train_questions(task)})
    return rows


def train_questions(task: str) -> int:
    """Distinct questions of the task's training split (after the test questions are dropped)."""
    from reasonkit.verifiers.reasoning_gym import generate_items

    return len({it["question"] for it in generate_items(task[3:], "train")})


def choose(rows: list[dict]) -> str:
    ok = [r for r in rows if r["pass@1"] < 0.6 and (r["pass@8"] or 0) > r["pass@1"]]
    best = max(ok or rows, key=lambda r: (r.get("pilot_gain", 0.0), (r["pass@8"] or 0) - r["pass@1"]))
    return best["task"]


def pilot(a, rows: list[dict], work: Path) -> None:
    """A short training run (``--pilot-steps``) on each candidate with pass@8 > pass@1: which task the
    trainer can actually move is measured, not guessed from the survey. The measure is the rise of the
    training reward, mean of the last 3 steps minus mean of the first 3 (``pilot_gain``: 3 x 32
    completions a side, on training items only, so the choice never looks at the test items the
    judge scores). The pilot's held-out accuracy (greedy, the first ``--eval-limit`` test items) is
    recorded as ``pilot_accuracy`` but not used: on 64 items one item is 1.6 points. ``--reuse`` keeps
    a pilot already complete in ``--work``."""
    from reasonkit.grpo.data_order import FEW_PROMPTS

    # a task whose training split has few distinct questions is learnt by heart (see few_prompts_warning)
    hopeful = [r for r in rows if (r["pass@8"] or 0) > r["pass@1"] and r.get("train_questions", 0) >= FEW_PROMPTS] \
        or rows  # none: try them all
    for i, r in enumerate(rows):
        if r not in hopeful:
            continue
        run = work / "pilot" / str(i)
        done = run / "metrics.jsonl"
        if not (a.reuse and done.is_file() and len(done.read_text().splitlines()) == a.pilot_steps):
            train(a, r["task"], run, steps=a.pilot_steps, eval_steps=a.pilot_steps)
        steps, evals = curves(run)
        minutes = sum(x.get("step_seconds", 0.0) for x in steps) / 60
        key = f"eval/{judge_verifier(a, r['task'])}"
        k = max(1, min(3, len(steps) // 2))
        r.update(pilot_accuracy=evals[-1].get(key) if evals else None, pilot_minutes=round(minutes, 2),
                 pilot_reward_first=sum(x["reward"] for x in steps[:k]) / k,
                 pilot_reward_last=sum(x["reward"] for x in steps[-k:]) / k)
        r["pilot_gain"] = r["pilot_reward_last"] - r["pilot_reward_first"]


def train(a, task: str, out: Path, steps: int | None = None, eval_steps: int | None = None) -> float:
    args = ["train", "--dataset", task, "--prefill", a.prefill, "--rewards", reward_expression(a, task),
            "--group-size", str(a.group_size),
            "--prompts-per-step", str(a.prompts_per_step), "--max-tokens", str(a.max_tokens),
            "--temperature", str(a.temperature), "--learning-rate", str(a.lr), "--beta", str(a.beta), "--lora-r", "16", "--lora-alpha", "32", "--lora-dropout", "0",
            "--lora-target-modules", "all-linear", "--dtype", "fp32", "--seed", str(a.seed), "--max-steps",
            str(steps or a.steps), "--eval-steps", str(eval_steps or a.eval_steps), "--eval-limit", str(a.eval_limit),
            "--log-completions-steps", "5", "--report-to", "tensorboard", "--output", str(out)]
    if a.model:
        args += ["--model", a.model]
    t0 = time.perf_counter()
    reasonkit(*args)
    return (time.perf_counter() - t0) / 60


def judge(a, task: str, adapter: Path, work: Path) -> dict:
    from reasonkit.eval.report import report

    out: dict = {}
    controls = [c for c in a.control if c != task]
    plan = [("greedy", task, 1, 0.0, None), ("t1", task, 4, 1.0, None)]
    if a.alt_prefill is not None and a.alt_prefill != a.prefill:  # the base's other prompt form
        plan.append(("greedy-alt-prefill", task, 1, 0.0, a.alt_prefill))
    plan += [(f"control{i + 1}" if len(controls) > 1 else "control", c, 1, 0.0, None) for i, c in enumerate(controls)]
    for label, bench, n, temp, prefill in plan:
        run = work / f"judge-{label}"
        reasonkit(*eval_args(a, bench, a.heldout, run, n=n, temperature=temp, lora=str(adapter), prefill=prefill))
        _, _, tests = report([run], md=str(run / "report.md"))
        verifier, rows = judge_verifier(a, bench), samples(run)
        own = {m: summary(run).metrics(m, own_verifier(bench)).accuracy for m in ("base", "adapter")}
        out[label] = {"task": bench, "verifier": verifier, "prefill": prefill or a.prefill,
                      "base": primary_stats(run, "base"), "adapter": primary_stats(run, "adapter"),
                      "paired": tests[0] if tests else None, "own_scorer": {"verifier": own_verifier(bench), **own},
                      "breakdown": breakdown(rows), "same_form": same_form(rows, verifier),
                      "computed": computed(rows, prefill or a.prefill)}
    return out


def samples(run: Path) -> list[dict]:
    from reasonkit.eval.store import read_samples

    return read_samples(run / "samples.jsonl")[0]


def curves(run: Path) -> tuple[list[dict], list[dict]]:
    rows = {r["step"]: r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}
    steps = [rows[k] for k in sorted(rows)]
    evals = [{"step": r["step"], **{k: v for k, v in r.items() if k.startswith("eval/")}} for r in steps
             if any(k.startswith("eval/") for k in r)]
    return steps, evals


def survey_table(rows: list[dict], reward: str) -> list[str]:
    lines = [f"| task | items | pass@1 ({reward}) | pass@8 ({reward}) | pass@1 (task's scorer) | "
             "pass@8 (task's scorer) | truncated | distinct train questions |", "|---|---|---|---|---|---|---|---|"]
    return lines + [f"| {r['task']} | {r['items']} | {r['pass@1']:.3f} | {r['pass@8'] or 0:.3f} | "
                    f"{r.get('own_pass@1') or 0:.3f} | {r.get('own_pass@8') or 0:.3f} | {r['truncation_rate']:.2f} | "
                    f"{r.get('train_questions', 'n/a')} |" for r in rows]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|").replace("`", "'")


def check_reused(a, task: str, run: Path) -> None:
    """``--reuse`` takes a finished training run only if it was trained as this command asks."""
    import yaml

    from reasonkit.errors import ReasonkitError

    saved = yaml.safe_load((run / "config.yaml").read_text()) or {}
    wanted = {"dataset": task, "beta": a.beta, "learning_rate": a.lr, "temperature": a.temperature, "seed": a.seed,
              "max_steps": a.steps, "group_size": a.group_size, "prompts_per_step": a.prompts_per_step,
              "max_tokens": a.max_tokens}
    for key, value in wanted.items():
        if saved.get(key) != value:
            raise ReasonkitError(f"--reuse: {run} was trained with {key} {saved.get(key)!r}, not {value!r}; "
                                 "drop --reuse or give another --work")


def write(bench: harness.Run, result: dict) -> None:
    g = result["judge"]["greedy"]
    lines = [f"# GRPO learning run: {result['task']}", "",
             f"Command: `{bench.command}`", "", harness.machine_line(bench.machine), "",
             "## Survey (base model, temperature 1, 8 samples per item)", "",
             *survey_table(result["survey"], result["reward"])]
    piloted = [r for r in result["survey"] if "pilot_accuracy" in r]
    if piloted:
        lines += ["", f"Pilot: {result.get('pilot_steps')} training steps on each candidate; the task trained is the one whose "
                  "training reward rose most (mean of the last 3 steps minus the first 3, training items only). "
                  f"Held-out accuracy after the pilot (greedy, {result.get('eval_limit')} test items) is shown, "
                  "not used:", "",
                  "| task | pilot reward first 3 -> last 3 steps | rise | held-out accuracy after the pilot | "
                  "minutes |", "|---|---|---|---|---|"]
        lines += [f"| {r['task']} | {r['pilot_reward_first']:.3f} -> {r['pilot_reward_last']:.3f} | "
                  f"{r['pilot_gain']:+.3f} | {(r['pilot_accuracy'] or 0):.3f} | {r['pilot_minutes']:.1f} |"
                  for r in piloted]
    lines += ["", f"## Held-out ({result['heldout_items']} test items, never trained on)", "",
              "| eval | task | verifier | base | adapter | paired p (sign test) | task's scorer: base | adapter |",
              "|---|---|---|---|---|---|---|---|"]
    for label, j in result["judge"].items():
        p = (j["paired"] or {}).get("p_value")
        own = j.get("own_scorer") or {}
        lines.append(f"| {label} | {j['task']} | {j.get('verifier')} | {j['base']['accuracy']:.3f} | "
                     f"{j['adapter']['accuracy']:.3f} | {'n/a' if p is None else f'{p:.3g}'} | "
                     f"{own.get('base') or 0:.3f} | {own.get('adapter') or 0:.3f} |")
    lines += ["", "Where the change comes from (greedy and t=1 samples; `finished` = closed `</answer>` before the "
              "token limit, `number in answer` = the answer's number occurs in the text before `</answer>`, finished or "
              "not: a lenient reading; `shows equation` = an `=` in that text):",
              "", "| eval | model | finished | number in answer | shows equation | accuracy |", "|---|---|---|---|---|---|"]
    for label, j in result["judge"].items():
        for name, b in j["breakdown"].items():
            lines.append(f"| {label} | {name} | {b['finished']:.3f} | {b['number_in_answer']:.3f} | "
                         f"{b.get('shows_equation', 0):.3f} | {j[name]['accuracy']:.3f} |")
    lines += ["", "On the items where the base model already wrote the equation out (first sample): the same items in "
              "the same form for both models, so a change here is in the numbers; only-base / only-adapter count "
              "the items one of them got right, with their exact sign test:", "",
              "| eval | items | base | adapter | only base right | only adapter right | paired p |",
              "|---|---|---|---|---|---|---|"]
    forms = [(label, j["same_form"]) for label, j in result["judge"].items() if j.get("same_form")]
    lines += [f"| {label} | {f['items']} | {f['base']:.3f} | {f['adapter']:.3f} | {f['base_only']} | "
              f"{f['adapter_only']} | {f['p_value']:.3g} |" for label, f in forms]
    shown = [(label, x) for label, f in forms for x in f["examples"]]
    if shown:
        lines += ["", "Same-form items only the base got right (first three of each eval), both answers up to `</answer>`:",
                  "", "| eval | item | reference | base | adapter |", "|---|---|---|---|---|"]
        lines += [f"| {label} | {x['item_id']} | {x['answer']} | `{_cell(x['base'])}` | `{_cell(x['adapter'])}` |"
                  for label, x in shown]
    lines += ["", "Only a stated number counts (`learning_analysis.computed`: the `gsm8k_computed` verifier, "
              "re-scored from the completions): an answer written as unevaluated arithmetic (`5 - 3`, `-9 / 9`: "
              "`gsm8k` reads its value, so restating the question earns reward) is counted wrong here; paired on "
              "the first sample of each item:", "",
              "| eval | base: unevaluated | adapter: unevaluated | base accuracy | adapter accuracy | "
              "only base right | only adapter right | paired p |", "|---|---|---|---|---|---|---|---|"]
    for label, j in result["judge"].items():
        c = j.get("computed")
        if c:
            lines.append(f"| {label} | {c['base']['unevaluated']:.3f} | {c['adapter']['unevaluated']:.3f} | "
                         f"{c['base']['accuracy']:.3f} | {c['adapter']['accuracy']:.3f} | {c['paired']['base_only']} | "
                         f"{c['paired']['adapter_only']} | {c['paired']['p_value']:.3g} |")
    gain = g["adapter"]["accuracy"] - g["base"]["accuracy"]
    lines += ["", f"Greedy held-out accuracy {result['base_accuracy']:.3f} -> {result['adapter_accuracy']:.3f} "
              f"({gain * 100:+.1f} points, p = {result['p_value']}), {result['train_minutes']:.1f} min of training "
              f"({'its steps summed: a reused run' if result['reused'] else 'wall time of the training process'}), "
              f"{result['steps']} steps. Target +10 points at p < 0.01: "
              f"{'reached' if gain >= 0.10 and (result['p_value'] or 1) < 0.01 else 'not reached'} by the verifier's reading."]
    c = g.get("computed")
    if c:
        cgain = c["adapter"]["accuracy"] - c["base"]["accuracy"]
        met = cgain >= 0.10 and c["paired"]["p_value"] < 0.01
        lines.append(f"Counting unevaluated arithmetic wrong: {c['base']['accuracy']:.3f} -> {c['adapter']['accuracy']:.3f} "
                     f"({cgain * 100:+.1f} points, p = {c['paired']['p_value']:.3g}); the adapter wrote "
                     f"{c['adapter']['unevaluated']:.1%} of its greedy answers as unevaluated arithmetic, the base "
                     f"{c['base']['unevaluated']:.1%}. Target by this reading: {'reached' if met else 'not reached'}.")
    alarms = result.get("alarms") or []
    said = [f"step {x['step']}: {x['name']}" + (f" ({x['verifier']})" if x["verifier"] else "") for x in alarms]
    lines.append("Alarms raised while training: " + ("; ".join(said) if said else "none") + ".")
    lines.append("")
    print("\n".join(lines))
    if bench.record(result, lines, name="learning") is not None:
        plot(result["curve"], result["evals"], result["task"], harness.path(bench.stem("learning"), ".png"))


def write_survey(a, bench: harness.Run, rows: list[dict], task: str) -> dict:
    result = {"task": task, "survey": rows, "survey_items": a.survey_items, "max_tokens": a.max_tokens,
              "reward": a.reward,
              "prefill": a.prefill, "model": a.model or "embedded SmolLM2-135M-Instruct"}
    lines = ["# GRPO learning run: survey only (no training in this record)", "", f"Command: `{bench.command}`",
             "", "Base model, temperature 1, 8 samples per item:", "",
             *survey_table(rows, a.reward)]
    lines += ["", f"Chosen for training (largest pass@8 - pass@1 gap with pass@1 < 0.6): `{task}`", ""]
    print("\n".join(lines))
    bench.record(result, lines, name="learning-survey")
    return result


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M-Instruct")
    ap.add_argument("--candidates", nargs="+", default=CANDIDATES)
    ap.add_argument("--task", default=None, help="skip the choice: train this task (the survey still runs)")
    ap.add_argument("--control", nargs="+", default=CONTROLS, help="untrained tasks that must not drop")
    ap.add_argument("--survey-items", type=int, default=32)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--pilot-steps", type=int, default=10,
                    help="steps of the short run on each candidate that picks the task (0: pick by the survey alone)")
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--prompts-per-step", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--beta", type=float, default=0.04,
                    help="KL weight of the training run (the trainer's --beta; 0: no reference forward); 0.04 as in "
                         "train/quick-cpu.yaml, where beta 0 lost accuracy")
    ap.add_argument("--temperature", type=float, default=0.7, help="sampling temperature of the training rollouts")
    ap.add_argument("--reward", default=REWARD,
                    help="training reward (a verifier expression) and the judge's headline verifier; 'task': the "
                         "task's own scorer without partial credit (rg:TASK.exact)")
    ap.add_argument("--eval-steps", type=int, default=20)
    ap.add_argument("--eval-limit", type=int, default=64)
    ap.add_argument("--heldout", type=int, default=200)
    ap.add_argument("--prefill", default=PREFILL)
    ap.add_argument("--alt-prefill", default=ALT_PREFILL,
                    help="a second pre-fill the trained task is also judged with (greedy), base and adapter")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=Path("runs/learning"))
    harness.common_args(ap, quick=None)
    ap.add_argument("--reuse", action="store_true",
                    help="keep survey evals, pilots and the training run already complete in --work (same settings; "
                         "evals resume; train_minutes then sums the run's step times)")
    ap.add_argument("--survey-only", action="store_true",
                    help="stop after the survey: write learning-survey{suffix}.json/.md (no training claim)")
    a = ap.parse_args(argv)
    check_reward(a)
    from reasonkit.grpo.config import TrainConfig

    TrainConfig(beta=a.beta)  # the trainer's own check of --beta, before the survey's minutes (ConfigError: exit 2)
    bench = harness.start(__file__, a, argv, benchmark="learning")
    a.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = survey(a, a.work)
    if a.pilot_steps and not a.task and not a.survey_only:
        pilot(a, rows, a.work)
    task = a.task or choose(rows)
    if a.survey_only:
        return write_survey(a, bench, rows, task)
    run = a.work / "train"
    done = run / f"checkpoint-{a.steps}"
    if a.reuse and done.is_dir() and (run / "metrics.jsonl").is_file():  # the training run already complete
        check_reused(a, task, run)
        minutes = sum(x.get("step_seconds", 0.0) for x in curves(run)[0]) / 60
    else:
        minutes = train(a, task, run)
    adapter = run / f"checkpoint-{a.steps}"
    judged = judge(a, task, adapter, a.work)
    steps, evals = curves(run)
    g = judged["greedy"]
    result = {
        "task": task, "heldout_items": g["base"]["items"], "base_accuracy": g["base"]["accuracy"],
        "adapter_accuracy": g["adapter"]["accuracy"], "p_value": (g["paired"] or {}).get("p_value"),
        "train_minutes": round(minutes, 2), "total_minutes": round((time.perf_counter() - t0) / 60, 2),
        "reused": bool(a.reuse),
        "steps": a.steps, "pilot_steps": a.pilot_steps, "eval_limit": a.eval_limit, "lr": a.lr, "beta": a.beta,
        "temperature": a.temperature,
        "reward": reward_expression(a, task), "verifier": judge_verifier(a, task), "prefill": a.prefill,
        "max_tokens": a.max_tokens, "group_size": a.group_size, "prompts_per_step": a.prompts_per_step,
        "model": a.model or "embedded SmolLM2-135M-Instruct",
        "survey": rows, "judge": judged, "evals": evals,
        "alarms": [{"step": r["step"], "name": x.split(" (")[0], "verifier": None} if isinstance(x, str) else
                   {"step": r["step"], "name": x.get("name"), "verifier": x.get("verifier")}
                   for r in steps for x in r.get("alarms") or []],
        "curve": [{k: r.get(k) for k in r if isinstance(r.get(k), (int, float))} for r in steps],
    }
    write(bench, result)
    return result


if __name__ == "__main__":
    from reasonkit.errors import ReasonkitError

    try:
        main()
    except ReasonkitError as exc:  # a reasonkit command refused its input: its one line, exit 2
        print(f"learning_run.py: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
