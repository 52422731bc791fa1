"""benchmarks/learning_run.py end to end on a tiny budget (tiny model, one candidate, one step): survey ->
train -> judge -> report, and the results files it writes hold the fields the claim is checked by."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench_scripts import load

pytest.importorskip("reasoning_gym")
pytest.importorskip("matplotlib")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "learning_run.py"


@pytest.mark.slow  # ~50 s on a busy 2-core machine: five CLI runs (survey, train, three judge evals)
def test_learning_run_first_steps_write_checkable_results(tiny_model_dir, tmp_path):
    mod = load("learning_run")
    task = "rg:chain_sum:difficulty=0,test_size=8,size=40"
    result = mod.main(["--model", tiny_model_dir, "--candidates", task, "--control", "rg:chain_sum:max_terms=3,"
                       "min_terms=3,test_size=4", "--survey-items", "2", "--steps", "2", "--pilot-steps", "1", "--group-size", "2",
                       "--prompts-per-step", "1", "--max-tokens", "4", "--eval-steps", "1", "--eval-limit", "2",
                       "--heldout", "3", "--beta", "0.1", "--work", str(tmp_path / "work"),
                       "--results", str(tmp_path / "res"), "--suffix=-smoke"])
    whole = json.loads((tmp_path / "res" / "learning-smoke.json").read_text())
    assert set(whole) == {"benchmark", "command", "machine", "settings", "results", "recorded_at"}  # the harness's
    saved = whole["results"]
    assert saved == json.loads(json.dumps(result)) and whole["settings"]["steps"] == 2
    for key in ("task", "heldout_items", "base_accuracy", "adapter_accuracy", "p_value", "train_minutes"):
        assert key in saved, key
    assert saved["task"] == task and saved["heldout_items"] == 3
    # --beta reaches the training run's resolved config and the record
    assert saved["beta"] == 0.1 and "beta: 0.1" in (tmp_path / "work" / "train" / "config.yaml").read_text()
    assert 0 <= saved["base_accuracy"] <= 1 and 0 <= saved["adapter_accuracy"] <= 1
    assert [r["task"] for r in saved["survey"]] == [task] and saved["survey"][0]["items"] == 2
    assert [r["step"] for r in saved["curve"]] == [1, 2] and [e["step"] for e in saved["evals"]] == [1, 2]
    assert set(saved["judge"]) == {"greedy", "t1", "greedy-alt-prefill", "control"}
    assert saved["judge"]["greedy-alt-prefill"]["prefill"] == "<answer>" != saved["judge"]["greedy"]["prefill"]
    assert set(saved["judge"]["greedy"]["breakdown"]) == {"base", "adapter"}
    # judged by the reward's verifier (the stated number), the task's own scorer kept beside it
    assert saved["reward"] == saved["judge"]["greedy"]["verifier"] == "gsm8k_computed"
    assert saved["judge"]["greedy"]["own_scorer"]["verifier"] == "rg:chain_sum"
    assert "own_pass@1" in saved["survey"][0] and "shows_equation" in saved["judge"]["greedy"]["breakdown"]["base"]
    assert any(k.startswith("eval/gsm8k_computed") for k in saved["evals"][0])
    same = saved["judge"]["greedy"]["same_form"]
    assert 0 <= same["items"] <= 3 and 0 <= same["base"] <= 1 and 0 <= same["adapter"] <= 1  # the reward, watched on held-out items
    assert {"pilot_accuracy", "pilot_gain"} <= set(saved["survey"][0]) and saved["task"] == task
    md = (tmp_path / "res" / "learning-smoke.md").read_text()
    assert "pass@8" in md and task in md and "| only base right | only adapter right | paired p |" in md
    assert {"base_only", "adapter_only", "p_value", "examples"} <= set(same)
    assert {"base", "adapter", "paired"} <= set(saved["judge"]["greedy"]["computed"]) and "alarms" in saved
    assert "Counting unevaluated arithmetic wrong:" in md and "Alarms raised while training:" in md
    assert (tmp_path / "res" / "learning-smoke.png").stat().st_size > 1000
    assert list((tmp_path / "work" / "train").rglob("events.out.tfevents.*"))  # watched in TensorBoard


def _load():
    return load("learning_run")


def test_same_form_compares_only_items_the_base_wrote_out(tmp_path):
    rows = [  # item 0: base wrote the sum out (wrong), adapter right; item 1: base guessed a bare number
        {"adapter": "base", "item_id": "0", "sample": 0, "completion": " 15 + 43 = 48", "gsm8k.correct": False},
        {"adapter": "adapter", "item_id": "0", "sample": 0, "completion": " 15 + 43 = 58", "gsm8k.correct": True},
        {"adapter": "base", "item_id": "1", "sample": 0, "completion": "7</answer>", "gsm8k.correct": False},
        {"adapter": "adapter", "item_id": "1", "sample": 0, "completion": " 4 - 1 = 3", "gsm8k.correct": True},
        {"adapter": "base", "item_id": "2", "sample": 0, "completion": " 2 + 2 = 4</answer>", "gsm8k.correct": True},
        {"adapter": "adapter", "item_id": "2", "sample": 0, "completion": " 2 + 2 = 5", "gsm8k.correct": False},
        {"adapter": "base", "item_id": "2", "sample": 1, "completion": " 2 + 2 = 9", "gsm8k.correct": False},
    ]
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    mod = _load()
    got = mod.same_form(mod.samples(tmp_path), "gsm8k")
    assert {k: got[k] for k in ("items", "base", "adapter", "base_only", "adapter_only")} == {
        "items": 2, "base": 0.5, "adapter": 0.5, "base_only": 1, "adapter_only": 1}
    assert got["p_value"] == 1.0  # one win, one loss
    assert got["examples"] == [{"item_id": "2", "answer": None, "base": "2 + 2 = 4", "adapter": "2 + 2 = 5"}]


def test_same_form_sign_test_counts_only_discordant_items():
    from learning_analysis import same_form  # benchmarks/ is on sys.path once the script is loaded

    _load()
    rows = [{"adapter": m, "item_id": str(i), "sample": 0, "completion": f"{i} * 2 = {2 * i if ok else 0}",
             "reference": {"answer": str(2 * i)}, "gsm8k.correct": ok}
            for i in range(10) for m, ok in (("base", True), ("adapter", i >= 8))]
    got = same_form(rows, "gsm8k", examples=2)
    assert (got["items"], got["base_only"], got["adapter_only"]) == (10, 8, 0)
    assert got["p_value"] == 2 / 2 ** 8  # exact two-sided: 8 losses of 8 discordant pairs
    assert [x["item_id"] for x in got["examples"]] == ["0", "1"] and got["examples"][0]["adapter"] == "0 * 2 = 0"


@pytest.mark.parametrize("reward", ["nope", "gsm8k+"])
def test_bad_reward_is_one_line_and_exit_2_before_any_work(reward, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        _load().main(["--reward", reward, "--work", str(tmp_path / "work"), "--results", str(tmp_path / "res")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("learning_run.py: --reward")
    assert not (tmp_path / "work").exists()  # refused before the survey started


def test_bad_beta_is_one_line_and_exit_2_before_any_work(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(SCRIPT), "--beta", "-1", "--work", str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=120)
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("learning_run.py: beta = -1.0") and "Traceback" not in proc.stderr
    assert not (tmp_path / "work").exists()  # refused before the survey started


def test_reuse_refuses_a_run_trained_otherwise(tmp_path):
    """--reuse of a finished run trained with another beta (or task, lr, ...) is refused, not reported as this one."""
    import argparse

    import yaml

    from reasonkit.errors import ReasonkitError

    mod = _load()
    a = argparse.Namespace(beta=0.04, lr=1e-4, temperature=0.7, seed=0, steps=200, group_size=8, prompts_per_step=4,
                           max_tokens=32)
    task = "rg:chain_sum:min_terms=2,max_terms=2"
    cfg = {"dataset": task, "beta": 0.04, "learning_rate": a.lr, "temperature": a.temperature, "seed": a.seed,
           "max_steps": a.steps, "group_size": a.group_size, "prompts_per_step": a.prompts_per_step,
           "max_tokens": a.max_tokens}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    mod.check_reused(a, task, tmp_path)  # trained as asked: taken
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**cfg, "beta": 0.0}))
    with pytest.raises(ReasonkitError, match=r"trained with beta 0\.0, not 0\.04"):
        mod.check_reused(a, task, tmp_path)
    with pytest.raises(ReasonkitError, match="dataset"):
        mod.check_reused(a, "rg:products", tmp_path)


# What the re-run of 2026-12-07 wrote after the pre-fill ``<think>\n</think>\n<answer>`` (the gsm8k
# verifier's reading in brackets): restating the question earned reward, since gsm8k reads unevaluated
# arithmetic as its value. ``unevaluated`` is the gsm8k_computed verifier's verdict, re-scored.
PREFILL = "<think>\n</think>\n<answer>"


@pytest.mark.parametrize("completion, answer, unevaluated", [
    ("-1 / 1</answer>", "-1", True),       # "Calculate -1 / 1." -> the question back (gsm8k: -1, right)
    (" -9 / 9</answer>", "-1", True),      # "Calculate ( -9 / 9 )." (gsm8k: -1, right)
    ("5 - 3</answer>", "2", True),         # "Calculate 5 - 3." (gsm8k: 2, right)
    ("-8 - 5</answer>", "-13", True),      # "Calculate -8 + -5." rewritten, still not computed
    ("7 * 4</answer>", "28", True), ("9 / 1</answer>", "9", True),
    ("(-8) * 2</answer>", "-16", False),   # wrong, but not as arithmetic: gsm8k reads 2 (not_equal)
    ("2/4</answer>", "0.5", False),        # wrong, but not as arithmetic: two numbers (ambiguous)
    ("2</answer>", "2", False), ("-45</answer>", "-45", False), ("3/4</answer>", "0.75", False),
    ("4 - 1 = 3</answer>", "3", False),    # the sum written out, then its value: computed
    ("1,000</answer>", "1000", False), ("18.5</answer>", "18.5", False), ("\n\nI don't know.", "2", False),
])
def test_unevaluated_arithmetic_is_the_computed_verifiers_verdict(completion, answer, unevaluated):
    from learning_analysis import unevaluated as is_unevaluated

    _load()
    assert is_unevaluated({"completion": completion, "reference": {"answer": answer}}, PREFILL) is unevaluated


def test_computed_counts_unevaluated_answers_wrong_and_pairs_items():
    from learning_analysis import computed

    _load()
    rows = [{"adapter": m, "item_id": str(i), "sample": 0, "completion": text, "reference": {"answer": "2"}}
            for i in range(6) for m, text in (("base", "2</answer>" if i == 0 else "3</answer>"),
                                              ("adapter", "5 - 3</answer>" if i < 4 else "2</answer>"))]
    got = computed(rows, PREFILL)
    assert got["adapter"] == {"unevaluated": 4 / 6, "accuracy": 2 / 6}  # right by gsm8k 6/6
    assert got["base"] == {"unevaluated": 0.0, "accuracy": 1 / 6}
    assert (got["paired"]["items"], got["paired"]["adapter_only"], got["paired"]["base_only"]) == (6, 2, 1)
