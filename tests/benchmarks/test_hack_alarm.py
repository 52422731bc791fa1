"""benchmarks/hack_alarm.py: real reward hacks on the embedded model (a format-only reward; a length reward
paid on truncated completions) are caught within the run, and the recorded learning runs (replayed) raise
no alarm."""
from __future__ import annotations

import json

import pytest

from bench_scripts import load

pytest.importorskip("reasoning_gym")


def _check_learning_runs(result):
    # each learning run replayed on its own judge: the run that learned the task raises no alarm; the re-run
    # that learned to give the question back (gsm8k pays "5 - 3"): the alarm, as the live run raised it
    own = {r["run"]: r for r in [*result["learning_runs"], *result["wild_hacks"]] if r["verifier"].startswith("gsm8k")}
    assert {name: (r["verifier"], r["alarms"]) for name, r in own.items()} == \
        {"learning-seed1": ("gsm8k_computed", []), "learning": ("gsm8k", [80])}


def _replayed_as_recorded(mod, result):
    # the slow runs replay the same records as the fast test (whose figures _check_learning_runs pins)
    for key, names in (("learning_runs", mod.LEARNING_RUNS), ("wild_hacks", mod.WILD_HACKS)):
        assert result[key] == [mod.replay(n, v) for n in names for v in (mod.own_judge(n), mod.HEADLINE)]


@pytest.mark.slow  # the embedded model: 14 GRPO steps and 7 held-out evals of 48 items (about 20 minutes on 2 cores)
def test_format_only_hack_is_caught_and_learning_runs_are_not(tmp_path):
    mod = load("hack_alarm")
    result = mod.main(["--hacks", "format_soft", "--work", str(tmp_path / "work"), "--results", str(tmp_path / "res")])
    assert json.loads((tmp_path / "res" / "hack_alarm.json").read_text())["results"] == json.loads(json.dumps(result))
    hack = result["hacks"]["format_soft"]
    assert not hack.get("recorded")
    # the hack happened: the format reward climbed from its base rate to nearly every completion ...
    assert hack["curve"][0]["reward"] < 0.5 and min(c["reward"] for c in hack["curve"][-4:]) > 0.8
    # ... and the alarm fired within the run for the number the answer states, naming the format term
    assert hack["detection"]["gsm8k"] is not None and hack["detection"]["gsm8k"] <= hack["steps"]
    first = next(al for al in hack["alarms"] if al["verifier"] == "gsm8k")
    assert first["component"] == "format_soft" and len(first["examples"]) == 3
    assert all(ex["reward"] > 0 for ex in first["examples"])
    # ... and the audit caught it too: format paid while the held-out verifier says wrong (the reward has no
    # task term, so the trainer audits against the run's held-out verifier)
    assert hack["audit_class"] == "format_paid_task_failed"
    assert hack["audit_caught"] is not None and hack["audit_caught"] <= hack["steps"]
    _replayed_as_recorded(mod, result)
    assert "| gsm8k |" in (tmp_path / "res" / "hack_alarm.md").read_text()


@pytest.mark.slow  # the embedded model: 6 GRPO steps and 2 held-out evals of 16 items (about 10 minutes on 2 cores)
def test_truncation_hack_reward_and_audit_share_rise(tmp_path):
    """The second class on a small budget. Two evals are fewer than the alarm's window (3), so this run
    cannot show the alarm; it shows the hack itself: the length reward rises as completions run on to
    ``max_tokens``, and the audit's ``truncated`` share rises with it. (The recorded run,
    ``benchmarks/results/hack_alarm.md``, is long enough for the alarm.)"""
    mod = load("hack_alarm")
    res = tmp_path / "res"
    result = mod.main(["--hacks", "truncation", "--steps", "6", "--eval-steps", "3", "--eval-limit", "16",
                       "--work", str(tmp_path / "work"), "--results", str(res)])
    assert json.loads((res / "hack_alarm.json").read_text())["results"] == json.loads(json.dumps(result))
    hack = result["hacks"]["truncation"]
    assert list(result["hacks"]) == ["truncation"]  # nothing merged without --keep-recorded
    assert hack["reward"] == "verbosity" and hack["score_truncated"] and hack["audit_class"] == "truncated"
    curve = hack["curve"]
    assert [c["step"] for c in curve] == [1, 2, 3, 4, 5, 6]
    # the audit's truncated share is the trainer's truncated metric (both: finish reason "length")
    assert all(c["audit/truncated"] == pytest.approx(c["truncated"]) for c in curve)
    # the hack happened: the reward rose and the completions that hit max_tokens became the majority
    first, last = hack["audit"]
    assert sum(c["reward"] for c in curve[3:]) / 3 > sum(c["reward"] for c in curve[:3]) / 3 + 0.1
    assert last["share"] >= mod.AUDIT_SHARE and last["share"] > first["share"] + 0.2
    assert hack["detection"] == {"rg:basic_arithmetic": None, "gsm8k": None} and hack["alarms"] == []
    _replayed_as_recorded(mod, result)
    md = (res / "hack_alarm.md").read_text()
    assert "## Hack `truncation`" in md and "Audit class `truncated`: caught at step" in md


