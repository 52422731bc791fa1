"""``reasonkit train --resume`` on a checkpoint whose files cannot be read (issue 28, item 4): one line
naming the file and the previous complete checkpoint, exit 2, before any model loads."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from reasonkit.cli import main
from reasonkit.errors import ReasonkitError
from reasonkit.grpo.checkpoint_check import check_checkpoint, previous_checkpoint


def _checkpoint(run: Path, step: int) -> Path:
    """A checkpoint directory laid out as ``save_checkpoint`` writes it (small tensors)."""
    import numpy as np
    import torch
    from safetensors.numpy import save_file

    d = run / f"checkpoint-{step}"
    d.mkdir(parents=True)
    save_file({"base_model.model.layers.0.q_proj.lora_A.weight": np.ones((4, 8), dtype=np.float32)},
              str(d / "adapter_model.safetensors"))
    (d / "adapter_config.json").write_text(json.dumps({"r": 4, "peft_type": "LORA"}))
    torch.save({"state": {0: {"exp_avg": torch.randn(256)}}, "param_groups": []}, d / "optimizer.pt")
    torch.save({"last_epoch": step}, d / "scheduler.pt")
    torch.save({"torch": torch.get_rng_state()}, d / "rng_state_0.pth")
    (d / "trainer_state.json").write_text(json.dumps({"step": step}))
    return d


def _truncate(f: Path) -> None:
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])


DAMAGE = [
    ("adapter_model.safetensors", _truncate, "adapter_model.safetensors cannot be read"),
    ("optimizer.pt", _truncate, "optimizer.pt cannot be read (truncated"),
    ("scheduler.pt", lambda f: f.write_bytes(b""), "scheduler.pt cannot be read"),
    ("rng_state_0.pth", _truncate, "rng_state_0.pth cannot be read"),
    ("trainer_state.json", lambda f: f.write_text('{"step": '), "trainer_state.json cannot be read (malformed JSON"),
    ("trainer_state.json", lambda f: f.write_text("[1, 2]"), "not a trainer state"),
    ("adapter_config.json", lambda f: f.write_bytes(b"\xff\xfe{"), "adapter_config.json cannot be read"),
]


@pytest.mark.parametrize("name, damage, needle", DAMAGE)
def test_damaged_file_names_itself_and_the_previous_checkpoint(tmp_path, name, damage, needle):
    run = tmp_path / "run"
    first, last = _checkpoint(run, 2), _checkpoint(run, 4)
    check_checkpoint(first)
    check_checkpoint(last)  # intact: no error
    damage(last / name)
    with pytest.raises(ReasonkitError) as err:
        check_checkpoint(last)
    msg = err.value.message
    assert err.value.exit_code == 2 and "\n" not in msg
    assert str(last / name) in msg and needle in msg, msg
    assert f"--resume {first}" in msg, msg


def test_no_earlier_checkpoint_is_said(tmp_path):
    only = _checkpoint(tmp_path / "run", 3)
    _truncate(only / "optimizer.pt")
    with pytest.raises(ReasonkitError, match="there is no earlier complete checkpoint in"):
        check_checkpoint(only)


def test_previous_checkpoint_skips_incomplete_ones(tmp_path):
    run = tmp_path / "run"
    c1, c5, c9 = _checkpoint(run, 1), _checkpoint(run, 5), _checkpoint(run, 9)
    (run / "checkpoint-7").mkdir()  # no trainer_state.json: incomplete
    (run / "checkpoint-8.tmp").mkdir()
    assert previous_checkpoint(c9) == c5 and previous_checkpoint(c5) == c1 and previous_checkpoint(c1) is None


@pytest.mark.parametrize("resume", ["latest", "explicit"])
def test_cli_resume_on_a_damaged_checkpoint_is_one_line(tmp_path, resume):
    run = tmp_path / "run"
    first, last = _checkpoint(run, 1), _checkpoint(run, 2)
    _truncate(last / "adapter_model.safetensors")
    args = ["train", "--output", str(run), "--max-steps", "3", "--quiet", "--resume"]
    if resume == "explicit":
        args.append(str(last))
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: --resume: "), res.output
    assert str(last / "adapter_model.safetensors") in lines[0] and f"--resume {first}" in lines[0]
