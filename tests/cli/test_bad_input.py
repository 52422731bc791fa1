"""Bad input never gives a traceback: one line naming the file or flag, exit code 2, and nothing
already written is lost. One test per input of issue 11 (CLI through click's CliRunner)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from reasonkit.cli import main
from reasonkit.errors import ReasonkitError
from reasonkit.eval import runner as runner_mod
from reasonkit.eval.config import EvalConfig

from cli_checks import one_line_error
from eval_fakes import FakeBackend

LATIN1 = "r\u00e9sum\u00e9: caf\u00e9".encode("latin-1")


@pytest.fixture
def fake_engine(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(runner_mod, "open_backend",
                        lambda config: (FakeBackend(lambda p, a, s: "<answer>4</answer>"), "fake-model"))


def eval_args(out, *more):
    return ["eval", "--limit", "1", "-o", str(out), "-q", "--verifier", "gsm8k", *more]


def test_template_file_not_utf8_or_a_directory(tmp_path, fake_engine):
    bad = tmp_path / "t.yaml"
    bad.write_bytes(b"user: " + LATIN1)
    one_line_error(CliRunner().invoke(main, eval_args(tmp_path / "o", "--template", str(bad))),
                   f"--template {bad}: not UTF-8 text")
    folder = tmp_path / "dir.json"
    folder.mkdir()
    one_line_error(CliRunner().invoke(main, eval_args(tmp_path / "o", "--template", str(folder))),
                   f"--template {folder}: is a directory")
    one_line_error(CliRunner().invoke(main, eval_args(tmp_path / "o", "--template", str(tmp_path / "no.json"))),
                   "no such file")


def test_train_config_not_utf8_or_a_directory(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_bytes(b"max_steps: 2\nsystem: " + LATIN1 + b"\n")
    one_line_error(CliRunner().invoke(main, ["train", "--config", str(bad)]), f"config {bad}: cannot read it (not UTF-8 text")
    res = CliRunner().invoke(main, ["train", "--config", str(tmp_path)])  # click's own path check: usage + error
    assert res.exit_code == 2 and "Traceback" not in res.output and "is a directory" in res.output


def test_report_on_a_bad_summary_keeps_the_run(tmp_path, fake_engine):
    run = tmp_path / "run"
    assert CliRunner().invoke(main, eval_args(run)).exit_code == 0
    samples = (run / "samples.jsonl").read_bytes()
    summary = run / "summary.json"
    for content, needle in ((LATIN1, "not UTF-8 text"), (b'{"adapters": {', "malformed JSON"),
                            (b"[1, 2]", "not a reasonkit eval summary")):
        summary.write_bytes(content)
        one_line_error(CliRunner().invoke(main, ["report", str(run)]), str(summary), needle)
        assert (run / "samples.jsonl").read_bytes() == samples and summary.read_bytes() == content
    summary.unlink()
    summary.mkdir()
    one_line_error(CliRunner().invoke(main, ["report", str(run)]), str(summary), "is a directory")
    one_line_error(CliRunner().invoke(main, ["report", str(tmp_path / "nowhere")]), "not a run directory")


def test_limit_zero_is_refused_and_the_run_kept(tmp_path, fake_engine):
    run = tmp_path / "run"
    assert CliRunner().invoke(main, eval_args(run)).exit_code == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    args = eval_args(run)
    args[args.index("--limit") + 1] = "0"
    one_line_error(CliRunner().invoke(main, args), "--limit 0", "--limit all")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    with pytest.raises(ReasonkitError, match="--limit 0"):
        EvalConfig(limit=0)


def test_unknown_eval_config_key_says_did_you_mean():
    with pytest.raises(ReasonkitError, match="unknown key 'temprature'; did you mean 'temperature'"):
        EvalConfig.from_dict({"benchmark": "gsm8k", "temprature": 0.7})
    assert EvalConfig.from_dict({"benchmark": "countdown", "limit": 3}).limit == 3


class _Payload:
    """Unpickled with weights_only=False it would create ``path`` (code from a file runs)."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_resume_refuses_a_crafted_pickle_in_a_checkpoint(tiny_model_dir, tmp_path):
    import torch

    from train_fakes import make_trainer

    trainer = make_trainer(tiny_model_dir, tmp_path, max_steps=1)
    trainer.train()
    ckpt = tmp_path / "run" / "checkpoint-1"
    marker = tmp_path / "code-ran"
    for name in ("optimizer.pt", "rng_state_0.pth"):
        good = (ckpt / name).read_bytes()
        torch.save({"state": {}, "param_groups": [], "x": _Payload(str(marker))}, ckpt / name)
        with pytest.raises(ReasonkitError) as err:
            make_trainer(tiny_model_dir, tmp_path, max_steps=2).resume(ckpt)
        assert err.value.exit_code == 2 and len(str(err.value.message).splitlines()) == 1
        assert f"{ckpt / name} was refused" in err.value.message
        assert not marker.exists()
        (ckpt / name).write_bytes(good)
    resumed = make_trainer(tiny_model_dir, tmp_path, max_steps=2)  # the real files load with weights_only
    resumed.resume(ckpt)
    assert resumed.step == 1
    # through the CLI: one line, exit 2
    torch.save(_Payload(str(marker)), ckpt / "scheduler.pt")
    res = CliRunner().invoke(main, ["train", "--model", tiny_model_dir, "--output", str(tmp_path / "run"),
                                    "--resume", str(ckpt), "--max-steps", "2", "--quiet"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("Error")]  # stderr also has progress bars
    assert len(errors) == 1 and "scheduler.pt was refused" in errors[0], res.output
    assert not marker.exists()
