"""Does the embedded model learn Countdown on CPU? survey -> RFT warm start -> GRPO -> held-out judge.

Countdown is the seeds' own task (the AgileRL tutorial's prompt form: think, then an equation inside
``<answer>`` tags). A 135M model writes almost no valid equation at first (pass@8 near 0 on the 3-4
number tasks), so GRPO alone has nothing to reinforce; this script measures a warm start by
rejection-sampling fine-tuning (``reasonkit sft``) before GRPO.

1. **Data**: task files per variant from :func:`reasonkit.tasks.registry.generate_countdown`
   (``VARIANTS``: 2 numbers as a curriculum rung, 3 numbers with small targets, 3-4 numbers as in
   AgileRL), a training stream and a held-out stream from separate seeds; any held-out task (same
   numbers, same target) is removed from the training stream.
2. **Survey**: the base model's pass@1 (greedy) and pass@k (``--survey-k`` at temperature 1) per
   variant, by the ``countdown`` verifier.
3. **Arms**, each a ``reasonkit`` command: ``rft`` (the warm start: a **cold start** of
   ``--cold-start`` solver-written demonstrations, then rejection sampling: ``reasonkit sft
   --init-adapter``, k samples per training item from the cold-started model, the ones the ``countdown``
   verifier marks correct kept, ``--rft-iterations`` rounds), ``rft_grpo`` (``reasonkit train
   --init-adapter`` on the RFT adapter, reward ``countdown`` plus ``--format-weight`` x format),
   ``grpo`` (GRPO alone from the base for the CPU minutes the rft_grpo arm took in all: a short probe
   measures its CPU minutes per step, then ``--resume`` extends it to fill the budget).
   The cold start is DeepSeek-R1's recipe at Countdown scale: a few hundred verified demonstrations
   (the generator's own solutions, each written out as the steps it evaluates, ``demonstrations``)
   fine-tuned with ``reasonkit sft --from-samples``, the same verifier as the filter. It is supervised
   learning, said plainly: the embedded model's own samples hold almost no valid equation to keep (a
   few-shot scaffold for sampling, ``reasonkit sft --sample-few-shot``, taught the answer tags but found
   almost no correct equation even on two-number tasks), so self-sampling alone has nothing to start from.
   ``--cold-start 0`` runs the warm start without it.
4. **Judge**: base and every adapter on ``--heldout`` held-out tasks of the trained variant (at least
   3 numbers), greedy and at temperature 1, in one ``reasonkit eval`` with ``--lora`` per arm, then
   ``reasonkit report``'s paired sign test per arm against the base; the **same-form** reading keeps
   the items where both base and adapter wrote a well-formed equation over the given numbers (the
   verifier's reason is ``correct`` or ``not_equal``): a change there is a change in arithmetic, not in form.
5. **Record**: ``benchmarks/results/learning-countdown{suffix}.json/.md/.png`` with ``--record``, which
   needs every stage (a partial run writes into ``--work``; ``benchmarks/harness.py``); every figure is
   read from the run files. ``--reuse`` keeps the training stages already complete in ``--work`` and
   the minutes they took (``WORK/minutes.json``), so the judge can be run again after a change to it.

    python benchmarks/learning_countdown.py --record            # the full measurement
    python benchmarks/learning_countdown.py --record --reuse --work W   # judge W's adapters again
    python benchmarks/learning_countdown.py --stages survey --survey-items 2 --suffix=-smoke   # plumbing
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import time
from pathlib import Path

import harness  # benchmarks/harness.py
from countdown_demos import demonstrations, trace  # benchmarks/countdown_demos.py (the cold start)

# name -> (counts of numbers, largest number, largest target)
VARIANTS = {"two": ((2,), 20, 40), "three-small": ((3,), 20, 30), "agilerl": ((3, 4), 99, 100)}
STAGES = ("survey", "rft", "grpo", "judge")
MINUTES = "minutes.json"  # in --work: each training stage's wall and CPU minutes, written as it ends
PROBE_STEPS = 3  # GRPO-alone steps timed before its budget is set
ARMS = ("rft", "rft_grpo", "grpo")
# the verdicts of a well-formed equation over the given numbers: what the same-form comparison keeps
# (an unclosed reasoning block, a reused or missing number, a parse error or no answer is not that form)
FORMED = {"correct", "not_equal"}


def reasonkit(*args: str) -> None:
    """One ``reasonkit`` command in this process, as a user types it (minus the exit)."""
    from reasonkit.cli import main as cli

    print("+ reasonkit " + " ".join(repr(x) if " " in x or "\n" in x else x for x in args), flush=True)
    cli.main(list(args), standalone_mode=False)


def make_data(a, work: Path) -> dict[str, dict[str, Path]]:
    """``{variant: {"train": path, "heldout": path}}``: disjoint task files (JSONL: numbers, target, solution)."""
    from reasonkit.tasks.registry import generate_countdown

    out: dict[str, dict[str, Path]] = {}
    (work / "data").mkdir(parents=True, exist_ok=True)
    for name, (counts, max_number, max_target) in VARIANTS.items():
        def stream(tag: str, n: int, forbidden: set) -> list[dict]:
            """``n`` tasks, none in ``forbidden``; unique while the variant has unseen ones (the 2-number
            space is small), then repeats are allowed (a training stream may revisit a task)."""
            rows, seen, i, stale = [], set(), 0, 0
            while len(rows) < n:
                task = generate_countdown(random.Random(f"{tag}-{a.seed}-{name}-{i}"), max_target, counts, max_number)
                i += 1
                key = (tuple(sorted(task["numbers"])), task["target"])
                if key in forbidden:
                    continue
                if key in seen and stale < 20000:
                    stale += 1
                    continue
                seen.add(key)
                rows.append({"id": f"{tag}-{len(rows)}", **task})
            return rows

        heldout = stream("heldout", max(a.heldout, a.survey_items), set())
        held = {(tuple(sorted(r["numbers"])), r["target"]) for r in heldout}
        train = stream("train", a.cold_start + a.train_items * max(1, a.rft_iterations) + a.steps * a.prompts_per_step,
                       held)
        out[name] = {}
        for split, rows in (("heldout", heldout), ("train", train)):
            path = work / "data" / f"{name}-{split}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
            out[name][split] = path
    return out


def common(a) -> list[str]:
    args = ["--max-tokens", str(a.max_tokens), "--seed", str(a.seed)]
    return args + (["--model", a.model] if a.model else [])


def summary(run: Path):
    from reasonkit.eval.store import read_summary

    return read_summary(run / "summary.json")  # a reasonkit.records.Summary


def rows_of(run: Path) -> list[dict]:
    from reasonkit.eval.store import read_samples

    return read_samples(run / "samples.jsonl")[0]


def survey(a, data, work: Path) -> list[dict]:
    out = []
    for name in VARIANTS:
        row = {"variant": name}
        for label, n, temp in (("greedy", 1, 0.0), ("sampled", a.survey_k, 1.0)):
            run = work / "survey" / f"{name}-{label}"
            reasonkit("eval", "-b", "countdown", "--data", str(data[name]["train"]), "--backend", "hf", "--limit",
                      str(a.survey_items), "--n", str(n), "--temperature", str(temp), "-q", "-o", str(run), *common(a))
            m = summary(run).metrics("base", "countdown")
            row["pass@1" if label == "greedy" else f"pass@{a.survey_k}"] = m.pass_at(n) if f"pass@{n}" in m \
                else m.accuracy
            row[f"truncated_{label}"] = summary(run).adapter("base").truncation_rate
        out.append(row)
    return out


def choose(a, rows: list[dict]) -> str:
    """``--task``, else the easiest variant of at least 3 numbers whose pass@k is above 0."""
    if a.task:
        return a.task
    for row in rows:
        if VARIANTS[row["variant"]][0][0] >= 3 and (row.get(f"pass@{a.survey_k}") or 0) > 0:
            return row["variant"]
    return "three-small"


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (the ``reasonkit`` commands run in it)."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def timed(fn, *args) -> dict:
    """Run ``fn(*args)``; its wall minutes and CPU minutes (the CPU time is what decides "equal
    minutes" between arms: on a shared machine the wall time also counts other people's work)."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    fn(*args)
    return {"wall": round((time.perf_counter() - t0) / 60, 2), "cpu": round((cpu_seconds() - c0) / 60, 2)}


def sft_args(a, out: Path) -> list[str]:
    return ["sft", "--dataset", "countdown", "--verifier", "countdown", "--lora-r", "16", "--lora-alpha", "32",
            "--epochs", str(a.rft_epochs), "--dtype", "fp32", "--output", str(out), "-q", *common(a)]


def run_rft(a, train: Path, work: Path) -> dict:
    """Cold start (when ``--cold-start``), then ``--rft-iterations`` rounds of rejection sampling from it."""
    def both() -> None:
        init: list[str] = []
        if a.cold_start:
            demos = demonstrations(a, train, work / "cold-start-demos")
            reasonkit(*sft_args(a, work / "cold"), "--from-samples", str(demos), "--iterations", "1",
                      "--max-per-item", "1")
            init = ["--init-adapter", str(work / "cold" / "adapter")]
        reasonkit(*sft_args(a, work / "rft"), "--data", str(train), "--split", "train", "--limit", str(a.train_items),
                  "--samples-per-item", str(a.rft_k), "--iterations", str(a.rft_iterations), "--temperature", "1.0",
                  "--backend", "hf", *init)
    return timed(both)


def run_grpo(a, train: Path, out: Path, steps: int, init: Path | None, resume: bool = False) -> dict:
    reward = "countdown" + (f"+{a.format_weight}*format" if a.format_weight else "")
    args = ["train", "--dataset", "countdown", "--data", str(train), "--rewards", reward, "--group-size",
            str(a.group_size), "--prompts-per-step", str(a.prompts_per_step), "--temperature", "1.0",
            "--learning-rate", str(a.lr), "--beta", str(a.beta), "--lora-r", "16", "--lora-alpha", "32",
            "--lora-dropout", "0", "--lora-target-modules", "all-linear", "--dtype", "fp32", "--max-steps",
            str(steps), "--eval-steps", "0", "--log-completions-steps", "10", "--output", str(out), "-q", *common(a)]
    return timed(reasonkit, *(args + (["--init-adapter", str(init)] if init else []) + (["--resume"] if resume else [])))


def grpo_alone(a, train: Path, out: Path, budget_cpu: float) -> dict:
    """GRPO from the base for ``budget_cpu`` CPU minutes: ``PROBE_STEPS`` steps timed, then resumed to the
    number of steps that fills the budget at the probe's CPU minutes per step (base completions are
    longer than a warm-started model's, so its steps cost more: counting steps would not be equal time)."""
    probe = run_grpo(a, train, out, PROBE_STEPS, None)
    per_step = probe["cpu"] / PROBE_STEPS
    total = max(PROBE_STEPS, int(budget_cpu / per_step)) if per_step else PROBE_STEPS
    if total == PROBE_STEPS:
        return {**probe, "steps": total}
    rest = run_grpo(a, train, out, total, None, resume=True)
    return {"wall": round(probe["wall"] + rest["wall"], 2), "cpu": round(probe["cpu"] + rest["cpu"], 2), "steps": total}


def last_checkpoint(run: Path) -> Path:
    from reasonkit.grpo.checkpoint import latest_checkpoint

    return latest_checkpoint(run)


def steps_done(run: Path) -> int:
    """The step of the last checkpoint in ``run`` (0 when there is none)."""
    ckpt = last_checkpoint(run)  # None without a complete checkpoint (or without the folder)
    return int(ckpt.name.rsplit("-", 1)[-1]) if ckpt is not None else 0


def kept_minutes(a, bench: harness.Run, work: Path) -> dict:
    """``--reuse``: the minutes of the stages already run in ``work`` (``WORK/minutes.json``, written as
    each stage ends). A run recorded before that file existed has them only in its record: they are
    taken from there when that record was written from the same ``--work`` with the same settings."""
    if (work / MINUTES).is_file():
        return json.loads((work / MINUTES).read_text())
    stem = bench.stem() or (harness.RESULTS / f"{bench.benchmark}{a.suffix}")
    file = harness.path(stem, ".json")
    if not file.is_file():
        return {}
    record = json.loads(file.read_text())
    same = {k: v for k, v in record.get("settings", {}).items() if k != "reuse"}
    if same != {k: v for k, v in bench.settings.items() if k != "reuse"}:
        return {}
    print(f"--reuse: stage minutes from {file} (recorded {record.get('recorded_at')}, same --work and settings)")
    return record["results"].get("minutes", {})


def same_form(rows: list[dict], adapter: str) -> dict:
    """Base vs ``adapter`` on the items where both wrote a well-formed equation over the given numbers
    (first sample of each; verdict ``correct`` or ``not_equal``): a difference there is in the arithmetic."""
    from reasonkit.eval.report import sign_test

    from reasonkit.records import as_rows

    first = {(r.adapter, r.item_id): r for r in as_rows(rows) if r.get("sample", 0) == 0}
    items = [i for (m, i), r in first.items() if m == "base" and (adapter, i) in first
             and r.reason("countdown") in FORMED and first[(adapter, i)].reason("countdown") in FORMED]
    right = {(m, i): first[(m, i)].correct("countdown") is True for i in items for m in ("base", adapter)}
    wins = sum(right[(adapter, i)] and not right[("base", i)] for i in items)
    losses = sum(right[("base", i)] and not right[(adapter, i)] for i in items)
    return {"items": len(items), "base": sum(right[("base", i)] for i in items) / max(1, len(items)),
            "adapter": sum(right[(adapter, i)] for i in items) / max(1, len(items)),
            "adapter_only": wins, "base_only": losses, "p_value": sign_test(wins, losses)}


def judge(a, heldout: Path, adapters: dict[str, Path], work: Path) -> dict:
    from reasonkit.eval.report import report

    out = {}
    for label, n, temp in (("greedy", 1, 0.0), ("t1", a.judge_samples, 1.0)):
        run = work / f"judge-{label}"
        loras = [x for name, path in adapters.items() for x in ("--lora", f"{name}={path}")]
        reasonkit("eval", "-b", "countdown", "--data", str(heldout), "--backend", "hf", "--limit", str(a.heldout),
                  "--n", str(n), "--temperature", str(temp), "--verifier", "countdown", "--verifier", "format",
                  "-q", "-o", str(run), *loras, *common(a))
        _, _, tests = report([run], md=str(run / "report.md"))
        s, rows = summary(run), rows_of(run)
        acc = {m: block.verifier("countdown").accuracy for m, block in s.adapters.items()}
        out[label] = {"accuracy": acc, "paired": tests,
                      "truncated": {m: block.truncation_rate for m, block in s.adapters.items()},
                      "same_form": {name: same_form(rows, name) for name in adapters}}
    return out


def plot(runs: dict[str, Path], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, run in runs.items():
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()] \
            if (run / "metrics.jsonl").is_file() else []
        pts = [(m["step"], m["reward"]) for m in lines if "reward" in m and "step" in m]
        if pts:
            ax.plot(*zip(*pts), label=name)
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("training reward")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {', '.join(STAGES)}")
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {', '.join(ARMS)}")
    p.add_argument("--task", choices=sorted(VARIANTS), default=None, help="variant to train (default: chosen by the "
                   "survey: the easiest of at least 3 numbers with pass@k > 0)")
    p.add_argument("--model", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--survey-items", type=int, default=16)
    p.add_argument("--survey-k", type=int, default=4)
    p.add_argument("--cold-start", type=int, default=256, help="solver-written demonstrations fine-tuned on before "
                   "rejection sampling (0 = none)")
    p.add_argument("--train-items", type=int, default=128, help="training tasks sampled per RFT iteration")
    p.add_argument("--rft-k", type=int, default=4)
    p.add_argument("--rft-iterations", type=int, default=1)
    p.add_argument("--rft-epochs", type=float, default=2.0)
    p.add_argument("--steps", type=int, default=16, help="GRPO steps after the warm start")
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--prompts-per-step", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--beta", type=float, default=0.04)
    p.add_argument("--format-weight", type=float, default=0.1)
    p.add_argument("--heldout", type=int, default=200)
    p.add_argument("--judge-samples", type=int, default=2, help="samples per held-out task at temperature 1")
    p.add_argument("--work", default="runs/learning-countdown")
    p.add_argument("--reuse", action="store_true",
                   help="keep the training stages already complete in --work (same settings) with the minutes "
                        "they took; the survey and judge evals resume from their run folders (judge again after "
                        "a change to the analysis without training again)")
    harness.common_args(p, quick=None)
    a = p.parse_args(argv)
    a.stages, a.arms = a.stages.split(","), a.arms.split(",")
    for value, allowed, flag in ((a.stages, STAGES, "--stages"), (a.arms, ARMS, "--arms")):
        bad = [x for x in value if x not in allowed]
        if bad:
            harness.fail(f"{flag}: {bad[0]!r} is not one of {', '.join(allowed)}", "learning_countdown.py")
    if a.cold_start < 0:
        harness.fail("--cold-start must be at least 0", "learning_countdown.py")
    for flag in ("survey_items", "survey_k", "train_items", "rft_k", "rft_iterations", "steps", "heldout",
                 "judge_samples"):
        if getattr(a, flag) < 1:
            harness.fail(f"--{flag.replace('_', '-')} must be at least 1", "learning_countdown.py")
    if a.record and set(a.stages) != set(STAGES):
        harness.fail(f"--record with --stages {','.join(a.stages)}: only a run of every stage is recorded "
                     "(a partial run writes into --work)", "learning_countdown.py")
    return a


def main(argv=None) -> dict:
    a = parse(argv)
    bench = harness.start(__file__, a, argv, benchmark="learning-countdown")
    work = Path(a.work)
    data = make_data(a, work)
    result: dict = {"task": None, "heldout_items": a.heldout, "cold_start": a.cold_start, "minutes": {},
                    "reused": []}
    rows = survey(a, data, work) if "survey" in a.stages else []
    result["survey"] = rows
    task = result["task"] = choose(a, rows)
    train = data[task]["train"]
    adapters: dict[str, Path] = {}
    kept = kept_minutes(a, bench, work) if a.reuse else {}

    def stage(key: str, done: bool, fn, *args) -> None:
        """Run a training stage, or with ``--reuse`` keep it when its output and minutes are in --work."""
        if a.reuse and done:
            if key not in kept:
                harness.fail(f"--reuse: {work}: stage {key} is complete but its minutes are not in "
                             f"{work / MINUTES}; run without --reuse into a new --work", "learning_countdown.py")
            result["minutes"][key] = kept[key]
            result["reused"].append(key)
        else:
            result["minutes"][key] = fn(*args)
        harness.save_state(work, MINUTES, result["minutes"])

    if "rft" in a.stages:
        stage("rft", (work / "rft" / "adapter").is_dir(), run_rft, a, train, work)
        if "rft" in a.arms:
            adapters["rft"] = work / "rft" / "adapter"
    if "grpo" in a.stages and "rft_grpo" in a.arms and (work / "rft" / "adapter").is_dir():
        stage("rft_grpo_grpo", steps_done(work / "rft_grpo") >= a.steps,
              run_grpo, a, train, work / "rft_grpo", a.steps, work / "rft" / "adapter")
        adapters["rft_grpo"] = last_checkpoint(work / "rft_grpo")
    if "grpo" in a.stages and "grpo" in a.arms:
        # GRPO alone gets the CPU time the warm start and the GRPO after it took together
        budget = sum(result["minutes"].get(k, {}).get("cpu", 0) for k in ("rft", "rft_grpo_grpo"))
        stage("grpo", steps_done(work / "grpo") >= kept.get("grpo", {}).get("steps", 10**9),
              grpo_alone, a, train, work / "grpo", budget)
        adapters["grpo"] = last_checkpoint(work / "grpo")
    headline_stages = [m for k, m in result["minutes"].items() if k in ("rft", "rft_grpo_grpo")]
    result["train_minutes"] = round(sum(m["wall"] for m in headline_stages), 2)
    result["train_cpu_minutes"] = round(sum(m["cpu"] for m in headline_stages), 2)
    if "judge" in a.stages and adapters:
        result["judge"] = judge(a, data[task]["heldout"], adapters, work)
        head = "rft_grpo" if "rft_grpo" in adapters else next(iter(adapters))
        greedy = result["judge"]["greedy"]
        test = next((t for t in greedy["paired"] if str(t.get("column", "")).endswith(head)), {})
        result.update(headline_arm=head, base_accuracy=greedy["accuracy"]["base"],
                      adapter_accuracy=greedy["accuracy"][head], p_value=test.get("p_value"),
                      same_form_base=greedy["same_form"][head]["base"],
                      same_form_adapter=greedy["same_form"][head]["adapter"])
    full = set(a.stages) == set(STAGES)  # a partial (smoke) run never writes benchmarks/results/
    write(a, bench, result, None if full else work,
          {k: v for k, v in (("rft_grpo", work / "rft_grpo"), ("grpo", work / "grpo")) if v.is_dir()})
    return result


def write(a, bench: harness.Run, result: dict, folder: Path | None, runs: dict[str, Path]) -> None:
    lines = [f"# Countdown on the embedded model ({bench.machine['cpu']})", "",
             f"Written by `{bench.command}`.", "", harness.machine_line(bench.machine), "",
             "| variant | pass@1 | pass@k | truncated (sampled) |", "|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r.get('pass@1')} | {r.get(f'pass@{a.survey_k}')} | {r.get('truncated_sampled')} |"
              for r in result.get("survey", [])]
    lines += ["", f"Trained variant: **{result['task']}**; minutes per stage: {result['minutes']}; "
              f"cold start: {result.get('cold_start')} demonstrations; "
              f"{'stages kept from an earlier pass in the same --work (--reuse): ' + ', '.join(result['reused']) + '; ' if result.get('reused') else ''}"
              f"train_minutes (cold start + RFT + GRPO after it, wall): {result['train_minutes']}; CPU minutes: "
              f"{result['train_cpu_minutes']}"]
    for label, j in (result.get("judge") or {}).items():
        lines += ["", f"## Held-out, {label} ({result['heldout_items']} tasks)", "",
                  "| arm | accuracy | same-form base | same-form arm | same-form items |", "|---|---|---|---|---|"]
        for arm, acc in j["accuracy"].items():
            sf = j["same_form"].get(arm, {})
            lines.append(f"| {arm} | {acc:.3f} | {sf.get('base', '-')} | {sf.get('adapter', '-')} | {sf.get('items', '-')} |")
        lines += [f"- {t.get('column')}: Δ {t.get('diff')}, +{t.get('wins')}/-{t.get('losses')}, p = {t.get('p_value')}"
                  for t in j["paired"]]
    print("\n".join(lines))
    if bench.record(result, lines, folder=folder) is not None and runs:
        plot(runs, harness.path(bench.stem(folder=folder), ".png"))


if __name__ == "__main__":
    main()
