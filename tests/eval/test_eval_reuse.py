"""Reusing a run directory is said, and a resumed run never rewrites timings it did not measure
(issue 28, item 4). CLI through CliRunner with a fake engine, no model."""
from __future__ import annotations

import json

from click.testing import CliRunner

from reasonkit.cli import main

from cli_checks import use_fake_engine


def _summary(run):
    return json.loads((run / "summary.json").read_text())


def test_default_directory_reuse_is_said_and_timings_kept(tmp_path, monkeypatch):
    use_fake_engine(monkeypatch)
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "eval" / "gsm8k-default"
    args = ["eval", "--limit", "2", "-q", "--verifier", "gsm8k"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "resuming" not in first.output  # a fresh directory: nothing to say
    before = _summary(run)
    assert before["timing"]["completion_tokens"] > 0 and before["backend_choice"]

    again = CliRunner().invoke(main, args)  # nothing left to generate
    assert again.exit_code == 0, again.output
    said = [line for line in again.output.splitlines() if line.startswith("resuming")]
    assert said == [f"resuming {run.relative_to(tmp_path)}: 2 of 2 item groups are already there; 0 to generate "
                    "(--output DIR for a fresh run)"], again.output
    after = _summary(run)
    assert after["timing"] == before["timing"]  # not rewritten with zeros
    assert after["backend_choice"] == before["backend_choice"]

    more = CliRunner().invoke(main, ["eval", "--limit", "3", "-q", "--verifier", "gsm8k"])
    assert more.exit_code == 0, more.output
    assert "2 of 3 item groups are already there; 1 to generate" in more.output
    grown = _summary(run)["timing"]  # this run's own measurement, saying what it covers
    assert grown["generated_prompts"] == 1 and before["timing"]["generated_prompts"] == 2
    assert grown["completion_tokens"] == before["timing"]["completion_tokens"] // 2  # same answer per item
