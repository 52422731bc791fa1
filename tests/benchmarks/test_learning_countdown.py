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
        assert len(load) == 50 and len(train) == 40 * 2 + 5 * a.prompts_per_step
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
        assert len(train) == a.train_items * a.rft_iterations + a.steps * a.prompts_per_step
        keys = {(tuple(sorted(t["numbers"])), t["target"]) for t in held}
        assert not keys & {(tuple(sorted(t["numbers"])), t["target"]) for t in train}
