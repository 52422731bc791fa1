"""``reasonkit sft``: the rejection-sampling filter (a regression table), the config's one-line refusals,
and the whole loop on a tiny model built from a config (sampling on the hf backend, TRL's SFTTrainer,
a second iteration that samples from the first adapter), whose adapter `reasonkit eval --lora` and
`reasonkit train --init-adapter` then load."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from reasonkit.cli import main
from reasonkit.sft.config import SFTConfig
from reasonkit.sft.select import merge, select


def row(item, sample, text, correct, finish="stop", tokens=None, **extra):
    return {"item_id": item, "sample": sample, "prompt": f"<p{item}>", "completion": text,
            "finish_reason": finish, "num_tokens": tokens if tokens is not None else len(text.split()),
            "countdown.correct": correct, "countdown.score": float(bool(correct)), **extra}


# (rows, max_per_item, shortest_first, expected (item, completion) pairs, why)
SELECT_CASES = [
    ([row("1", 0, "a b c", True), row("1", 1, "a", False)], 2, True, [("1", "a b c")], "only correct kept"),
    ([row("1", 0, "x", None)], 2, True, [], "unscored (None) is never kept"),
    ([row("1", 0, "right but cut", True, finish="length")], 2, True, [], "truncated never kept"),
    ([row("1", 0, "", True, finish="error", error="boom")], 2, True, [], "failed request never kept"),
    ([row("1", 0, "a  b", True), row("1", 1, "a b\n", True)], 2, True, [("1", "a  b")], "dedup on white space"),
    ([row("1", 0, "one two three", True), row("1", 1, "one", True), row("1", 2, "one two", True)], 2, True,
     [("1", "one"), ("1", "one two")], "shortest first, capped"),
    ([row("1", 0, "one two three", True), row("1", 1, "one", True), row("1", 2, "one two", True)], 2, False,
     [("1", "one two three"), ("1", "one")], "sample order when not shortest first"),
    ([row("1", 0, "(1+2)", True, stop_string="</answer>")], 1, True, [("1", "(1+2)</answer>")],
     "the stop string is put back"),
    ([row("2", 0, "b", True), row("1", 0, "a", True)], 1, True, [("2", "b"), ("1", "a")], "item order kept"),
]


@pytest.mark.parametrize("rows,cap,shortest,expected,why", SELECT_CASES, ids=[c[-1] for c in SELECT_CASES])
def test_select_policy(rows, cap, shortest, expected, why):
    kept = select(rows, "countdown", cap, shortest)
    assert [(r["item_id"], r["completion"]) for r in kept] == expected, why


def test_merge_across_iterations_dedups_and_recaps():
    first = select([row("1", 0, "long answer here", True)], "countdown", 2, iteration=1)
    second = select([row("1", 0, "long  answer here", True), row("1", 1, "short", True),
                     row("1", 2, "mid size", True)], "countdown", 2, iteration=2)
    merged = merge(first, second, 2)
    assert [r["completion"] for r in merged] == ["short", "mid size"]


def test_a_prompt_that_is_not_text_is_one_line():
    bad = row("1", 0, "x", True)
    bad["prompt"] = [{"role": "user", "content": "q"}]
    result = CliRunner().invoke(main, ["sft", "--from-samples", "x"])  # the file check comes first
    assert result.exit_code == 2 and "no such file" in result.output
    from reasonkit.errors import ReasonkitError

    with pytest.raises(ReasonkitError, match="not text"):
        select([bad], "countdown", 2)


@pytest.mark.parametrize("args,needle", [
    (["--temperature", "0"], "temperature"),
    (["--samples-per-item", "0"], "samples_per_item"),
    (["--backend", "openai"], "backend"),
    (["--verifier", "gsm8kk"], "did you mean"),
    (["--lora-r", "0", "--init-adapter", "."], "full fine-tuning cannot start"),
    (["--init-adapter", "/nonexistent"], "adapter_config.json"),
    (["--from-samples", "/nonexistent/samples.jsonl"], "no such file"),
    (["--columns", "question"], "KEY=VALUE"),
])
def test_bad_flags_are_one_line_exit_2(args, needle):
    result = CliRunner().invoke(main, ["sft", *args])
    assert result.exit_code == 2, result.output
    assert needle in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_from_samples_names_missing_verdicts(tmp_path, tiny_model_dir):
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps(row("1", 0, "x", True)) + "\n")
    result = CliRunner().invoke(main, ["sft", "--model", tiny_model_dir, "--from-samples", str(path),
                                       "--verifier", "gsm8k",
                                       "--output", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 2 and "no verdicts of 'gsm8k'" in result.output


def test_config_round_trip_and_identity():
    cfg = SFTConfig(lora_target_modules=["q_proj", "v_proj"], limit=4)
    again = SFTConfig.from_dict(cfg.to_dict())
    assert again.identity() == cfg.identity()
    assert "output" not in cfg.identity()


@pytest.fixture()
def always_right():
    """A verifier that marks every completion correct: the tiny random model then has something to keep."""
    from reasonkit.verifiers import Verdict, register
    from reasonkit.verifiers.base import _REGISTRY

    register("test_always_right", lambda completion, **_: Verdict(1.0, True, completion[:10], "correct"),
             fields=(), description="test double: everything is correct")
    yield "test_always_right"
    _REGISTRY.pop("test_always_right", None)


def test_two_iterations_on_a_tiny_model_then_eval_and_train_load_the_adapter(tiny_model_dir, tmp_path, always_right):
    out = tmp_path / "sft"
    args = ["sft", "--model", tiny_model_dir, "--dataset", "countdown", "--limit", "3", "--samples-per-item", "2",
            "--max-tokens", "6", "--iterations", "2", "--epochs", "1", "--batch-size", "4", "--lora-r", "4",
            "--lora-target-modules", "q_proj,v_proj", "--stop", "e,a,o, ", "--verifier", always_right, "--backend", "hf",
            "--output", str(out), "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in lines] == [1, 2]
    assert lines[0]["items"] == 3 and lines[0]["samples"] == 6
    assert all(m["steps"] >= 1 and m["train_loss"] > 0 for m in lines)
    # the second iteration sampled from the first adapter only (no base rows)
    rows2 = [json.loads(x) for x in (out / "iter-2" / "samples" / "samples.jsonl").read_text().splitlines()]
    assert {r["adapter"] for r in rows2} == {"policy"}
    adapter = out / "adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    from reasonkit.engine.models import adapter_has_weights

    assert adapter_has_weights(adapter)

    # the same command again continues (nothing to do) and a changed setting is refused
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    changed = CliRunner().invoke(main, [*args[:-3], "--seed", "1", "--output", str(out), "-q"])
    assert changed.exit_code == 2 and "seed" in changed.output

    # reasonkit eval --lora loads it
    ev = CliRunner().invoke(main, ["eval", "--model", tiny_model_dir, "--lora", f"warm={adapter}", "--benchmark",
                                   "countdown", "--limit", "1", "--max-tokens", "4", "--backend", "hf",
                                   "--output", str(tmp_path / "ev"), "-q"])
    assert ev.exit_code == 0, ev.output
    # reasonkit train --init-adapter takes its shape
    from reasonkit.grpo.config import TrainConfig

    tc = TrainConfig(model=tiny_model_dir, init_adapter=str(adapter), lora_r=8)
    assert tc.lora_r == 4 and tc.lora_alpha == 32 and set(tc.lora_target_modules) == {"q_proj", "v_proj"}


def test_train_init_adapter_starts_from_the_adapter_weights(tiny_model_dir, tiny_lora_dirs):
    import torch
    from safetensors.torch import load_file

    from reasonkit.grpo.config import TrainConfig
    from reasonkit.grpo.build import load_policy, wrap_policy

    cfg = TrainConfig(model=tiny_model_dir, init_adapter=tiny_lora_dirs["a"], dtype="fp32")
    _, model = load_policy(cfg, tiny_model_dir)
    model = wrap_policy(cfg, model)
    saved = load_file(str(Path(tiny_lora_dirs["a"]) / "adapter_model.safetensors"))
    live = {n: p for n, p in model.named_parameters() if "lora_" in n}
    assert live and all(p.requires_grad for p in live.values())
    for name, tensor in saved.items():
        match = [p for n, p in live.items() if n.replace(".default", "").endswith(name.split("base_model.model.")[-1])]
        assert len(match) == 1, name
        assert torch.equal(match[0].detach(), tensor)


def test_sample_few_shot_samples_with_worked_examples_and_trains_on_the_plain_prompt(tiny_model_dir, tmp_path,
                                                                                       always_right):
    """STaR's bootstrap: the sampling prompt carries worked examples, the kept completions are paired with
    the prompt the model will be asked (no examples) for the supervised step."""
    out = tmp_path / "sft"
    args = ["sft", "--model", tiny_model_dir, "--dataset", "countdown", "--limit", "2", "--samples-per-item", "1",
            "--max-tokens", "4", "--iterations", "1", "--epochs", "1", "--batch-size", "2", "--lora-r", "4",
            "--lora-target-modules", "q_proj,v_proj", "--stop", "e,a,o, ", "--sample-few-shot", "2",
            "--verifier", always_right,
            "--backend", "hf", "--output", str(out), "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    sampled = [json.loads(x) for x in (out / "iter-1" / "samples" / "samples.jsonl").read_text().splitlines()]
    kept = [json.loads(x) for x in (out / "iter-1" / "kept.jsonl").read_text().splitlines()]
    assert len(kept) == 2
    by_item = {r["item_id"]: r["prompt"] for r in sampled}
    example = "</think>\n<answer>"  # the worked examples' answers (Countdown.example_answer)
    for r in sampled:  # items 0 and 1 are the two examples too: neither sees its own solution
        assert r["prompt"].count(r["prompt"].split("<|im_start|>user\n")[-1].split("<|im_end|>")[0]) == 1
    for k in kept:
        assert example in by_item[k["item_id"]], "the sampling prompt has the worked examples"
        assert example not in k["prompt"], "the training prompt has none"
        # the same question and pre-fill end both prompts
        assert len(k["prompt"]) < len(by_item[k["item_id"]]) and by_item[k["item_id"]].endswith(k["prompt"][-120:])
    bad = CliRunner().invoke(main, ["sft", "--sample-few-shot", "-1", "--output", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "sample_few_shot" in bad.output
