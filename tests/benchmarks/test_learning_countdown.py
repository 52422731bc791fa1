"""benchmarks/learning_countdown.py on a tiny budget: the data streams are disjoint, the survey runs through
`reasonkit eval` on a tiny model, and a partial run records into its work directory, never into
benchmarks/results/."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench_scripts import load

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "learning_countdown.py"


@pytest.fixture(scope="module")
def script():
    return load("learning_countdown")


def test_heldout_and_training_tasks_never_meet(script, tmp_path):
    a = script.parse(["--heldout", "50", "--train-items", "40", "--rft-iterations", "2", "--steps", "5",
                      "--work", str(tmp_path)])
    data = script.make_data(a, tmp_path)
    for name, (counts, max_number, max_target) in script.VARIANTS.items():
        load = [json.loads(x) for x in data[name]["heldout"].read_text().splitlines()]
        train = [json.loads(x) for x in data[name]["train"].read_text().splitlines()]
        assert len(load) == 50 and len(train) == a.cold_start + 40 * 2 + 5 * a.prompts_per_step
        keys = {(tuple(sorted(t["numbers"])), t["target"]) for t in load}
        assert not keys & {(tuple(sorted(t["numbers"])), t["target"]) for t in train}
        assert all(len(t["numbers"]) in counts and max(t["numbers"]) <= max_number and 1 <= t["target"] <= max_target
                   for t in load + train)


def test_survey_stage_on_a_tiny_model_records_into_the_work_dir(script, tiny_model_dir, tmp_path):
    before = set((SCRIPT.parent / "results").iterdir())
    result = script.main(["--stages", "survey", "--survey-items", "2", "--survey-k", "2", "--heldout", "2",
                          "--train-items", "1", "--steps", "1", "--max-tokens", "4", "--model", tiny_model_dir,
                          "--work", str(tmp_path), "--suffix=-test"])
    assert [r["variant"] for r in result["survey"]] == list(script.VARIANTS)
    assert all(0 <= r["pass@1"] <= 1 and 0 <= r["pass@2"] <= 1 for r in result["survey"])
    assert result["task"] in script.VARIANTS and result["train_minutes"] == 0
    saved = json.loads((tmp_path / "learning-countdown-test.json").read_text())
    assert saved["benchmark"] == "learning-countdown" and saved["results"]["survey"] == result["survey"]
    assert set((SCRIPT.parent / "results").iterdir()) == before


@pytest.mark.parametrize("argv", [["--stages", "survey,nope"], ["--arms", "rl"], ["--heldout", "0"],
                                  ["--stages", "survey", "--record"]])
def test_bad_flags_exit_2(script, argv):
    with pytest.raises(SystemExit) as exc:
        script.parse(argv)
    assert exc.value.code == 2


@pytest.mark.timeout(60)
def test_default_streams_finish_for_every_variant(script, tmp_path):
    # the 2-number variant has fewer distinct tasks than the default streams ask for: the training
    # stream then repeats tasks (never a held-out one) instead of searching forever
    a = script.parse(["--work", str(tmp_path)])
    data = script.make_data(a, tmp_path)
    for name in script.VARIANTS:
        held = [json.loads(x) for x in data[name]["heldout"].read_text().splitlines()]
        train = [json.loads(x) for x in data[name]["train"].read_text().splitlines()]
        assert len(train) == a.cold_start + a.train_items * a.rft_iterations + a.steps * a.prompts_per_step
        keys = {(tuple(sorted(t["numbers"])), t["target"]) for t in held}
        assert not keys & {(tuple(sorted(t["numbers"])), t["target"]) for t in train}


@pytest.mark.parametrize("solution, steps", [
    ("(10 + 12) - 6", ["10 + 12 = 22", "22 - 6 = 16"]),
    ("1 + (11 + 3)", ["11 + 3 = 14", "1 + 14 = 15"]),
    ("((8 / 2) * 3) - 5", ["8 / 2 = 4", "4 * 3 = 12", "12 - 5 = 7"]),
])
def test_trace_writes_each_step_the_solution_evaluates(script, solution, steps):
    assert script.trace(solution) == steps


def test_demonstrations_are_the_training_tasks_in_the_answer_form_and_pass_the_verifier(script, tiny_model_dir,
                                                                                      tmp_path):
    a = script.parse(["--cold-start", "12", "--model", tiny_model_dir, "--work", str(tmp_path)])
    train = script.make_data(a, tmp_path)["three-small"]["train"]
    rows = [json.loads(x) for x in script.demonstrations(a, train, tmp_path / "demos").read_text().splitlines()]
    tasks = [json.loads(x) for x in train.read_text().splitlines()][:12]
    assert [r["item_id"] for r in rows] == [t["id"] for t in tasks]
    assert all(r["countdown.correct"] is True and r["completion"].endswith(f"<answer>{t['solution']}</answer>")
               and r["prompt"].endswith("<think>") and str(t["target"]) in r["prompt"] for r, t in zip(rows, tasks))


def test_grpo_alone_fills_the_cpu_budget_measured_by_its_probe(script, monkeypatch, tmp_path):
    calls = []

    def fake(a, train, out, steps, init, resume=False):
        calls.append((steps, resume))
        return {"wall": 1.0, "cpu": 0.6 * (steps - (calls[0][0] if resume else 0))}

    monkeypatch.setattr(script, "run_grpo", fake)
    a = script.parse(["--work", str(tmp_path)])
    out = script.grpo_alone(a, tmp_path / "t.jsonl", tmp_path / "grpo", budget_cpu=6.1)
    assert calls == [(script.PROBE_STEPS, False), (10, True)]  # 0.6 CPU min per step in the probe: 10 steps
    assert out["steps"] == 10 and out["cpu"] == pytest.approx(6.0)
    calls.clear()
    assert script.grpo_alone(a, tmp_path / "t.jsonl", tmp_path / "g2", budget_cpu=0.5)["steps"] == script.PROBE_STEPS
    assert calls == [(script.PROBE_STEPS, False)]


def test_same_form_keeps_only_well_formed_equations_over_the_given_numbers(script):
    """Only ``correct``/``not_equal`` verdicts are the equation form: an unclosed think block, a reused
    number or no answer is not (they were counted as formed before, which mixed form into the reading)."""
    def row(adapter, item, reason):
        return {"adapter": adapter, "item_id": item, "sample": 0, "countdown.reason": reason,
                "countdown.correct": reason == "correct"}

    rows = [row("base", "1", "not_equal"), row("arm", "1", "correct"),           # kept: arm only right
            row("base", "2", "correct"), row("arm", "2", "not_equal"),           # kept: base only right
            row("base", "3", "wrong_numbers"), row("arm", "3", "correct"),       # base reused a number
            row("base", "4", "unclosed_reasoning"), row("arm", "4", "correct"),  # base never closed </think>
            row("base", "5", "not_equal"), row("arm", "5", "no_answer"),
            row("base", "6", "correct"), row("arm", "6", "correct")]             # kept: both right
    got = script.same_form(rows, "arm")
    assert got["items"] == 3 and got["adapter_only"] == 1 and got["base_only"] == 1
    assert got["base"] == pytest.approx(2 / 3) and got["adapter"] == pytest.approx(2 / 3)


def test_reuse_keeps_a_complete_stage_with_its_minutes_and_refuses_one_without(script, monkeypatch, tmp_path):
    """``--reuse`` judges a work folder's adapters again without training again: a stage whose output
    is complete keeps the minutes it took (WORK/minutes.json); without them the run stops (exit 2)."""
    def never(*args):
        raise AssertionError("a complete stage ran again under --reuse")

    monkeypatch.setattr(script, "run_rft", never)
    (tmp_path / "rft" / "adapter").mkdir(parents=True)
    argv = ["--stages", "rft", "--arms", "rft", "--train-items", "1", "--steps", "1", "--heldout", "2",
            "--reuse", "--work", str(tmp_path), "--suffix=-test"]
    with pytest.raises(SystemExit) as exc:  # complete, but how long it took is unknown
        script.main(argv)
    assert exc.value.code == 2
    (tmp_path / script.MINUTES).write_text(json.dumps({"rft": {"wall": 3.0, "cpu": 4.0}}))
    result = script.main(argv)
    assert result["minutes"]["rft"] == {"wall": 3.0, "cpu": 4.0} and result["reused"] == ["rft"]
    assert result["train_minutes"] == 3.0 and result["train_cpu_minutes"] == 4.0
    monkeypatch.setattr(script, "run_rft", lambda a, train, work: {"wall": 1.0, "cpu": 1.5})
    fresh = tmp_path / "fresh"
    result = script.main([*argv[:-3], "--work", str(fresh), "--suffix=-test"])  # nothing done there: it runs
    assert result["reused"] == [] and json.loads((fresh / script.MINUTES).read_text())["rft"]["cpu"] == 1.5


def test_reuse_reads_minutes_from_a_record_of_the_same_work_and_settings(script, tmp_path):
    a = script.parse(["--work", str(tmp_path / "w"), "--reuse", "--results", str(tmp_path), "--suffix=-x"])
    bench = script.harness.Run(str(script.__file__), a, [], benchmark="learning-countdown", describe=False)
    record = {"settings": {**bench.settings, "reuse": False}, "recorded_at": "then",
              "results": {"minutes": {"rft": {"wall": 2.0, "cpu": 2.5}}}}
    (tmp_path / "learning-countdown-x.json").write_text(json.dumps(record))
    assert script.kept_minutes(a, bench, tmp_path / "w") == {"rft": {"wall": 2.0, "cpu": 2.5}}
    record["settings"]["steps"] = a.steps + 1  # another run's record: nothing is taken from it
    (tmp_path / "learning-countdown-x.json").write_text(json.dumps(record))
    assert script.kept_minutes(a, bench, tmp_path / "w") == {}