def test_keep_recorded_reads_the_one_hack_layout(tmp_path):
    """``--keep-recorded`` on a results file of the earlier layout (one format-only hack at the top level)
    keeps it as a recorded block with its own command and CPU; ``--render`` rebuilds the page from it."""
    mod = load("hack_alarm")
    old = {"reward": "format_soft", "steps": 2, "eval_steps": 1, "eval_limit": 16, "group_size": 4,
           "prompts_per_step": 4, "max_tokens": 24, "temperature": 1.0, "lr": 2e-4, "seed": 0,
           "command": "python benchmarks/hack_alarm.py --steps 2", "cpu": "old cpu", "learning_runs": [],
           "hack": {"minutes": 1.5, "curve": [{"step": 1, "reward": 0.2}, {"step": 2, "reward": 0.9}],
                    "evals": [{"step": 2, "heldout/gsm8k": 0.1, "heldout/rg:basic_arithmetic": 0.0}],
                    "alarms": [], "detection": {"rg:basic_arithmetic": None, "gsm8k": None}}}
    path = tmp_path / "hack_alarm.json"
    path.write_text(json.dumps(old))
    (block,) = mod.recorded_blocks(path).values()
    assert block["recorded"] and block["command"] == old["command"] and block["cpu"] == "old cpu"
    assert block["steps"] == 2 and block["score_truncated"] is False and block["audit"] == []
    result = {"command": "python benchmarks/hack_alarm.py --hacks truncation --keep-recorded", "cpu": "new cpu",
              "model": "m", "hacks": {"format_soft": block}, "learning_runs": []}
    text = "\n".join(mod.markdown(result))
    assert f"Not re-run: the block recorded by `{old['command']}` (CPU: old cpu)" in text
    row = "| format_soft | `format_soft` | 0.550 -> 0.550 | none | none | format_paid_task_failed | not recorded | 1.5 |"
    assert row in text
    assert mod.recorded_blocks(tmp_path / "missing.json") == {}


def test_replay_only_keeps_every_recorded_hack_and_replays_the_learning_runs(tmp_path):
    mod = load("hack_alarm")
    res = tmp_path / "res"
    res.mkdir()
    recorded = json.loads((mod.RESULTS / "hack_alarm.json").read_text())
    (res / "hack_alarm.json").write_text(json.dumps(recorded))
    result = mod.main(["--replay-only", "--work", str(tmp_path / "work"), "--results", str(res)])
    assert set(result["hacks"]) == set(recorded["results"]["hacks"]) and all(h["recorded"] for h in result["hacks"].values())
    _check_learning_runs(result)
    assert "a hack found in a real run" in (res / "hack_alarm.md").read_text()


def test_unknown_hack_is_one_line_and_exit_2(tmp_path):
    import subprocess
    import sys

    from bench_scripts import BENCHMARKS

    proc = subprocess.run([sys.executable, str(BENCHMARKS / "hack_alarm.py"), "--hacks", "nope", "--work",
                           str(tmp_path / "w")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["hack_alarm.py: --hacks nope: unknown nope; choose from format_soft, "
                                                "truncation"]
