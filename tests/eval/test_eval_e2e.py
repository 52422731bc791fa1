"""End-to-end: ``reasonkit eval`` through click's CliRunner on the embedded SmolLM2-135M-Instruct, with the
real hf and vllm backends, on a handful of items and few tokens (the machine running these is small).

Covered: run directory contents, greedy determinism (same command twice), resume after an interrupted
run (the last saved item is cut from samples.jsonl, as a kill mid-run leaves it), rescore without a
model, and multi-LoRA with two adapters made in the test (peft, non-zero weights).
"""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from reasonkit.cli import main

from conftest import make_lora_adapter

pytestmark = pytest.mark.slow

COMMON = ["--limit", "2", "--max-tokens", "24", "--chunk-size", "1", "-q"]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def rows(run_dir):
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines() if line.strip()]


def invoke(args):
    result = CliRunner().invoke(main, ["eval"] + args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_eval_hf_run_dir_determinism_resume_rescore(tmp_path, default_model_path):
    first = tmp_path / "first"
    out = invoke(["--backend", "hf", "-o", str(first)] + COMMON).output
    assert "gsm8k accuracy" in out
    got = rows(first)
    assert [r["item_id"] for r in got] == ["0", "1"]
    assert all(r["completion"] and 0 < r["num_tokens"] <= 24 for r in got)
    assert all(r["finish_reason"] in ("stop", "length") for r in got)
    summary = json.loads((first / "summary.json").read_text())
    assert summary["backend"] == "hf"
    assert set(summary["adapters"]) == {"base"}
    assert summary["adapters"]["base"]["samples"] == 2
    assert set(summary["benchmark"]["verifiers"]) >= {"gsm8k", "format"}
    assert summary["versions"]["torch"]

    # greedy determinism: the same command into another directory gives the same completions
    second = tmp_path / "second"
    invoke(["--backend", "hf", "-o", str(second)] + COMMON)
    assert [r["completion"] for r in rows(second)] == [r["completion"] for r in got]

    # resume: cut the last item (as a kill after the first chunk leaves it), rerun the same command
    path = first / "samples.jsonl"
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n")
    invoke(["--backend", "hf", "-o", str(first)] + COMMON)
    resumed = json.loads((first / "summary.json").read_text())
    assert resumed["resumed_groups"] == 1 and resumed["timing"]["completion_tokens"] == got[1]["num_tokens"]
    assert [r["completion"] for r in rows(first)] == [r["completion"] for r in got]

    # rescore from the saved completions (no model), with another verifier
    invoke(["-o", str(first), "--rescore", "--verifier", "gsm8k_flexible"])
    rescored = rows(first)
    assert all("gsm8k_flexible.correct" in r and "gsm8k.correct" not in r for r in rescored)
    assert [r["completion"] for r in rescored] == [r["completion"] for r in got]


@pytest.fixture(scope="module")
def two_adapters(tmp_path_factory, default_model_path):
    root = tmp_path_factory.mktemp("loras")
    return (make_lora_adapter(default_model_path, root / "a", seed=1, r=8, scale=4.0),
            make_lora_adapter(default_model_path, root / "b", seed=2, r=4, scale=4.0))


def _check_multi_lora(run_dir):
    got = rows(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert list(summary["adapters"]) == ["base", "a", "b"]
    by = {a: [r["completion"] for r in got if r["adapter"] == a] for a in ("base", "a", "b")}
    assert all(len(v) == 2 for v in by.values())
    # random non-zero adapters change the output, so no "adapter ignored" warning
    assert by["a"] != by["base"] and by["b"] != by["base"] and by["a"] != by["b"]
    assert summary["warnings"] == []
    return summary


def test_eval_hf_multi_lora(tmp_path, two_adapters):
    a, b = two_adapters
    run_dir = tmp_path / "multi"
    invoke(["--backend", "hf", "--lora", f"a={a}", "--lora", f"b={b}", "-o", str(run_dir)] + COMMON)
    _check_multi_lora(run_dir)
    result = CliRunner().invoke(main, ["report", str(run_dir), "--markdown", str(tmp_path / "r.md")])
    assert result.exit_code == 0, result.output
    assert "| metric | base | a | b |" in (tmp_path / "r.md").read_text()


@pytest.mark.vllm
def test_eval_vllm_multi_lora_and_determinism(tmp_path, two_adapters, monkeypatch):
    pytest.importorskip("vllm")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    a, b = two_adapters
    run_dir = tmp_path / "vllm"
    args = ["--backend", "vllm", "--lora", f"a={a}", "--lora", f"b={b}"] + COMMON
    invoke(args + ["-o", str(run_dir)])
    summary = _check_multi_lora(run_dir)
    assert summary["backend"] == "vllm"
    again = tmp_path / "vllm2"
    invoke(args + ["-o", str(again)])
    assert [r["completion"] for r in rows(again)] == [r["completion"] for r in rows(run_dir)]


def test_generate_hf_with_adapter(two_adapters):
    a, _ = two_adapters
    result = CliRunner().invoke(main, ["generate", "--backend", "hf", "--max-tokens", "8", "What is 2 + 3?"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "### What is 2 + 3?" in result.output and "[base, " in result.output
    result = CliRunner().invoke(main, ["generate", "--backend", "hf", "--max-tokens", "8", "--lora", f"a={a}",
                                       "What is 2 + 3?"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "[a, " in result.output
